/**
 * The notification hub: one Durable Object per namespace (SQLite storage, objectNames.notificationHub), the
 * consistent store of that namespace's webhook subscriptions and of their delivery state (README
 * "Notifications", docs/storage-schema.md). Secrets arrive sealed (crypto/sealed-box.ts) and are stored
 * only so; nothing here returns one except to the queue consumer that signs a delivery.
 *
 * In-order delivery per repository: each subscription keeps, per repository, the sequence number of the next
 * event it must deliver (`delivery_cursors`). The queue does not order messages (platform.md §5), so the
 * consumer asks here first: an earlier number is a duplicate (skipped), a later one waits (held) until the
 * event before it was delivered or given up (dead-lettered).
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../config/env";
import { registryEventType, type RegistryCloudEvent, type RegistryEventType } from "../model/registry-events";
import { objectNames } from "./keys";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS subscriptions (id TEXT PRIMARY KEY, url TEXT NOT NULL, repository TEXT, events TEXT NOT NULL, sealed_secret TEXT NOT NULL, created_at TEXT NOT NULL, created_by TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS delivery_cursors (subscription TEXT NOT NULL, repository TEXT NOT NULL, next_seq INTEGER NOT NULL, PRIMARY KEY (subscription, repository));
CREATE TABLE IF NOT EXISTS deliveries (subscription TEXT NOT NULL, event_id TEXT NOT NULL, repository TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL, http_status INTEGER, last_error TEXT, updated_at TEXT NOT NULL, PRIMARY KEY (subscription, event_id));`;

/** The sealing purpose of webhook secrets (crypto/sealed-box.ts); the additional data binds one to its subscription. */
export const WEBHOOK_SECRET_PURPOSE = "webhook-secret";
export const webhookSecretBinding = (namespace: string, subscription: string) => `${namespace}/${subscription}`;

/** Delivery log entries kept per subscription (newest); older ones are forgotten. */
export const DELIVERY_LOG_LIMIT = 200;

export interface WebhookSubscription {
  id: string;
  url: string;
  /** Only this repository's events; null: every repository of the namespace. */
  repository: string | null;
  events: RegistryEventType[];
  createdAt: string;
  createdBy: string;
}

export interface NewSubscription extends WebhookSubscription {
  sealedSecret: string;
}

export type DeliveryStatus = "delivered" | "retrying" | "dead";

export interface DeliveryLogEntry {
  eventId: string;
  repository: string;
  sequence: number;
  type: string;
  status: DeliveryStatus;
  attempts: number;
  /** The receiver's last HTTP status, if it answered. */
  httpStatus: number | null;
  /** Why the last attempt failed (the receiver's status and the start of its answer, or the network error). */
  lastError: string | null;
  updatedAt: string;
}

export type DeliveryStart =
  | { action: "deliver"; url: string; sealedSecret: string }
  /** Delivered already (an earlier copy of the message), or an event type the subscription does not take. */
  | { action: "skip" }
  /** An earlier event of the repository is not delivered yet. */
  | { action: "hold" }
  /** The subscription was deleted. */
  | { action: "gone" };

type SubscriptionRow = { id: string; url: string; repository: string | null; events: string; sealed_secret: string; created_at: string; created_by: string };

function toSubscription(row: SubscriptionRow): WebhookSubscription {
  return { id: row.id, url: row.url, repository: row.repository, events: JSON.parse(row.events) as RegistryEventType[], createdAt: row.created_at, createdBy: row.created_by };
}

