/**
 * The audit log in KV: admin changes and authentication failures, one key per event, kept for a bounded
 * time (KV expiration). Keys sort by time (`audit:<ISO time>:<random>`), and the event rides in the key's
 * metadata, so a time-range query is a prefix list per day with no extra reads. Never holds a secret.
 */
import { kvKeys } from "./keys";
import { listAll } from "./kv-list";

/** Events are kept 90 days. */
export const AUDIT_RETENTION_SECONDS = 90 * 24 * 3600;
/** KV metadata holds at most 1024 bytes; longer details are cut. */
const MAX_DETAIL_LENGTH = 300;

export interface AuditEvent {
  time: string;
  /** Who acted: an admin's username, or for a failed login the username that was tried. */
  actor: string;
  action: string;
  target?: string;
  detail?: string;
}

export interface AuditQuery {
  since: Date;
  until: Date;
  actor?: string;
  limit: number;
}

function dayPrefixes(since: Date, until: Date): string[] {
  const days: string[] = [];
  const day = new Date(Date.UTC(since.getUTCFullYear(), since.getUTCMonth(), since.getUTCDate()));
  while (day <= until && days.length <= 400) {
    days.push(day.toISOString().slice(0, 10));
    day.setUTCDate(day.getUTCDate() + 1);
  }
  return days;
}

export class AuditLog {
  constructor(private readonly kv: KVNamespace) {}

  async record(event: Omit<AuditEvent, "time">, now = new Date()): Promise<void> {
    const entry: AuditEvent = {
      time: now.toISOString(),
      actor: event.actor.slice(0, 128),
      action: event.action,
      ...(event.target ? { target: event.target.slice(0, 300) } : {}),
      ...(event.detail ? { detail: event.detail.slice(0, MAX_DETAIL_LENGTH) } : {}),
    };
    await this.kv.put(kvKeys.auditEvent(entry.time, crypto.randomUUID().slice(0, 8)), "", {
      metadata: entry,
      expirationTtl: AUDIT_RETENTION_SECONDS,
    });
  }

  /** Events in [since, until], oldest first, optionally of one actor. */
  async query(query: AuditQuery): Promise<AuditEvent[]> {
    const events: AuditEvent[] = [];
    for (const day of dayPrefixes(query.since, query.until)) {
      for (const key of await listAll<AuditEvent>(this.kv, kvKeys.auditPrefix(day))) {
        const event = key.metadata;
        if (!event) continue;
        const time = new Date(event.time);
        if (time < query.since || time > query.until) continue;
        if (query.actor !== undefined && event.actor !== query.actor) continue;
        events.push(event);
        if (events.length >= query.limit) return events;
      }
    }
    return events;
  }
}
