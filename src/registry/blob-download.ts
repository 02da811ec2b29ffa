/**
 * Serves the bytes behind a Worker-signed blob URL: conditional requests (RFC 9110 §13) and single byte
 * ranges (RFC 9110 §14). Headers are parsed here; nothing from the request is passed to R2 as is.
 */
import type { BlobObjects } from "../storage/blob-objects";

/** A request's byte range resolved against the representation's length. */
type RangeDecision = { kind: "full" } | { kind: "partial"; offset: number; length: number } | { kind: "unsatisfiable" };

/** The validators the conditions are evaluated against. */
interface Validators {
  etag: string;
  /** Last-Modified in whole seconds (HTTP-date resolution), ms since the epoch. */
  lastModified: number;
}

export async function serveBlobData(objects: BlobObjects, key: string, request: Request): Promise<Response> {
  const isGet = request.method === "GET";
  // Fast path: an unconditional GET without Range needs one read.
  if (isGet && !hasConditions(request.headers) && !request.headers.has("Range")) {
    const object = await objects.read(key);
    if (!object) return new Response(null, { status: 404 });
    const headers = new Headers(blobDataHeaders(object));
    headers.set("Content-Length", String(object.size));
    return new Response(object.body, { status: 200, headers });
  }
  const head = await objects.head(key);
  if (!head) return new Response(null, { status: 404 });
  const validators: Validators = { etag: head.httpEtag, lastModified: Math.floor(head.uploaded.getTime() / 1000) * 1000 };
  const headers = new Headers(blobDataHeaders(head));

  const precondition = evaluatePreconditions(request.headers, validators);
  if (precondition === 412) return new Response(null, { status: 412, headers });
  if (precondition === 304) {
    // RFC 9110 §15.4.5: a 304 carries the validators and caching fields, no content metadata.
    headers.delete("Content-Type");
    return new Response(null, { status: 304, headers });
  }

  // RFC 9110 §14.2: Range is defined for GET only; other methods ignore it.
  const range = isGet ? decideRange(request.headers, head.size, validators) : ({ kind: "full" } as const);
  if (range.kind === "unsatisfiable") {
    // RFC 9110 §15.5.17: 416 names the current length.
    headers.set("Content-Range", `bytes */${head.size}`);
    headers.set("Content-Length", "0");
    return new Response(null, { status: 416, headers });
  }
  if (!isGet) {
    headers.set("Content-Length", String(head.size));
    return new Response(null, { status: 200, headers });
  }
  if (range.kind === "partial") {
    const object = await objects.read(key, { offset: range.offset, length: range.length });
    if (!object) return new Response(null, { status: 404 });
    // RFC 9110 §14.4: Content-Range of the one part sent.
    headers.set("Content-Range", `bytes ${range.offset}-${range.offset + range.length - 1}/${head.size}`);
    headers.set("Content-Length", String(range.length));
    return new Response(object.body, { status: 206, headers });
  }
  const object = await objects.read(key);
  if (!object) return new Response(null, { status: 404 });
  headers.set("Content-Length", String(object.size));
  return new Response(object.body, { status: 200, headers });
}

function blobDataHeaders(object: Pick<R2Object, "httpEtag" | "uploaded">): Record<string, string> {
  return {
    // An explicit binary type keeps workerd from gzip-encoding already-compressed layers on the fly.
    "Content-Type": "application/octet-stream",
    "Cache-Control": "public, max-age=31536000, immutable",
    "Accept-Ranges": "bytes",
    ETag: object.httpEtag,
    "Last-Modified": object.uploaded.toUTCString(),
  };
}

const CONDITIONAL_HEADERS = ["If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"];

function hasConditions(headers: Headers): boolean {
  return CONDITIONAL_HEADERS.some((name) => headers.has(name));
}

/** RFC 9110 §13.2.2: the order of evaluation; 200 means "proceed". Only GET and HEAD reach here. */
function evaluatePreconditions(headers: Headers, validators: Validators): 200 | 304 | 412 {
  const ifMatch = headers.get("If-Match");
  if (ifMatch !== null) {
    // RFC 9110 §13.1.1: strong comparison; "*" matches any current representation.
    if (!matchesAny(ifMatch, validators.etag, "strong")) return 412;
  } else {
    // RFC 9110 §13.1.4: ignored with If-Match, or when not a valid HTTP-date.
    const since = parseHttpDate(headers.get("If-Unmodified-Since"));
    if (since !== undefined && validators.lastModified > since) return 412;
  }
  const ifNoneMatch = headers.get("If-None-Match");
  if (ifNoneMatch !== null) {
    // RFC 9110 §13.1.2: weak comparison; a match on GET/HEAD answers 304.
    if (matchesAny(ifNoneMatch, validators.etag, "weak")) return 304;
  } else {
    // RFC 9110 §13.1.3: ignored with If-None-Match, or when not a valid HTTP-date.
    const since = parseHttpDate(headers.get("If-Modified-Since"));
    if (since !== undefined && validators.lastModified <= since) return 304;
  }
  return 200;
}

