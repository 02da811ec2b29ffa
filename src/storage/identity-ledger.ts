/**
 * The identity ledger: one Durable Object (SQLite storage, named "identities"), the single writer and the
 * consistent reader of namespaces with their organization ids, web users, service accounts and the grants
 * on their records, and web users' refresh tokens (docker's identity tokens).
 *
 * Every operation is one synchronous transaction (`transactionSync`: nothing interleaves with it and a throw
 * rolls it back, platform.md §2). Edits are applied as operations on the current record inside it (a grant
 * set or revoked; a record change expressed as the fields the caller changed, checked against what the
 * caller read), so two administrators editing one record never lose each other's edit: either both apply or
 * the later one is refused as a conflict. Deleting a namespace deletes its service accounts and every grant
 * naming it or a repository in it, in the same transaction.
 *
 * Refresh tokens live here too (`refresh_tokens`): issuing, revoking and listing them are ledger operations,
 * and a user's refresh epoch is a field of the user's record (`refreshEpoch`). A change that must end the
 * user's tokens (a disable, a password change, a delete) draws a new epoch and deletes the user's tokens in
 * the same transaction as the change itself, so no token outlives it in the ledger, a login racing it gets
 * none (issuance checks that the password the login verified is still the user's, and the user enabled), and
 * re-enabling the user brings none back. A new user gets a fresh random epoch, so a user recreated under a name inherits nothing.
 *
 * After each commit the changed keys (`ns:`, `org:`, `user:`, `sa:`, `refresh:`; same values as before the ledger) are
 * published to Workers KV, the token endpoint's read path. The outbox table is the memory of what is
 * unpublished: a key is marked in the same transaction as the change, its current value is written
 * afterwards, and the alarm retries until KV accepts it. KV takes one write per second per key
 * (platform.md §1), so a second write to a key within a second waits for the alarm.
 *
 * Records written to KV before the ledger existed are imported once, at the ledger's first use (see
 * `importFromKv`); from then on the ledger is the only writer of these keys.
 */
import { DurableObject } from "cloudflare:workers";
import { namespaceOf, type Grant, type GrantTarget, type Role } from "../model/grants";
import { principalIds, principalKindOf, principalUsername, type PrincipalId } from "../model/principal";
import type { Env } from "../config/env";
import type { PasswordHash } from "../crypto/secrets";
import type { NamespaceRecord, ServiceAccountRecord, UserRecord } from "./identity-store";
import { kvKeys, objectNames } from "./keys";
import type { RefreshTokenRecord, RefreshTokenSummary } from "./refresh-token-store";

/** The one instance's name (`idFromName`). */
export const IDENTITY_LEDGER_NAME = objectNames.identityLedger;

