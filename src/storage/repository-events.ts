/**
 * The repository ledger's event outbox (README "Notifications", docs/storage-schema.md `event_outbox`): each
 * committed change is recorded here in the same transaction as the change, numbered in commit order (the
 * AUTOINCREMENT rowid never reuses a number, even after the rows are sent and deleted), and handed to the
 * notification queue afterwards, retried with backoff by the ledger's alarm until the queue accepts it, as
 * the KV publication is. A push never waits for a receiver: sending only enqueues.
 */
import type { Env } from "../config/env";
import { buildRegistryEvent, type NotificationMessage, type RegistryEventData, type RegistryEventType } from "../model/registry-events";
import { namespaceOf } from "../model/grants";

export const EVENT_OUTBOX_SCHEMA = `
CREATE TABLE IF NOT EXISTS event_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, type TEXT NOT NULL, time TEXT NOT NULL, data TEXT NOT NULL, not_before INTEGER NOT NULL, attempts INTEGER NOT NULL);`;

/** Queues: `sendBatch` takes at most 100 messages (platform.md §5). */
const SEND_BATCH = 100;
const MAX_SEND_RETRY_MS = 5 * 60_000;

export class EventOutbox {
  private sending: Promise<void> = Promise.resolve();

  constructor(
    private readonly sql: SqlStorage,
    private readonly env: Env,
  ) {}

  /** Inside the change's transaction. Nothing is recorded where no notification queue is bound. */
  record(type: RegistryEventType, data: RegistryEventData, time = new Date().toISOString()): void {
    if (!this.env.NOTIFICATION_QUEUE) return;
    this.sql.exec("INSERT INTO event_outbox (id, type, time, data, not_before, attempts) VALUES (?, ?, ?, ?, 0, 0)", crypto.randomUUID(), type, time, JSON.stringify(data));
  }

  /** When the next unsent event is due (null: none). */
  nextAttempt(): number | null {
    return this.sql.exec<{ t: number | null }>("SELECT MIN(not_before) AS t FROM event_outbox").toArray()[0]?.t ?? null;
  }

  hasDue(now = Date.now()): boolean {
    return this.sql.exec("SELECT 1 FROM event_outbox WHERE not_before <= ? LIMIT 1", now).toArray().length > 0;
  }

  /** Hands every due event to the queue, in sequence order; one round at a time per ledger instance. */
  send(): Promise<void> {
    this.sending = this.sending.then(() => this.sendDue()).catch(() => undefined);
    return this.sending;
  }

  private async sendDue(): Promise<void> {
    const queue = this.env.NOTIFICATION_QUEUE;
    if (!queue) return;
    for (let round = 0; round < 10; round += 1) {
      const rows = this.sql
        .exec<{ seq: number; id: string; type: RegistryEventType; time: string; data: string; attempts: number }>(
          "SELECT seq, id, type, time, data, attempts FROM event_outbox WHERE not_before <= ? ORDER BY seq LIMIT ?",
          Date.now(),
          SEND_BATCH,
        )
        .toArray();
      if (rows.length === 0) return;
      const messages = rows.map((row) => {
        const data = JSON.parse(row.data) as RegistryEventData;
        const source = `${this.env.PUBLIC_URL?.replace(/\/+$/, "") ?? ""}/v2/${data.repository}`;
        const event = buildRegistryEvent({ id: row.id, seq: row.seq, type: row.type, time: row.time, source, data });
        return { body: { kind: "event", namespace: namespaceOf(data.repository), event } satisfies NotificationMessage, contentType: "json" as const };
      });
      const first = rows[0]!.seq;
      const last = rows.at(-1)!.seq;
      try {
        await queue.sendBatch(messages);
        this.sql.exec("DELETE FROM event_outbox WHERE seq >= ? AND seq <= ? AND not_before <= ?", first, last, Date.now());
      } catch (error) {
        // Retried by the alarm (the ledger schedules it from nextAttempt), backing off per attempt.
        const delay = Math.min(MAX_SEND_RETRY_MS, 1000 * 2 ** Math.min(rows[0]!.attempts, 20));
        this.sql.exec("UPDATE event_outbox SET attempts = attempts + 1, not_before = ? WHERE seq >= ? AND seq <= ?", Date.now() + delay, first, last);
        console.error(JSON.stringify({ event: "notification_enqueue_failed", events: rows.length, error: String(error).slice(0, 200) }));
        return;
      }
    }
  }
}
