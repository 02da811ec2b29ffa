/**
 * The audit log in KV: admin changes and authentication failures, kept for a bounded time (KV expiration).
 *
 * Records are bounded by construction (`buildAuditEvent`): every field is cleaned of control characters and
 * cut to a byte budget measured on its JSON form, so the event always fits KV's 1,024-byte metadata limit
 * (platform.md §1 [lim]) whatever an actor typed. The event rides in the key's metadata, so a list page is
 * a page of events with no extra reads.
 *
 * Each event is written to several streams (one key each), so that every query is a prefix list of one
 * stream, newest first, without reading events it does not return:
 *  - `change` (every admin change) or `auth` (failed logins: kept apart, so a flood of them cannot bury
 *    admin changes);
 *  - `action/<action>` for changes;
 *  - `actor/<change|auth>/<hash of the actor>`.
 * Keys are `audit:<stream>:<inverted day>:<inverted ms>:<unique>`: a prefix per day lets a query start at
 * `until` without listing newer days, and inverted times list newest first.
 */
import { sha256Hex } from "../crypto/bytes";
import { kvKeys } from "./keys";

/** Events are kept 90 days. */
export const AUDIT_RETENTION_SECONDS = 90 * 24 * 3600;
/** KV metadata limit (platform.md §1 [lim]). */
export const KV_METADATA_LIMIT_BYTES = 1024;
/** The action of a failed credential check; every other action is an admin change. */
export const AUTH_FAILURE_ACTION = "auth.failure";

/** Byte budgets of each field's JSON string form; with the JSON punctuation they total well under 1,024. */
const BUDGET = { actor: 160, action: 40, target: 240, detail: 400 } as const;
const ACTION = /^[a-z][a-z.-]{0,39}$/;
/** List calls one query may make before it answers with a cursor to continue from. */
const MAX_LIST_CALLS = 40;
const DAY_MS = 86_400_000;
const MAX_DAY = 99_999;
const MAX_MS = 9_999_999_999_999;

export interface AuditEvent {
  time: string;
  /** Who acted: an admin's username, or for a failed login the username that was tried (cleaned and cut). */
  actor: string;
  action: string;
  target?: string;
  detail?: string;
}

export interface AuditInput {
  actor: string;
  action: string;
  target?: string;
  detail?: string;
}

export interface AuditQuery {
  since: Date;
  until: Date;
  actor?: string;
  action?: string;
  limit: number;
  /** From a previous page's `cursor`. */
  cursor?: string;
  /** Keeps only the events it accepts (a namespace's, for its administrators); the list calls stay bounded. */
  where?: (event: AuditEvent) => boolean;
}

export interface AuditPage {
  events: AuditEvent[];
  /** Continue with this cursor; undefined when the range is exhausted. */
  cursor?: string;
}

/** Thrown for a cursor that this log did not hand out for the same query. */
export class AuditCursorError extends Error {
  override name = "AuditCursorError";
}

/** Bytes a code point takes inside a JSON string (after cleaning: no control characters, no lone surrogates). */
function jsonBytes(codePoint: number): number {
  if (codePoint === 0x22 || codePoint === 0x5c) return 2;
  if (codePoint < 0x80) return 1;
  if (codePoint < 0x800) return 2;
  return codePoint < 0x10000 ? 3 : 4;
}

/**
 * `value` without control characters (C0, DEL, C1, line/paragraph separators, bidi controls) or lone
 * surrogates, each replaced by U+FFFD, cut to `budget` bytes of JSON (ending in "…" when cut).
 */
export function boundedText(value: string, budget: number): string {
  // Every code unit takes at least one byte, so budget + 1 units are enough to decide and cut.
  const cleaned = value
    .slice(0, budget + 1)
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, "\ufffd")
    .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
  const sizes = [...cleaned].map((char) => [char, jsonBytes(char.codePointAt(0)!)] as const);
  if (sizes.reduce((sum, [, size]) => sum + size, 0) <= budget) return cleaned;
  let used = 3; // the ellipsis
  let out = "";
  for (const [char, size] of sizes) {
    if (used + size > budget) break;
    used += size;
    out += char;
  }
  return `${out}…`;
}

/** Builds a bounded event; an action outside the action grammar is a programming error. */
export function buildAuditEvent(input: AuditInput, now = new Date()): AuditEvent {
  if (!ACTION.test(input.action)) throw new Error(`invalid audit action ${JSON.stringify(input.action.slice(0, 40))}`);
  const event: AuditEvent = {
    time: now.toISOString(),
    actor: boundedText(input.actor, BUDGET.actor),
    action: input.action,
    ...(input.target ? { target: boundedText(input.target, BUDGET.target) } : {}),
    ...(input.detail ? { detail: boundedText(input.detail, BUDGET.detail) } : {}),
  };
  // Cannot fail by construction (budgets + punctuation < 1,024); kept as the invariant's last line.
  if (new TextEncoder().encode(JSON.stringify(event)).length >= KV_METADATA_LIMIT_BYTES) throw new Error("audit event over budget");
  return event;
}

/** The actor as it is stored, so a query by a long or odd name finds what was recorded. */
export function storedActor(actor: string): string {
  return boundedText(actor, BUDGET.actor);
}

export function isValidAuditAction(action: string): boolean {
  return ACTION.test(action);
}

const kindOf = (action: string) => (action === AUTH_FAILURE_ACTION ? "auth" : "change");

async function actorHash(actor: string): Promise<string> {
  return (await sha256Hex(storedActor(actor))).slice(0, 32);
}

