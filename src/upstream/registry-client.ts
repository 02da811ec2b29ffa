/**
 * A client of another OCI/Docker registry (the source of an import, the upstream of a mirror), run by the
 * Worker: anonymous, Basic, or the Bearer token dance (distribution's token authentication: a 401 with
 * `WWW-Authenticate: Bearer realm=…,service=…,scope=…`, then a GET of the realm with Basic credentials),
 * Accept headers for OCI and Docker manifests and indexes, manifests bounded in size and verified against
 * their digest, blob downloads following redirects (Authorization is never sent to another origin).
 *
 * Only https:// upstreams, except http:// on loopback when ALLOW_INSECURE_UPSTREAMS is set (tests and local
 * development): the same rule holds for token realms and redirects, so a hostile upstream cannot steer the
 * Worker's requests to plain HTTP elsewhere.
 */
import { readBodyLimited } from "../http/body";
import { isValidRepositoryName, isValidTag, parseDigest } from "../oci/reference";

/** The media types asked for (image-spec manifest.md and image-index.md; Docker's schema 2). */
export const MANIFEST_ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

/** spec.md: registries SHOULD accept manifests of at least 4 MiB; none bigger is read from an upstream. */
export const MAX_UPSTREAM_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Largest token response read. */
const MAX_TOKEN_RESPONSE_BYTES = 64 * 1024;
/** Tag list pages read per listing (`n` per page), and the most tags a listing returns. */
const TAGS_PAGE_SIZE = 1000;
export const MAX_LISTED_TAGS = 10_000;
const MAX_REDIRECTS = 5;
/** A hung upstream does not hold a request or a cron run forever (blob bodies stream beyond this). */
const UPSTREAM_TIMEOUT_MS = 30_000;

export interface UpstreamCredentials {
  username: string;
  password: string;
}

/** What the upstream answered that this registry cannot use; `status` is the upstream's HTTP status, if any. */
export class UpstreamError extends Error {
  override name = "UpstreamError";
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** A verified manifest from the upstream. */
export interface UpstreamManifest {
  digest: string;
  mediaType: string;
  bytes: Uint8Array;
}

/** `host[:port]` as in an image reference (no scheme, no path). */
const HOST_PATTERN = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::\d{1,5})?$/;

export function isLoopbackHost(hostname: string): boolean {
  return hostname === "127.0.0.1" || hostname === "localhost" || hostname === "[::1]";
}

/**
 * The base URL of an upstream registry, from `host[:port]` (https) or an `https://…`/`http://…` URL with no
 * path; null when it is malformed or plain HTTP is not allowed for it.
 */
export function parseUpstreamBase(text: string, allowInsecure: boolean): URL | null {
  const withScheme = /^[a-z]+:\/\//i.test(text) ? text : HOST_PATTERN.test(text) ? `https://${text}` : null;
  if (withScheme === null) return null;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return null;
  }
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash || url.username || url.password) return null;
  return permittedUrl(url, allowInsecure) ? new URL(url.origin) : null;
}

function permittedUrl(url: URL, allowInsecure: boolean): boolean {
  if (url.protocol === "https:") return true;
  return url.protocol === "http:" && allowInsecure && isLoopbackHost(url.hostname);
}