/** KV refuses a second write to a key within one second (platform.md §1). */
const KV_KEY_WRITE_INTERVAL_MS = 1000;
/** Failed publications are retried after 2 s, doubling, at most every minute. */
const FIRST_RETRY_DELAY_MS = 2000;
const MAX_RETRY_DELAY_MS = 60_000;
/** When the alarm set at a commit fires should the publication that follows the commit not finish. */
const SAFETY_NET_DELAY_MS = 5000;
/** Publications per round; further rounds follow at once. */
const PUBLISH_BATCH = 50;
/** Keys per KV list page during the import (each unknown key then costs one read). */
const IMPORT_PAGE_KEYS = 200;
/** Marks the import of refresh tokens and epochs (added after the first import; a ledger that has run that one runs this part once). */
const IMPORT_REFRESH_DONE = "import-refresh-tokens";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS namespaces (name TEXT PRIMARY KEY, organization_id TEXT NOT NULL UNIQUE, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS organization_ids (id TEXT PRIMARY KEY, namespace TEXT NOT NULL, retired_at TEXT);
CREATE TABLE IF NOT EXISTS principals (id TEXT PRIMARY KEY, kind TEXT NOT NULL, namespace TEXT, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS principals_by_namespace ON principals (namespace);
CREATE TABLE IF NOT EXISTS grants (principal TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, namespace TEXT NOT NULL, role TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (principal, kind, name));
CREATE INDEX IF NOT EXISTS grants_by_namespace ON grants (namespace);
CREATE TABLE IF NOT EXISTS refresh_tokens (id TEXT PRIMARY KEY, username TEXT NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS refresh_tokens_by_username ON refresh_tokens (username);
CREATE TABLE IF NOT EXISTS outbox (key TEXT PRIMARY KEY, source TEXT NOT NULL, source_id TEXT NOT NULL, version INTEGER NOT NULL, not_before INTEGER NOT NULL, retry_at INTEGER NOT NULL, attempts INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS published (key TEXT PRIMARY KEY, at INTEGER NOT NULL);
`;

/** Where an outbox key's value comes from: a namespace, an organization id, a principal, a refresh token, or a key only ever deleted. */
type Source = "ns" | "org" | "principal" | "refresh" | "delete";

/** One top-level field a caller changed: its JSON as read (`from`) and as written (`to`); "" is absent. */
export interface FieldChange {
  field: string;
  from: string;
  to: string;
}

export type LedgerRefusal = { ok: false; status: 400 | 404 | 409; message: string };
export type LedgerResult<T> = { ok: true; value: T } | LedgerRefusal;

export interface NamespaceDeletion {
  /** Service accounts deleted with the namespace. */
  serviceAccounts: string[];
  /** Principals that lost grants (on the namespace or a repository in it). */
  principalsUpdated: PrincipalId[];
  grantsRemoved: number;
}

type PrincipalRecord = UserRecord | ServiceAccountRecord;

/** A refusal thrown inside a transaction (rolling it back) and returned as a LedgerRefusal. */
class Refused extends Error {
  constructor(
    readonly status: 400 | 404 | 409,
    message: string,
  ) {
    super(message);
  }
}

/** Fields no edit may change: they name the record or tie it to its namespace. */
const IMMUTABLE_FIELDS = new Set(["name", "organizationId", "username", "namespace", "createdAt", "refreshEpoch"]);

/** The KV key of a principal's record. */
export function principalKey(id: PrincipalId): string {
  return principalKindOf(id) === "user" ? kvKeys.user(principalUsername(id)) : kvKeys.serviceAccount(principalUsername(id));
}

/** The `principals.kind` column as stored: `user` or `sa`. */
function rowKind(id: PrincipalId): "user" | "sa" {
  return principalKindOf(id) === "user" ? "user" : "sa";
}

function encodeField(value: unknown): string {
  return value === undefined ? "" : JSON.stringify(value);
}

export class IdentityLedger extends DurableObject<Env> {
  /** Where publications go: the Worker's KV namespace (a test may wrap it to make writes fail). */
  kv: KVNamespace;
  private readonly sql: SqlStorage;
  private imported: boolean;
  private importing: Promise<void> | undefined;
  /** Publication rounds run one at a time, so one key is never written twice at once. */
  private publishing: Promise<void> = Promise.resolve();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.kv = env.REGISTRY_KV;
    this.sql = ctx.storage.sql;
    this.sql.exec(SCHEMA);
    this.imported = this.meta("import") === "done" && this.meta(IMPORT_REFRESH_DONE) === "done";
  }

  // ---- reads ----

  async getNamespace(name: string): Promise<NamespaceRecord | null> {
    await this.ready();
    return this.namespaceRecord(name);
  }

  /** For a reader whose KV read missed: the record, and (when there is one) a fresh publication of it. */
  async getNamespaceForEdge(name: string): Promise<NamespaceRecord | null> {
    await this.ready();
    const record = this.namespaceRecord(name);
    if (record) await this.republish(kvKeys.namespace(name), "ns", name);
    return record;
  }

  async listNamespaces(): Promise<NamespaceRecord[]> {
    await this.ready();
    return this.sql.exec<{ record: string }>("SELECT record FROM namespaces ORDER BY name").toArray().map((row) => JSON.parse(row.record) as NamespaceRecord);
  }

  /** Whether an id belongs, or ever belonged, to a namespace (ids are never reused). */
  async isOrganizationIdTaken(id: string): Promise<boolean> {
    await this.ready();
    return this.organizationIdTaken(id);
  }

  async getPrincipal(id: PrincipalId): Promise<PrincipalRecord | null> {
    await this.ready();
    return this.principalRecord(id);
  }

  /**
   * For the token endpoint after a KV miss (a cached negative, or a key not yet or no longer published):
   * the record, and a fresh publication of it, so a credential works the moment its creation is
   * acknowledged and a lost KV record comes back.
   */
  async getPrincipalForEdge(id: PrincipalId): Promise<PrincipalRecord | null> {
    await this.ready();
    const record = this.principalRecord(id);
    if (record) await this.republish(principalKey(id), "principal", id);
    return record;
  }

  async listPrincipals(kind: "user" | "sa"): Promise<PrincipalRecord[]> {
    await this.ready();
    const rows = this.sql.exec<{ id: string }>("SELECT id FROM principals WHERE kind = ? ORDER BY id", kind).toArray();
    return rows.map((row) => this.principalRecord(row.id as PrincipalId)!);
  }

  // ---- namespaces ----

  /** Creates a namespace; allocates a fresh organization id unless one is given (which must be unused). */
  async createNamespace(input: { name: string; public: boolean; createdAt: string; organizationId?: string }): Promise<LedgerResult<NamespaceRecord>> {
    return this.commit(() => {
      if (this.namespaceRecord(input.name)) throw new Refused(409, `namespace ${input.name} exists`);
      if (input.organizationId !== undefined && (!/^[0-9]{8}$/.test(input.organizationId) || this.organizationIdTaken(input.organizationId))) {
        throw new Refused(409, `organization id ${input.organizationId} is taken`);
      }
      const organizationId = input.organizationId ?? this.allocateOrganizationId();
      const record: NamespaceRecord = { name: input.name, organizationId, public: input.public, createdAt: input.createdAt };
      this.sql.exec("INSERT INTO namespaces (name, organization_id, record) VALUES (?, ?, ?)", record.name, organizationId, JSON.stringify(record));
      this.sql.exec("INSERT INTO organization_ids (id, namespace, retired_at) VALUES (?, ?, NULL)", organizationId, record.name);
      this.enqueue(kvKeys.organizationId(organizationId), "org", organizationId);
      this.enqueue(kvKeys.namespace(record.name), "ns", record.name);
      return record;
    });
  }

  /** Applies the fields a caller changed (only `public` may change) to the current namespace record. */
  async patchNamespace(name: string, changes: FieldChange[]): Promise<LedgerResult<NamespaceRecord>> {
    return this.commit(() => {
      const current = this.namespaceRecord(name);
      if (!current) throw new Refused(404, `namespace ${JSON.stringify(name)} does not exist`);
      const updated = applyChanges(current as unknown as Record<string, unknown>, changes) as unknown as NamespaceRecord;
      if (updated === (current as unknown)) return current;
      if (typeof updated.public !== "boolean") throw new Refused(400, "public must be true or false");
      this.sql.exec("UPDATE namespaces SET record = ? WHERE name = ?", JSON.stringify(updated), name);
      this.enqueue(kvKeys.namespace(name), "ns", name);
      return updated;
    });
  }

  /**
   * Deletes a namespace and, atomically with it, its service accounts and every grant that names it or a
   * repository in it (issue 10, defect 3). Its organization id is retired, never reallocated, so a
   * namespace created later under the same name inherits nothing. `organizationId`, when given, must be
   * the current one (the record the caller saw, not a namespace recreated since).
   */
  async deleteNamespace(name: string, organizationId?: string): Promise<LedgerResult<NamespaceDeletion>> {
    return this.commit(() => {
      const record = this.namespaceRecord(name);
      if (!record) throw new Refused(404, `namespace ${JSON.stringify(name)} does not exist`);
      if (organizationId !== undefined && organizationId !== record.organizationId) {
        throw new Refused(409, `namespace ${name} was recreated meanwhile`);
      }
      const serviceAccounts = this.sql
        .exec<{ id: string }>(
          "SELECT id FROM principals WHERE kind = 'sa' AND (namespace = ? OR substr(id, 1, ?) = ?)",
          name,
          principalIds.serviceAccountsOfOrganization(record.organizationId).length,
          principalIds.serviceAccountsOfOrganization(record.organizationId),
        )
        .toArray()
        .map((row) => row.id as PrincipalId);
      for (const id of serviceAccounts) this.removePrincipal(id);
      const holders = this.sql
        .exec<{ principal: string; n: number }>("SELECT principal, COUNT(*) AS n FROM grants WHERE namespace = ? GROUP BY principal", name)
        .toArray();
      this.sql.exec("DELETE FROM grants WHERE namespace = ?", name);
      for (const holder of holders) this.enqueue(principalKey(holder.principal as PrincipalId), "principal", holder.principal);
      this.sql.exec("DELETE FROM namespaces WHERE name = ?", name);
      this.sql.exec("UPDATE organization_ids SET retired_at = ? WHERE id = ?", new Date().toISOString(), record.organizationId);
      this.enqueue(kvKeys.namespace(name), "ns", name);
      this.enqueue(kvKeys.organizationId(record.organizationId), "org", record.organizationId);
      return {
        serviceAccounts: serviceAccounts.map(principalUsername),
        principalsUpdated: holders.map((holder) => holder.principal as PrincipalId),
        grantsRemoved: holders.reduce((sum, holder) => sum + holder.n, 0),
      };
    });
  }

  // ---- users and service accounts ----

  /** Creates a principal; refused when it exists, or names (or grants on) a namespace that does not exist. */
  async createPrincipal(id: PrincipalId, record: PrincipalRecord): Promise<LedgerResult<PrincipalRecord>> {
    return this.commit(() => {
      if (record.username !== principalUsername(id)) throw new Refused(400, "the record does not match its principal");
      if (this.principalExists(id)) throw new Refused(409, `${principalKindOf(id) === "user" ? "user" : "service account"} ${record.username} exists`);
      const { grants, ...rest } = record;
      // A web user's refresh epoch is the ledger's own, fresh for every user (a recreated name inherits no token).
      if (principalKindOf(id) === "user") (rest as Omit<UserRecord, "grants">).refreshEpoch = crypto.randomUUID();
      let namespace: string | null = null;
      if (principalKindOf(id) === "service-account") {
        namespace = (record as ServiceAccountRecord).namespace;
        const owner = this.namespaceRecord(namespace);
        if (!owner || !record.username.startsWith(`${owner.organizationId}|`)) throw new Refused(404, `namespace ${JSON.stringify(namespace)} does not exist`);
      }
      this.sql.exec("INSERT INTO principals (id, kind, namespace, record) VALUES (?, ?, ?, ?)", id, rowKind(id), namespace, JSON.stringify(rest));
      this.replaceGrants(id, grants ?? []);
      this.enqueue(principalKey(id), "principal", id);
      return this.principalRecord(id)!;
    });
  }

  /**
   * Applies the fields a caller changed to the current record: a field someone else changed meanwhile to
   * another value is a conflict (409), fields the caller did not touch keep their current values (a grant
   * set meanwhile survives a password change). A record deleted meanwhile is not recreated (404).
   */
  async patchPrincipal(id: PrincipalId, changes: FieldChange[]): Promise<LedgerResult<PrincipalRecord>> {
    return this.commit(() => {
      const current = this.principalRecord(id);
      if (!current) throw new Refused(404, `${id} no longer exists`);
      const updated = applyChanges(current as unknown as Record<string, unknown>, changes) as unknown as PrincipalRecord;
      if (updated === (current as unknown)) return current;
      const { grants, ...rest } = updated;
      if (!Array.isArray(grants)) throw new Refused(400, "grants must be a list");
      if (principalKindOf(id) === "user" && endsRefreshTokens(current as UserRecord, updated as UserRecord)) {
        // In the same transaction as the disable or password change: no token of the old epoch survives it.
        (rest as Omit<UserRecord, "grants">).refreshEpoch = crypto.randomUUID();
        this.endRefreshTokens(current.username);
      }
      this.sql.exec("UPDATE principals SET record = ? WHERE id = ?", JSON.stringify(rest), id);
      if (changes.some((change) => change.field === "grants")) this.replaceGrants(id, grants);
      this.enqueue(principalKey(id), "principal", id);
      return this.principalRecord(id)!;
    });
  }

  /** Deletes a principal and its grants; false when there was none. */
  async deletePrincipal(id: PrincipalId): Promise<LedgerResult<boolean>> {
    return this.commit(() => {
      if (!this.principalExists(id)) return false;
      this.removePrincipal(id);
      return true;
    });
  }

  /**
   * Sets (role given) or revokes (role undefined) the grant of `id` on `target`, on the current record.
   * Returns false when there is no such principal, or no such grant to revoke. A grant on a namespace that
   * does not exist (or a repository in one) is refused: a grant never outlives what it names.
   */
  async setGrant(id: PrincipalId, target: GrantTarget, role: Role | undefined): Promise<LedgerResult<boolean>> {
    return this.commit(() => {
      if (!this.principalExists(id)) return false;
      if (role === undefined) {
        const existing = this.sql.exec("SELECT 1 FROM grants WHERE principal = ? AND kind = ? AND name = ?", id, target.kind, target.name).toArray();
        if (existing.length === 0) return false;
        this.sql.exec("DELETE FROM grants WHERE principal = ? AND kind = ? AND name = ?", id, target.kind, target.name);
      } else {
        this.insertGrant(id, { target, role });
      }
      this.enqueue(principalKey(id), "principal", id);
      return true;
    });
  }

  // ---- refresh tokens ----

  /**
   * Records a refresh token issued by a login that verified the password whose stored hash is `verified`,
   * under the user's current refresh epoch. Refused (409) when the user no longer exists, is disabled, or has
   * another password now: the login checked a record older than the ledger's (KV or the login cache,
   * platform.md §1) from before a delete, disable or password change, and must not get a token. A login that
   * checked an older record with the current password (the user was re-enabled since) gets one.
   */
  async issueRefreshToken(token: Omit<RefreshTokenRecord, "epoch">, verified: PasswordHash): Promise<LedgerResult<RefreshTokenRecord>> {
    return this.commit(() => {
      const user = this.principalRecord(principalIds.user(token.username)) as UserRecord | null;
      const samePassword = user !== null && user.password.hash === verified.hash && user.password.salt === verified.salt;
      if (!user || user.disabled || !samePassword) throw new Refused(409, "the user changed since the login was checked");
      if (this.refreshTokenRecord(token.id)) throw new Refused(409, "refresh token id taken");
      const record: RefreshTokenRecord = { ...token, epoch: user.refreshEpoch ?? "" };
      this.sql.exec("INSERT INTO refresh_tokens (id, username, record) VALUES (?, ?, ?)", record.id, record.username, JSON.stringify(record));
      this.enqueue(kvKeys.refreshToken(record.id), "refresh", record.id);
      return record;
    });
  }

  async getRefreshToken(id: string): Promise<RefreshTokenRecord | null> {
    await this.ready();
    return this.refreshTokenRecord(id);
  }

  /** For a redemption whose KV read missed: the record, and (when there is one) a fresh publication of it. */
  async getRefreshTokenForEdge(id: string): Promise<RefreshTokenRecord | null> {
    await this.ready();
    const record = this.refreshTokenRecord(id);
    if (record) await this.republish(kvKeys.refreshToken(id), "refresh", id);
    return record;
  }

  /** A user's tokens, oldest first, without their hashes. */
  async listRefreshTokens(username: string): Promise<RefreshTokenSummary[]> {
    await this.ready();
    return this.sql
      .exec<{ record: string }>("SELECT record FROM refresh_tokens WHERE username = ?", username)
      .toArray()
      .map((row) => {
        const { secretHash: _hash, epoch: _epoch, ...summary } = JSON.parse(row.record) as RefreshTokenRecord;
        return summary;
      })
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  /** Revokes one of a user's tokens; false where the user holds no such token. */
  async revokeRefreshToken(username: string, id: string): Promise<LedgerResult<boolean>> {
    return this.commit(() => {
      const record = this.refreshTokenRecord(id);
      if (!record || record.username !== username) return false;
      this.sql.exec("DELETE FROM refresh_tokens WHERE id = ?", id);
      this.enqueue(kvKeys.refreshToken(id), "refresh", id);
      return true;
    });
  }

  // ---- publication ----

  override async alarm(): Promise<void> {
    await this.ready();
    // Fired by its schedule or run early (a test): a retry may go before its back-off, never within a second of the last attempt.
    await this.publish(true);
  }

  /** Publishes the due keys; resolves when this round (and any queued before it) is done. */
  private publish(ignoreBackoff: boolean): Promise<void> {
    const round = this.publishing.then(() => this.publishDue(ignoreBackoff));
    this.publishing = round.catch(() => undefined);
    return round;
  }

  private async publishDue(ignoreBackoff: boolean): Promise<void> {
    // Only the first round may ignore back-offs, so a key failing now is not retried within this call.
    for (let round = 0; ; round++) {
      const now = Date.now();
      this.sql.exec("DELETE FROM published WHERE at <= ?", now - KV_KEY_WRITE_INTERVAL_MS);
      const rows = this.sql
        .exec<{ key: string; source: Source; source_id: string; version: number; attempts: number }>(
          "SELECT key, source, source_id, version, attempts FROM outbox WHERE not_before <= ? AND (? OR retry_at <= ?) ORDER BY not_before LIMIT ?",
          now,
          ignoreBackoff && round === 0 ? 1 : 0,
          now,
          PUBLISH_BATCH,
        )
        .toArray();
      if (rows.length === 0) break;
      // Each value is read in the same synchronous turn as its row's version, before any await.
      const outcomes = await Promise.all(
        rows.map(async (row) => {
          const value = this.publishedValue(row.source, row.source_id);
          try {
            if (value === null) await this.kv.delete(row.key);
            else await this.kv.put(row.key, value);
            return { row, error: undefined };
          } catch (error) {
            return { row, error };
          }
        }),
      );
      const done = Date.now();
      this.ctx.storage.transactionSync(() => {
        for (const { row, error } of outcomes) {
          if (error === undefined) {
            // platform.md §1: one write per second per key; the next write of this key waits for the alarm.
            this.sql.exec("INSERT INTO published (key, at) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET at = excluded.at", row.key, done);
            const current = this.sql.exec<{ version: number }>("SELECT version FROM outbox WHERE key = ?", row.key).toArray()[0];
            if (current?.version === row.version) this.sql.exec("DELETE FROM outbox WHERE key = ?", row.key);
            // Changed again while being written: published again once the second has passed.
            else if (current) this.sql.exec("UPDATE outbox SET not_before = MAX(not_before, ?), retry_at = 0, attempts = 0 WHERE key = ?", done + KV_KEY_WRITE_INTERVAL_MS, row.key);
          } else {
            const delay = Math.min(MAX_RETRY_DELAY_MS, FIRST_RETRY_DELAY_MS * 2 ** row.attempts);
            // A failed write may still have landed: the retry also waits out the second (platform.md §1).
            this.sql.exec(
              "UPDATE outbox SET attempts = attempts + 1, retry_at = ?, not_before = MAX(not_before, ?) WHERE key = ?",
              done + delay,
              done + KV_KEY_WRITE_INTERVAL_MS,
              row.key,
            );
            console.error(JSON.stringify({ event: "kv_publish_failed", ledger: "identities", key: row.key, attempt: row.attempts + 1, error: String(error).slice(0, 200) }));
          }
        }
      });
      if (rows.length < PUBLISH_BATCH) break;
    }
    await this.scheduleAlarm();
  }

  /** The alarm is set for the earliest unpublished key (not before `earliest`), or removed when everything is published. */
  private async scheduleAlarm(earliest = Date.now()): Promise<void> {
    const next = this.sql.exec<{ t: number | null }>("SELECT MIN(MAX(not_before, retry_at)) AS t FROM outbox").one().t;
    if (next === null) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(Math.max(next, earliest));
  }

  /** The value a key should hold now: a record's JSON, a namespace name, or null (delete the key). */
  private publishedValue(source: Source, id: string): string | null {
    switch (source) {
      case "ns": {
        const row = this.sql.exec<{ record: string }>("SELECT record FROM namespaces WHERE name = ?", id).toArray()[0];
        return row ? row.record : null;
      }
      case "org": {
        const row = this.sql.exec<{ namespace: string }>("SELECT namespace FROM organization_ids WHERE id = ? AND retired_at IS NULL", id).toArray()[0];
        return row ? row.namespace : null;
      }
      case "principal": {
        const record = this.principalRecord(id as PrincipalId);
        return record ? JSON.stringify(record) : null;
      }
      case "refresh": {
        const row = this.sql.exec<{ record: string }>("SELECT record FROM refresh_tokens WHERE id = ?", id).toArray()[0];
        return row ? row.record : null;
      }
      case "delete":
        return null;
    }
  }

  /** Marks a key unpublished (in the caller's transaction); it waits out a write made less than a second ago. */
  private enqueue(key: string, source: Source, id: string): void {
    const last = this.sql.exec<{ at: number }>("SELECT at FROM published WHERE key = ?", key).toArray()[0]?.at;
    const notBefore = last === undefined ? 0 : last + KV_KEY_WRITE_INTERVAL_MS;
    this.sql.exec(
      `INSERT INTO outbox (key, source, source_id, version, not_before, retry_at, attempts) VALUES (?, ?, ?, 1, ?, 0, 0)
       ON CONFLICT (key) DO UPDATE SET source = excluded.source, source_id = excluded.source_id, version = outbox.version + 1,
         not_before = MAX(outbox.not_before, excluded.not_before)`,
      key,
      source,
      id,
      notBefore,
    );
  }

  /** Re-publishes a key a reader found missing from KV (unless it is already waiting to be published). */
  private async republish(key: string, source: Source, id: string): Promise<void> {
    if (this.sql.exec("SELECT 1 FROM outbox WHERE key = ?", key).toArray().length > 0) return;
    this.enqueue(key, source, id);
    // Published by the alarm, so the reader that fell back is answered without waiting for KV.
    await this.scheduleAlarm();
  }

  /**
   * Runs `change` as one transaction, then publishes what it marked. The alarm is set right after the
   * commit (no await between them, so both persist together, platform.md §2) as the safety net should this
   * object go away before the publication finishes; a failed publication stays in the outbox.
   */
  private async commit<T>(change: () => T): Promise<LedgerResult<T>> {
    await this.ready();
    let value: T;
    try {
      value = this.ctx.storage.transactionSync(change);
    } catch (error) {
      if (error instanceof Refused) return { ok: false, status: error.status, message: error.message };
      throw error;
    }
    await this.scheduleAlarm(Date.now() + SAFETY_NET_DELAY_MS);
    // The commit stands whatever happens to its publication: what is left unpublished, the alarm publishes.
    await this.publish(false).catch((error: unknown) => {
      console.error(JSON.stringify({ event: "kv_publish_failed", ledger: "identities", error: String(error).slice(0, 200) }));
    });
    return { ok: true, value };
  }

  // ---- rows ----

  private namespaceRecord(name: string): NamespaceRecord | null {
    const row = this.sql.exec<{ record: string }>("SELECT record FROM namespaces WHERE name = ?", name).toArray()[0];
    return row ? (JSON.parse(row.record) as NamespaceRecord) : null;
  }

  private organizationIdTaken(id: string): boolean {
    return this.sql.exec("SELECT 1 FROM organization_ids WHERE id = ?", id).toArray().length > 0;
  }

  private allocateOrganizationId(): string {
    for (let attempt = 0; attempt < 100; attempt++) {
      const id = String(10_000_000 + (crypto.getRandomValues(new Uint32Array(1))[0]! % 90_000_000));
      if (!this.organizationIdTaken(id)) return id;
    }
    throw new Error("could not allocate an organization id");
  }

  private refreshTokenRecord(id: string): RefreshTokenRecord | null {
    const row = this.sql.exec<{ record: string }>("SELECT record FROM refresh_tokens WHERE id = ?", id).toArray()[0];
    return row ? (JSON.parse(row.record) as RefreshTokenRecord) : null;
  }

  /** Deletes every refresh token of a user (in the caller's transaction) and unpublishes them. */
  private endRefreshTokens(username: string): void {
    const ids = this.sql.exec<{ id: string }>("SELECT id FROM refresh_tokens WHERE username = ?", username).toArray();
    this.sql.exec("DELETE FROM refresh_tokens WHERE username = ?", username);
    for (const { id } of ids) this.enqueue(kvKeys.refreshToken(id), "refresh", id);
  }

  private principalExists(id: string): boolean {
    return this.sql.exec("SELECT 1 FROM principals WHERE id = ?", id).toArray().length > 0;
  }

  /** The record as KV holds it: the stored fields plus its grants, oldest first. */
  private principalRecord(id: PrincipalId): PrincipalRecord | null {
    const row = this.sql.exec<{ record: string }>("SELECT record FROM principals WHERE id = ?", id).toArray()[0];
    if (!row) return null;
    const grants = this.sql
      .exec<{ kind: "namespace" | "repository"; name: string; role: Role }>("SELECT kind, name, role FROM grants WHERE principal = ? ORDER BY seq", id)
      .toArray()
      .map((grant): Grant => ({ target: { kind: grant.kind, name: grant.name }, role: grant.role }));
    return { ...(JSON.parse(row.record) as Omit<PrincipalRecord, "grants">), grants } as PrincipalRecord;
  }

  /** Deletes a principal, its grants, its refresh tokens and its last-use time (in the caller's transaction), and unpublishes them. */
  private removePrincipal(id: PrincipalId): void {
    if (principalKindOf(id) === "user") this.endRefreshTokens(principalUsername(id));
    this.sql.exec("DELETE FROM principals WHERE id = ?", id);
    this.sql.exec("DELETE FROM grants WHERE principal = ?", id);
    this.enqueue(principalKey(id), "principal", id);
    this.enqueue(kvKeys.lastUsed(id), "delete", id);
  }

  private replaceGrants(id: PrincipalId, grants: Grant[]): void {
    this.sql.exec("DELETE FROM grants WHERE principal = ?", id);
    for (const grant of grants) this.insertGrant(id, grant);
  }

  /** Sets one grant (moved last, as the record's list has always done); its namespace must exist. */
  private insertGrant(id: PrincipalId, grant: Grant): void {
    const namespace = namespaceOf(grant.target.name);
    if (!this.namespaceRecord(namespace)) throw new Refused(404, `namespace ${JSON.stringify(namespace)} does not exist`);
    const seq = this.sql.exec<{ next: number }>("SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM grants").one().next;
    this.sql.exec(
      "INSERT INTO grants (principal, kind, name, namespace, role, seq) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (principal, kind, name) DO UPDATE SET role = excluded.role, seq = excluded.seq",
      id,
      grant.target.kind,
      grant.target.name,
      namespace,
      grant.role,
      seq,
    );
  }

  private meta(key: string): string | undefined {
    return this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value;
  }

  private setMeta(key: string, value: string): void {
    this.sql.exec("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, value);
  }

  // ---- one-off import of records written to KV before the ledger ----

  /** Resolves once the import has completed; every operation waits for it (a failed run is resumed by the next). */
  private ready(): Promise<void> {
    if (this.imported) return Promise.resolve();
    this.importing ??= this.importFromKv().then(
      () => {
        this.imported = true;
      },
      (error: unknown) => {
        this.importing = undefined;
        throw error;
      },
    );
    return this.importing;
  }

  /**
   * Copies the `ns:`, `org:`, `user:` and `sa:` records, then the refresh epochs (`refresh-epoch:<user>`, into
   * the user's record) and refresh tokens (`refresh:<id>`, of users that exist) found in KV into the tables, page by page (each page
   * commits with its cursor, so a run cut short resumes where it stopped), then repairs what the
   * namespace-deletion defect left behind: service accounts of namespaces that no longer exist, and grants
   * naming them, are deleted and unpublished. Imported records are already in KV: nothing is republished.
   * Records written by older Worker versions after this import are not seen (deploy, then use the ledger).
   */
  private async importFromKv(): Promise<void> {
    const prefixes = [kvKeys.namespacePrefix, kvKeys.organizationIdPrefix, kvKeys.userPrefix, kvKeys.serviceAccountPrefix, kvKeys.refreshEpochPrefix, kvKeys.refreshTokenPrefix];
    for (const prefix of prefixes) {
      let cursor = this.meta(`import:${prefix}`);
      while (cursor !== "done") {
        const page = await this.kv.list({ prefix, cursor: cursor || undefined, limit: IMPORT_PAGE_KEYS });
        const values = await Promise.all(page.keys.map((key) => this.kv.get(key.name)));
        cursor = page.list_complete ? "done" : page.cursor;
        const next = cursor;
        this.ctx.storage.transactionSync(() => {
          page.keys.forEach((key, index) => {
            const value = values[index];
            if (value !== null && value !== undefined) this.adopt(prefix, key.name.slice(prefix.length), value);
          });
          this.setMeta(`import:${prefix}`, next);
        });
      }
    }
    // A namespace missing from the list may be a list lagging behind (platform.md §1): read it once directly.
    const named = this.sql
      .exec<{ namespace: string }>(
        "SELECT namespace FROM principals WHERE kind = 'sa' AND namespace NOT IN (SELECT name FROM namespaces) UNION SELECT namespace FROM grants WHERE namespace NOT IN (SELECT name FROM namespaces)",
      )
      .toArray()
      .map((row) => row.namespace);
    const found = await Promise.all(named.map((name) => this.kv.get(kvKeys.namespace(name))));
    this.ctx.storage.transactionSync(() => {
      found.forEach((value) => value !== null && this.adopt(kvKeys.namespacePrefix, "", value));
      const orphans = this.sql
        .exec<{ id: string; namespace: string }>("SELECT id, namespace FROM principals WHERE kind = 'sa'")
        .toArray()
        .filter((row) => {
          const owner = this.namespaceRecord(row.namespace);
          return !owner || !row.id.startsWith(principalIds.serviceAccountsOfOrganization(owner.organizationId));
        });
      for (const orphan of orphans) this.removePrincipal(orphan.id as PrincipalId);
      const holders = this.sql
        .exec<{ principal: string }>("SELECT DISTINCT principal FROM grants WHERE namespace NOT IN (SELECT name FROM namespaces)")
        .toArray();
      this.sql.exec("DELETE FROM grants WHERE namespace NOT IN (SELECT name FROM namespaces)");
      for (const holder of holders) this.enqueue(principalKey(holder.principal as PrincipalId), "principal", holder.principal);
      this.setMeta("import", "done");
      this.setMeta(IMPORT_REFRESH_DONE, "done");
    });
    await this.scheduleAlarm();
  }

  /** One KV record into the tables, unless the ledger has it already or it is malformed. */
  private adopt(prefix: string, suffix: string, value: string): void {
    if (prefix === kvKeys.organizationIdPrefix) {
      const active = this.sql.exec("SELECT 1 FROM namespaces WHERE organization_id = ?", suffix).toArray().length > 0;
      this.sql.exec("INSERT OR IGNORE INTO organization_ids (id, namespace, retired_at) VALUES (?, ?, ?)", suffix, value, active ? null : new Date().toISOString());
      return;
    }
    if (prefix === kvKeys.refreshEpochPrefix) {
      // The epoch of a user imported without one; a user the ledger gave an epoch keeps its own.
      const user = this.principalRecord(principalIds.user(suffix)) as UserRecord | null;
      if (!user || user.refreshEpoch !== undefined) return;
      const { grants: _grants, ...rest } = user;
      this.sql.exec("UPDATE principals SET record = ? WHERE id = ?", JSON.stringify({ ...rest, refreshEpoch: value }), principalIds.user(suffix));
      return;
    }
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(value) as Record<string, unknown>;
    } catch {
      return;
    }
    if (prefix === kvKeys.refreshTokenPrefix) {
      const { id, username, service, clientId, secretHash, createdAt } = record;
      const strings = [id, username, service, clientId, secretHash, createdAt].every((field) => typeof field === "string");
      if (!strings || id !== suffix || !this.principalExists(principalIds.user(String(username))) || this.refreshTokenRecord(suffix)) return;
      this.sql.exec("INSERT INTO refresh_tokens (id, username, record) VALUES (?, ?, ?)", suffix, username as string, value);
      return;
    }
    if (prefix === kvKeys.namespacePrefix) {
      if (typeof record.name !== "string" || typeof record.organizationId !== "string" || this.namespaceRecord(record.name)) return;
      if (this.sql.exec("SELECT 1 FROM namespaces WHERE organization_id = ?", record.organizationId).toArray().length > 0) return;
      this.sql.exec("INSERT INTO namespaces (name, organization_id, record) VALUES (?, ?, ?)", record.name, record.organizationId, value);
      this.sql.exec("INSERT OR REPLACE INTO organization_ids (id, namespace, retired_at) VALUES (?, ?, NULL)", record.organizationId, record.name);
      return;
    }
    const id = prefix === kvKeys.userPrefix ? principalIds.user(suffix) : principalIds.serviceAccount(suffix);
    const kind = rowKind(id);
    if (record.username !== suffix || this.principalExists(id)) return;
    const { grants, ...rest } = record;
    const namespace = kind === "sa" && typeof record.namespace === "string" ? record.namespace : null;
    if (kind === "sa" && namespace === null) return;
    this.sql.exec("INSERT INTO principals (id, kind, namespace, record) VALUES (?, ?, ?, ?)", id, kind, namespace, JSON.stringify(rest));
    for (const grant of Array.isArray(grants) ? (grants as Grant[]) : []) {
      const valid = (grant?.target?.kind === "namespace" || grant?.target?.kind === "repository") && typeof grant.target.name === "string" && typeof grant.role === "string";
      if (!valid) continue;
      const seq = this.sql.exec<{ next: number }>("SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM grants").one().next;
      this.sql.exec(
        "INSERT OR REPLACE INTO grants (principal, kind, name, namespace, role, seq) VALUES (?, ?, ?, ?, ?, ?)",
        id,
        grant.target.kind,
        grant.target.name,
        namespaceOf(grant.target.name),
        grant.role,
        seq,
      );
    }
  }
}

/** Whether a change of a user's record ends the user's refresh tokens: a disable, or a new password. */
function endsRefreshTokens(current: UserRecord, updated: UserRecord): boolean {
  return (updated.disabled && !current.disabled) || encodeField(updated.password) !== encodeField(current.password);
}

/**
 * `current` with `changes` applied, or `current` itself when nothing changes. A change to a field someone
 * else has changed meanwhile to a different value is a conflict; the fields that name a record never change.
 */
function applyChanges(current: Record<string, unknown>, changes: FieldChange[]): Record<string, unknown> {
  const updated: Record<string, unknown> = { ...current };
  let changed = false;
  for (const { field, from, to } of changes) {
    const now = encodeField(current[field]);
    if (now === to) continue;
    if (IMMUTABLE_FIELDS.has(field)) throw new Refused(400, `${field} cannot be changed`);
    if (now !== from) throw new Refused(409, `${field} was changed by another request meanwhile; read the record again and retry`);
    if (to === "") delete updated[field];
    else updated[field] = JSON.parse(to) as unknown;
    changed = true;
  }
  return changed ? updated : current;
}