export class NotificationHub extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(SCHEMA);
  }

  /** Adds a subscription unless the namespace holds `limit` already. */
  createSubscription(subscription: NewSubscription, limit: number): WebhookSubscription | null {
    return this.ctx.storage.transactionSync(() => {
      if (this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM subscriptions").one().n >= limit) return null;
      this.sql.exec(
        "INSERT INTO subscriptions (id, url, repository, events, sealed_secret, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
        subscription.id,
        subscription.url,
        subscription.repository,
        JSON.stringify(subscription.events),
        subscription.sealedSecret,
        subscription.createdAt,
        subscription.createdBy,
      );
      const { sealedSecret: _sealed, ...record } = subscription;
      return record;
    });
  }

  listSubscriptions(): WebhookSubscription[] {
    return this.sql.exec<SubscriptionRow>("SELECT * FROM subscriptions ORDER BY created_at, id").toArray().map(toSubscription);
  }

  getSubscription(id: string): WebhookSubscription | null {
    const row = this.sql.exec<SubscriptionRow>("SELECT * FROM subscriptions WHERE id = ?", id).toArray()[0];
    return row ? toSubscription(row) : null;
  }

  /** Deletes a subscription with its delivery state; deliveries still queued for it find it gone. */
  deleteSubscription(id: string): boolean {
    return this.ctx.storage.transactionSync(() => {
      this.sql.exec("DELETE FROM delivery_cursors WHERE subscription = ?", id);
      this.sql.exec("DELETE FROM deliveries WHERE subscription = ?", id);
      return this.sql.exec("DELETE FROM subscriptions WHERE id = ?", id).rowsWritten > 0;
    });
  }

  /** The namespace is deleted: every subscription goes (a namespace created later under the name starts with none). */
  deleteAllSubscriptions(): number {
    return this.ctx.storage.transactionSync(() => {
      this.sql.exec("DELETE FROM delivery_cursors");
      this.sql.exec("DELETE FROM deliveries");
      return this.sql.exec("DELETE FROM subscriptions").rowsWritten;
    });
  }

  /**
   * The subscriptions an event of `repository` committed at `time` goes to: the namespace's and the
   * repository's that existed by then. Every event type: a subscription's cursor counts each event of the
   * repository, so the ones it does not take are passed over in order (startDelivery).
   */
  subscriptionsFor(repository: string, time: string): string[] {
    return this.sql
      .exec<{ id: string }>("SELECT id FROM subscriptions WHERE (repository IS NULL OR repository = ?) AND created_at <= ?", repository, time)
      .toArray()
      .map((row) => row.id);
  }

  /**
   * Whether `event` is next for the subscription in its repository's order. The first event a subscription
   * sees of a repository starts its count there. `force`: the events before it were waited for long enough
   * (lost): they are passed over.
   */
  startDelivery(subscription: string, event: RegistryCloudEvent, force = false): DeliveryStart {
    return this.ctx.storage.transactionSync((): DeliveryStart => {
      const row = this.sql.exec<SubscriptionRow>("SELECT * FROM subscriptions WHERE id = ?", subscription).toArray()[0];
      if (!row) return { action: "gone" };
      const repository = event.data.repository;
      const seq = Number(event.sequence);
      let next = this.sql.exec<{ next_seq: number }>("SELECT next_seq FROM delivery_cursors WHERE subscription = ? AND repository = ?", subscription, repository).toArray()[0]?.next_seq;
      if (next === undefined || (force && seq > next)) {
        this.sql.exec("INSERT OR REPLACE INTO delivery_cursors (subscription, repository, next_seq) VALUES (?, ?, ?)", subscription, repository, seq);
        next = seq;
      }
      if (seq < next) return { action: "skip" };
      if (seq > next) return { action: "hold" };
      const type = registryEventType(event);
      if (type === null || !(JSON.parse(row.events) as string[]).includes(type)) {
        this.advance(subscription, repository, seq);
        return { action: "skip" };
      }
      return { action: "deliver", url: row.url, sealedSecret: row.sealed_secret };
    });
  }

  /** One attempt's outcome, in the delivery log; a success lets the repository's next event go. */
  finishDelivery(subscription: string, event: RegistryCloudEvent, outcome: { ok: boolean; httpStatus: number | null; error: string | null }): void {
    this.ctx.storage.transactionSync(() => {
      if (this.sql.exec("SELECT 1 FROM subscriptions WHERE id = ?", subscription).toArray().length === 0) return;
      this.log(subscription, event, outcome.ok ? "delivered" : "retrying", 1, outcome.httpStatus, outcome.error);
      if (outcome.ok) this.advance(subscription, event.data.repository, Number(event.sequence));
    });
  }

  /** The queue gave up on a delivery (its dead-letter queue's consumer reports it): logged, and the next event may go. */
  deadLetter(subscription: string, event: RegistryCloudEvent, reason: string): void {
    this.ctx.storage.transactionSync(() => {
      if (this.sql.exec("SELECT 1 FROM subscriptions WHERE id = ?", subscription).toArray().length === 0) return;
      const last = this.sql.exec<{ last_error: string | null }>("SELECT last_error FROM deliveries WHERE subscription = ? AND event_id = ?", subscription, event.id).toArray()[0]?.last_error;
      this.log(subscription, event, "dead", 0, null, last ? `${reason}; last error: ${last}`.slice(0, 400) : reason);
      this.advance(subscription, event.data.repository, Number(event.sequence));
    });
  }

  /** The newest `limit` entries of a subscription's delivery log, newest first. */
  deliveryLog(subscription: string, limit: number): DeliveryLogEntry[] {
    return this.sql
      .exec<{ event_id: string; repository: string; seq: number; type: string; status: DeliveryStatus; attempts: number; http_status: number | null; last_error: string | null; updated_at: string }>(
        "SELECT * FROM deliveries WHERE subscription = ? ORDER BY updated_at DESC, seq DESC LIMIT ?",
        subscription,
        limit,
      )
      .toArray()
      .map((row) => ({
        eventId: row.event_id,
        repository: row.repository,
        sequence: row.seq,
        type: row.type,
        status: row.status,
        attempts: row.attempts,
        httpStatus: row.http_status,
        lastError: row.last_error,
        updatedAt: row.updated_at,
      }));
  }

  private advance(subscription: string, repository: string, seq: number): void {
    this.sql.exec("UPDATE delivery_cursors SET next_seq = ? WHERE subscription = ? AND repository = ? AND next_seq <= ?", seq + 1, subscription, repository, seq);
  }

  private log(subscription: string, event: RegistryCloudEvent, status: DeliveryStatus, attempts: number, httpStatus: number | null, error: string | null): void {
    this.sql.exec(
      `INSERT INTO deliveries (subscription, event_id, repository, seq, type, status, attempts, http_status, last_error, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (subscription, event_id) DO UPDATE SET status = excluded.status, attempts = attempts + excluded.attempts,
         http_status = COALESCE(excluded.http_status, http_status), last_error = COALESCE(excluded.last_error, last_error), updated_at = excluded.updated_at`,
      subscription,
      event.id,
      event.data.repository,
      Number(event.sequence),
      event.type,
      status,
      attempts,
      httpStatus,
      error,
      new Date().toISOString(),
    );
    this.sql.exec(
      "DELETE FROM deliveries WHERE subscription = ? AND rowid NOT IN (SELECT rowid FROM deliveries WHERE subscription = ? ORDER BY updated_at DESC LIMIT ?)",
      subscription,
      subscription,
      DELIVERY_LOG_LIMIT,
    );
  }
}

export function notificationHubFor(hubs: DurableObjectNamespace<NotificationHub>, namespace: string): DurableObjectStub<NotificationHub> {
  return hubs.get(hubs.idFromName(objectNames.notificationHub(namespace)));
}