/** A parsed `WWW-Authenticate: Bearer k="v",…` challenge. */
export function parseBearerChallenge(header: string | null): Record<string, string> | null {
  if (!header || !/^bearer\s/i.test(header)) return null;
  const params: Record<string, string> = {};
  for (const match of header.slice(7).matchAll(/([a-zA-Z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g)) {
    params[match[1]!.toLowerCase()] = (match[2] ?? match[3] ?? "").replace(/\\(.)/g, "$1");
  }
  return params;
}

export async function sha256Digest(bytes: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `sha256:${[...hash].map((byte) => byte.toString(16).padStart(2, "0")).join("")}`;
}

export class UpstreamRegistry {
  /** Bearer tokens by scope, for this client's life (one import or mirror fetch). */
  private readonly tokens = new Map<string, string>();

  constructor(
    readonly base: URL,
    private readonly credentials: UpstreamCredentials | undefined,
    private readonly allowInsecure: boolean,
    /** The global fetch unless a test gives another (called unbound: workerd's fetch refuses another `this`). */
    private readonly fetcher: typeof fetch = (input, init) => fetch(input, init),
  ) {}

  /** The manifest `reference` (tag or digest) of `repository`, verified against its digest. */
  async getManifest(repository: string, reference: string): Promise<UpstreamManifest> {
    const response = await this.request(repository, `/v2/${repository}/manifests/${reference}`, { Accept: MANIFEST_ACCEPT });
    if (response.status === 404) throw new UpstreamError(`${repository}:${reference} not found upstream`, 404);
    if (!response.ok) throw await failure(response, `manifest ${repository}:${reference}`);
    const bytes = await readBodyLimited(response, MAX_UPSTREAM_MANIFEST_BYTES);
    if (!bytes) throw new UpstreamError(`manifest ${repository}:${reference} is larger than ${MAX_UPSTREAM_MANIFEST_BYTES} bytes`);
    const digest = await sha256Digest(bytes);
    // Content addressing (image-spec descriptor.md): by digest the bytes must hash to it; by tag the
    // upstream's Docker-Content-Digest, when sent, must name these bytes.
    const expected = reference.includes(":") ? reference : response.headers.get("Docker-Content-Digest");
    if (expected !== null && expected !== digest) throw new UpstreamError(`manifest ${repository}:${reference} hashes to ${digest}, not ${expected}`);
    const mediaType = (response.headers.get("Content-Type") ?? "").split(";")[0]!.trim();
    return { digest, mediaType, bytes };
  }

  /** The digest a tag points at upstream (a HEAD; a GET when the upstream sends no digest). */
  async resolveTag(repository: string, tag: string): Promise<string> {
    const response = await this.request(repository, `/v2/${repository}/manifests/${tag}`, { Accept: MANIFEST_ACCEPT }, "HEAD");
    if (response.status === 404) throw new UpstreamError(`${repository}:${tag} not found upstream`, 404);
    if (!response.ok) throw await failure(response, `manifest ${repository}:${tag}`);
    const digest = response.headers.get("Docker-Content-Digest");
    if (digest !== null && parseDigest(digest)) return digest;
    return (await this.getManifest(repository, tag)).digest;
  }

  /** Every tag of `repository` (validated; others are skipped), at most MAX_LISTED_TAGS. */
  async listTags(repository: string): Promise<string[]> {
    const tags: string[] = [];
    let last: string | undefined;
    while (tags.length < MAX_LISTED_TAGS) {
      const query = new URLSearchParams({ n: String(TAGS_PAGE_SIZE) });
      if (last !== undefined) query.set("last", last);
      const response = await this.request(repository, `/v2/${repository}/tags/list?${query}`, { Accept: "application/json" });
      if (!response.ok) throw await failure(response, `tags of ${repository}`);
      const bytes = await readBodyLimited(response, MAX_UPSTREAM_MANIFEST_BYTES);
      if (!bytes) throw new UpstreamError(`tag list of ${repository} is too large`);
      let page: unknown;
      try {
        page = JSON.parse(new TextDecoder().decode(bytes));
      } catch {
        throw new UpstreamError(`tag list of ${repository} is not JSON`);
      }
      const listed = (page as { tags?: unknown }).tags;
      const names = Array.isArray(listed) ? listed.filter((tag): tag is string => typeof tag === "string") : [];
      tags.push(...names.filter(isValidTag));
      // spec.md "Listing Tags": a Link header announces the next page.
      if (names.length === 0 || !response.headers.get("Link")) break;
      last = names[names.length - 1];
    }
    return [...new Set(tags)].slice(0, MAX_LISTED_TAGS);
  }

  /**
   * Opens blob `digest` of `repository` (redirects followed, no Authorization beyond the upstream's origin);
   * the body is the caller's to read and verify. `size` is Content-Length, when declared.
   */
  async openBlob(repository: string, digest: string, range?: { start: number; end: number }): Promise<{ body: ReadableStream<Uint8Array>; size: number | undefined }> {
    // A range (RFC 9110 §14.2) fetches part of a large blob; the answer must be exactly that part (206).
    const rangeHeader: Record<string, string> = range ? { Range: `bytes=${range.start}-${range.end}` } : {};
    let response = await this.request(repository, `/v2/${repository}/blobs/${digest}`, rangeHeader, "GET", "manual");
    for (let hop = 0; response.status >= 300 && response.status < 400; hop++) {
      const location = response.headers.get("Location");
      await response.body?.cancel();
      if (!location || hop >= MAX_REDIRECTS) throw new UpstreamError(`blob ${digest}: too many or broken redirects`);
      const target = new URL(location, response.url || this.base);
      if (!permittedUrl(target, this.allowInsecure)) throw new UpstreamError(`blob ${digest}: redirect to a URL that is not allowed`);
      const sameOrigin = target.origin === this.base.origin;
      const headers = { ...rangeHeader, ...(sameOrigin ? await this.authorization(repository) : {}) };
      response = await this.fetcher(target, { headers, redirect: "manual", signal: AbortSignal.timeout(UPSTREAM_TIMEOUT_MS) });
    }
    if (response.status === 404) throw new UpstreamError(`blob ${digest} not found upstream`, 404);
    if (!response.ok || !response.body) throw await failure(response, `blob ${digest}`);
    if (range && (response.status !== 206 || !response.headers.get("Content-Range")?.startsWith(`bytes ${range.start}-${range.end}/`))) {
      await response.body.cancel();
      throw new UpstreamError(`blob ${digest}: the upstream does not serve byte ranges`);
    }
    const length = response.headers.get("Content-Length");
    return { body: response.body, size: length === null ? undefined : Number(length) };
  }

  /** A request to the upstream with this client's authorization, doing the token dance once on a 401. */
  private async request(repository: string, path: string, headers: Record<string, string>, method = "GET", redirect: "follow" | "manual" = "follow"): Promise<Response> {
    if (!isValidRepositoryName(repository)) throw new UpstreamError(`invalid upstream repository name ${JSON.stringify(repository)}`);
    const url = new URL(path, this.base);
    const send = async () =>
      this.fetcher(url, { method, headers: { ...headers, ...(await this.authorization(repository)) }, redirect, signal: AbortSignal.timeout(UPSTREAM_TIMEOUT_MS) });
    let response = await send().catch((error: unknown) => {
      throw new UpstreamError(`cannot reach ${this.base.host}: ${error instanceof Error ? error.message : String(error)}`);
    });
    if (response.status === 401 && !this.tokens.has(scopeOf(repository))) {
      const challenge = parseBearerChallenge(response.headers.get("WWW-Authenticate"));
      await response.body?.cancel();
      if (challenge) {
        this.tokens.set(scopeOf(repository), await this.fetchToken(challenge, repository));
        response = await send();
      } else if (!this.credentials) {
        throw new UpstreamError(`${this.base.host} requires credentials`, 401);
      }
    }
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      throw new UpstreamError(`${this.base.host} refused the credentials for ${repository} (${response.status})`, response.status);
    }
    return response;
  }

  private async authorization(repository: string): Promise<Record<string, string>> {
    const token = this.tokens.get(scopeOf(repository));
    if (token !== undefined) return { Authorization: `Bearer ${token}` };
    return this.credentials ? { Authorization: basic(this.credentials) } : {};
  }

  /** The token dance: GET realm?service=…&scope=repository:<name>:pull, with Basic credentials if any. */
  private async fetchToken(challenge: Record<string, string>, repository: string): Promise<string> {
    let realm: URL;
    try {
      realm = new URL(challenge.realm ?? "");
    } catch {
      throw new UpstreamError(`${this.base.host} sent a Bearer challenge without a usable realm`);
    }
    if (!permittedUrl(realm, this.allowInsecure)) throw new UpstreamError(`${this.base.host} names a token realm that is not allowed (${realm.protocol})`);
    if (challenge.service) realm.searchParams.set("service", challenge.service);
    realm.searchParams.set("scope", scopeOf(repository));
    const response = await this.fetcher(realm, {
      headers: this.credentials ? { Authorization: basic(this.credentials) } : {},
      signal: AbortSignal.timeout(UPSTREAM_TIMEOUT_MS),
    }).catch((error: unknown) => {
      throw new UpstreamError(`cannot reach the token realm of ${this.base.host}: ${error instanceof Error ? error.message : String(error)}`);
    });
    if (!response.ok) throw await failure(response, `token from ${realm.host}`);
    const bytes = await readBodyLimited(response, MAX_TOKEN_RESPONSE_BYTES);
    let body: { token?: unknown; access_token?: unknown } = {};
    try {
      body = JSON.parse(new TextDecoder().decode(bytes ?? new Uint8Array(0)));
    } catch {
      // reported below
    }
    const token = typeof body.token === "string" ? body.token : typeof body.access_token === "string" ? body.access_token : undefined;
    if (!token) throw new UpstreamError(`the token realm of ${this.base.host} answered without a token`);
    return token;
  }
}

const scopeOf = (repository: string) => `repository:${repository}:pull`;

function basic(credentials: UpstreamCredentials): string {
  const bytes = new TextEncoder().encode(`${credentials.username}:${credentials.password}`);
  return `Basic ${bytes.toBase64()}`;
}

/** An upstream refusal, with a little of its body (never credentials: the body is the upstream's). */
async function failure(response: Response, what: string): Promise<UpstreamError> {
  const text = (await response.text().catch(() => "")).slice(0, 200).replace(/\s+/g, " ");
  return new UpstreamError(`${what}: upstream answered ${response.status}${text ? ` (${text})` : ""}`, response.status);
}