/** An entity-tag list (RFC 9110 §8.8.3) or "*"; a malformed list matches nothing. */
function matchesAny(field: string, current: string, comparison: "strong" | "weak"): boolean {
  if (field.trim() === "*") return true;
  const tags = parseEntityTags(field);
  const own = parseEntityTags(current)?.[0];
  if (!tags || !own) return false;
  // RFC 9110 §8.8.3.2: strong comparison needs both tags strong; weak compares opaque tags only.
  return tags.some((tag) => tag.opaque === own.opaque && (comparison === "weak" || (!tag.weak && !own.weak)));
}

function parseEntityTags(field: string): { weak: boolean; opaque: string }[] | undefined {
  const tags: { weak: boolean; opaque: string }[] = [];
  // RFC 9110 §8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, in a comma-separated list.
  const pattern = /\s*(W\/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*(?:,|$)/y;
  while (pattern.lastIndex < field.length) {
    const match = pattern.exec(field);
    if (!match) return undefined;
    tags.push({ weak: match[1] !== undefined, opaque: match[2]! });
  }
  return tags;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const TIME = "(\\d{2}):(\\d{2}):(\\d{2})";
const MONTH = `(${MONTHS.join("|")})`;
// RFC 9110 §5.6.7: IMF-fixdate, and the obsolete rfc850-date and asctime-date recipients must accept.
const IMF_FIXDATE = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`);
const RFC850_DATE = new RegExp(`^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`);
const ASCTIME_DATE = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`);

/** An HTTP-date (RFC 9110 §5.6.7) in ms, or undefined where absent or not a valid HTTP-date. */
function parseHttpDate(value: string | null): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  let parts: [day: string, month: string, year: number, h: string, m: string, s: string] | undefined;
  let match: RegExpExecArray | null;
  if ((match = IMF_FIXDATE.exec(text))) parts = [match[1]!, match[2]!, Number(match[3]), match[4]!, match[5]!, match[6]!];
  else if ((match = RFC850_DATE.exec(text))) {
    // RFC 9110 §5.6.7: a two-digit year more than 50 years ahead is in the previous century.
    let year = 2000 + Number(match[3]);
    if (year > new Date().getUTCFullYear() + 50) year -= 100;
    parts = [match[1]!, match[2]!, year, match[4]!, match[5]!, match[6]!];
  } else if ((match = ASCTIME_DATE.exec(text))) parts = [match[2]!, match[1]!, Number(match[6]), match[3]!, match[4]!, match[5]!];
  if (!parts) return undefined;
  const [day, month, year, h, m, s] = parts;
  const time = Date.UTC(year, MONTHS.indexOf(month), Number(day), Number(h), Number(m), Number(s));
  return Number.isNaN(time) ? undefined : time;
}

/**
 * RFC 9110 §14.2: evaluated after the preconditions; an invalid or multi-range header is ignored (200),
 * a range with no satisfiable part answers 416, and If-Range that fails ignores the Range.
 */
function decideRange(headers: Headers, size: number, validators: Validators): RangeDecision {
  const field = headers.get("Range");
  if (field === null) return { kind: "full" };
  const ifRange = headers.get("If-Range");
  if (ifRange !== null && !ifRangeHolds(ifRange, validators)) return { kind: "full" };
  // RFC 9110 §14.1.1: ranges-specifier = range-unit "=" range-set; the unit is case-insensitive.
  const match = /^bytes=[ \t]*(\d*)-(\d*)[ \t]*$/i.exec(field.trim());
  if (!match || (match[1] === "" && match[2] === "")) return { kind: "full" };
  if (match[1] === "") {
    // RFC 9110 §14.1.1: suffix-range; a zero suffix-length is unsatisfiable.
    const suffix = Number(match[2]);
    if (suffix === 0) return { kind: "unsatisfiable" };
    if (size === 0) return { kind: "full" };
    const length = Math.min(suffix, size);
    return { kind: "partial", offset: size - length, length };
  }
  const first = Number(match[1]);
  const last = match[2] === "" ? undefined : Number(match[2]);
  // RFC 9110 §14.1.1: last-pos below first-pos makes the range invalid, hence ignored.
  if (last !== undefined && last < first) return { kind: "full" };
  // RFC 9110 §14.1.1: an int-range is satisfiable only if first-pos is below the length.
  if (first >= size) return { kind: "unsatisfiable" };
  const end = Math.min(last ?? size - 1, size - 1);
  return { kind: "partial", offset: first, length: end - first + 1 };
}

/** RFC 9110 §13.1.5: a strong entity-tag match, or an HTTP-date equal to Last-Modified. */
function ifRangeHolds(value: string, validators: Validators): boolean {
  const trimmed = value.trim();
  if (trimmed.startsWith('"') || trimmed.startsWith("W/")) {
    const tags = parseEntityTags(trimmed);
    return tags?.length === 1 && matchesAny(trimmed, validators.etag, "strong");
  }
  const date = parseHttpDate(trimmed);
  return date !== undefined && date === validators.lastModified;
}