const dayOf = (ms: number) => Math.floor(ms / DAY_MS);
const invertedDay = (day: number) => String(MAX_DAY - day).padStart(5, "0");
const invertedMs = (ms: number) => String(MAX_MS - ms).padStart(13, "0");

interface Cursor {
  /** Stream the cursor belongs to. */
  s: string;
  /** Day being listed. */
  d: number;
  /** KV cursor of the page being listed (absent: the day's first page). */
  c?: string;
  /** Last key returned from that page. */
  k?: string;
}

function encodeCursor(cursor: Cursor): string {
  return btoa(JSON.stringify(cursor)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function decodeCursor(text: string, stream: string): Cursor {
  try {
    if (text.length > 2048) throw new Error("too long");
    const value = JSON.parse(atob(text.replace(/-/g, "+").replace(/_/g, "/"))) as Cursor;
    if (value.s !== stream || !Number.isInteger(value.d) || value.d < 0 || value.d > MAX_DAY) throw new Error("foreign");
    if (value.c !== undefined && typeof value.c !== "string") throw new Error("bad kv cursor");
    if (value.k !== undefined && (typeof value.k !== "string" || !value.k.startsWith(`audit:${stream}:`))) throw new Error("bad key");
    return value;
  } catch {
    throw new AuditCursorError("cursor is malformed or belongs to another query");
  }
}

export class AuditLog {
  constructor(private readonly kv: KVNamespace) {}

  /** Writes a bounded event to each of its streams; resolves only once every key is written. */
  async record(input: AuditInput, now = new Date()): Promise<AuditEvent> {
    const event = buildAuditEvent(input, now);
    await this.write(event);
    return event;
  }

  /** Writes an event built with buildAuditEvent (callers that validate a change's record before making it). */
  async write(event: AuditEvent): Promise<void> {
    const kind = kindOf(event.action);
    const streams = [kind, `actor/${kind}/${await actorHash(event.actor)}`];
    if (kind === "change") streams.push(`action/${event.action}`);
    const ms = Date.parse(event.time);
    const unique = crypto.randomUUID().slice(0, 8);
    await Promise.all(
      streams.map((stream) =>
        this.kv.put(kvKeys.auditEvent(stream, invertedDay(dayOf(ms)), invertedMs(ms), unique), "", {
          metadata: event,
          expirationTtl: AUDIT_RETENTION_SECONDS,
        }),
      ),
    );
  }

  /**
   * Events in [since, until], newest first, at most `limit`, from the one stream the filters select:
   * failed logins only with `action=auth.failure`; an actor's changes or failures from that actor's stream.
   * Work is bounded: at most MAX_LIST_CALLS list calls, then a cursor to continue from.
   */
  async query(query: AuditQuery): Promise<AuditPage> {
    const kind = query.action ? kindOf(query.action) : "change";
    const stream =
      query.actor !== undefined ? `actor/${kind}/${await actorHash(query.actor)}` : query.action && kind === "change" ? `action/${query.action}` : kind;
    const matches = (event: AuditEvent) =>
      (query.actor === undefined || event.actor === storedActor(query.actor)) && (query.action === undefined || event.action === query.action) &&
      (query.where === undefined || query.where(event));
    const since = query.since.getTime();
    const until = query.until.getTime();
    const lastDay = dayOf(since);
    const start = query.cursor ? decodeCursor(query.cursor, stream) : { s: stream, d: dayOf(until) };
    let day = start.d;
    let pageCursor = start.c;
    let skipThrough = start.k;
    const events: AuditEvent[] = [];
    for (let calls = 0; day >= lastDay; calls++) {
      if (calls >= MAX_LIST_CALLS) return { events, cursor: encodeCursor({ s: stream, d: day, c: pageCursor, k: skipThrough }) };
      const page = await this.kv.list<AuditEvent>({ prefix: kvKeys.auditDayPrefix(stream, invertedDay(day)), cursor: pageCursor });
      for (const key of page.keys) {
        // Keys sort newest first; resuming inside a page skips what the previous answer returned.
        if (skipThrough !== undefined && key.name <= skipThrough) continue;
        const event = key.metadata;
        if (!event) continue;
        const time = Date.parse(event.time);
        if (time > until || !matches(event)) continue;
        if (time < since) return { events };
        events.push(event);
        if (events.length >= query.limit) return { events, cursor: encodeCursor({ s: stream, d: day, c: pageCursor, k: key.name }) };
      }
      skipThrough = undefined;
      if (page.list_complete) {
        day -= 1;
        pageCursor = undefined;
      } else {
        pageCursor = page.cursor;
      }
    }
    return { events };
  }
}

/** The actor of garbage collection's automatic actions (alarms, cron) in the audit log. */
export const GC_ACTOR = "gc";

/**
 * Records an action an alarm or the cron trigger took by itself (docs/lifecycle.md "Audit of automatic
 * actions"), after it was made, since its counts are known only then. A failed write is logged, never thrown:
 * the action is done, and a retried alarm must not repeat it for the sake of its record.
 */
export async function recordLifecycleAction(kv: KVNamespace, input: Omit<AuditInput, "actor"> & { actor?: string }): Promise<void> {
  try {
    await new AuditLog(kv).record({ actor: GC_ACTOR, ...input });
  } catch (error) {
    console.error(JSON.stringify({ event: "lifecycle_audit_failed", action: input.action, error: String(error).slice(0, 200) }));
  }
}
