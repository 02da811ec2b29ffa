/**
 * Namespaces, web users, service accounts and grants: written and read consistently through the identity
 * ledger (a Durable Object, storage/identity-ledger.ts), published by it to KV for the token endpoint.
 *
 * Two views share one set of per-isolate caches:
 * - the store itself (admin API): every read and write goes to the ledger, so a read whose answer decides
 *   a write is current, and a record just created is found at once;
 * - `forEdge()` (token endpoint): reads KV first, the edge read path. KV is eventually consistent and
 *   caches misses for 60 s or more, with no read-your-writes (platform.md §1), so a miss is never final:
 *   it falls back to the ledger, and a credential works the moment its creation is acknowledged. A change
 *   or revocation reaches KV readers within KV's propagation time (README "Revocation window").
 *
 * Records read through the ledger carry a hidden copy of what was read (a symbol-keyed property: object
 * spreads keep it, JSON drops it). A put sends only the fields its caller changed; the ledger applies them
 * to the current record and refuses (409) a field someone else changed meanwhile, so concurrent edits of
 * one record are never lost silently.
 */
import type { Grant, GrantTarget, Role } from "../model/grants";
import { accountState, principalIds, type PrincipalId } from "../model/principal";
import type { PasswordHash } from "../crypto/secrets";
import type { TrustPolicy } from "../model/trust-policy";
import { IDENTITY_LEDGER_NAME, principalKey, type FieldChange, type IdentityLedger, type LedgerResult, type NamespaceDeletion } from "./identity-ledger";
import { kvKeys } from "./keys";
import { RecentIdentityChanges } from "./recent-writes";
import { RefreshTokenStore } from "./refresh-token-store";
import { TtlCache } from "./ttl-cache";

export type { NamespaceDeletion } from "./identity-ledger";

/**
 * How long a login may use a principal record it read before (per isolate). The token endpoint then
 * needs no KV read for a client that logs in again and again; a change made in this location is seen at
 * once, one made elsewhere adds at most this to KV's own propagation (SECURITY.md).
 */
export const LOGIN_RECORD_TTL_MS = 10_000;
const LOGIN_RECORD_CACHE_SIZE = 1024;
/**
 * A ledger read that began this soon after a change marked by another isolate may predate it (clocks of a
 * location's machines differ slightly); such a read is not trusted over the marker.
 */
const CLOCK_SKEW_MS = 1_000;

export interface NamespaceRecord {
  name: string;
  /** Numeric organization id; service accounts are named `<organizationId>|<name>`. */
  organizationId: string;
  public: boolean;
  createdAt: string;
}

export interface UserRecord {
  username: string;
  /** Grants ride on the record, so one KV read authenticates and authorizes a token request. */
  grants: Grant[];
  password: PasswordHash;
  registryAdmin: boolean;
  disabled: boolean;
  createdAt: string;
  /**
   * The user's refresh-token epoch, drawn by the identity ledger at creation and anew by a disable or a
   * password change; a refresh token is honoured only under the epoch it was issued with. Absent on
   * records imported from before the ledger with no epoch (read as "").
   */
  refreshEpoch?: string;
}

export interface ServiceAccountRecord {
  username: string;
  grants: Grant[];
  namespace: string;
  description: string;
  /** HMAC-SHA-256 of the token under the pepper, hex; the token itself is never stored. */
  tokenHash: string;
  /** The token replaced by the last rotation, accepted until previousTokenExpiresAt (the overlap). */
  previousTokenHash?: string;
  previousTokenExpiresAt?: string;
  /** After this instant the account's tokens are refused. */
  expiresAt?: string;
  disabled: boolean;
  createdAt: string;
  createdBy: string;
  rotatedAt?: string;
  /** Workload identity federation: OIDC tokens these policies accept stand in for the token (src/auth/oidc-policy.ts). */
  trustPolicies?: TrustPolicy[];
}

/** A write the ledger refused: 404 (a record or namespace that does not exist), 409 (a conflict), 400. */
export class IdentityRefusedError extends Error {
  override name = "IdentityRefusedError";
  constructor(
    readonly status: 400 | 404 | 409,
    message: string,
  ) {
    super(message);
  }
}

export interface IdentityStoreOptions {
  /** Makes the error a refused write is thrown as (the admin API passes its own, answered in its format). */
  refusal?: (status: 400 | 404 | 409, message: string) => Error;
  /** The location's cache (Cache API), where changes are marked for the location's other isolates. */
  locationCache?: Cache;
}

/** The record as read from the ledger, one JSON text per top-level field. */
const READ_AS = Symbol("identity record as read");
type Tracked = { [READ_AS]?: Record<string, string> };

/** A record read for logins (null: absent), and when the ledger read it began, if it came from the ledger. */
interface LoginEntry<R> {
  record: R | null;
  ledgerReadAt?: number;
}

/** Per-isolate caches, shared by both views so a write through this isolate is seen by its logins at once. */
class IdentityCaches {
  /** Records read for logins (absent ones too, but an absent one is always checked with the ledger). */
  readonly users = new TtlCache<LoginEntry<UserRecord>>(LOGIN_RECORD_TTL_MS, LOGIN_RECORD_CACHE_SIZE);
  readonly serviceAccounts = new TtlCache<LoginEntry<ServiceAccountRecord>>(LOGIN_RECORD_TTL_MS, LOGIN_RECORD_CACHE_SIZE);
  /** Namespaces the ledger said do not exist: the public-pull check of anonymous requests asks it once per TTL. */
  readonly absentNamespaces = new TtlCache<true>(LOGIN_RECORD_TTL_MS, LOGIN_RECORD_CACHE_SIZE);

  /**
   * KV keys of records changed lately in this isolate or location: their edge reads go to the ledger
   * meanwhile, since KV may not read its own writes, keeps serving a value read before for 60 s, and the
   * ledger defers a second write of a key within a second (platform.md §1). So no login in the location
   * where a change was acknowledged sees it undone.
   */
  constructor(readonly recent: RecentIdentityChanges) {}

  /** After a write through this isolate: drop the cached records, and read them from the ledger for a while. */
  async changed(keys: string[]): Promise<void> {
    for (const key of keys) {
      this.users.delete(key);
      this.serviceAccounts.delete(key);
      this.absentNamespaces.delete(key);
    }
    await this.recent.mark(keys);
  }
}

export class IdentityStore {
  private readonly caches: IdentityCaches;

  constructor(
    private readonly kv: KVNamespace,
    private readonly ledgers: DurableObjectNamespace<IdentityLedger>,
    private readonly options: IdentityStoreOptions = {},
    private readonly edge = false,
    caches?: IdentityCaches,
  ) {
    this.caches = caches ?? new IdentityCaches(new RecentIdentityChanges(options.locationCache));
  }

  /** A stub per use: a stub is an I/O object of the request that made it, and services outlive requests. */
  private get ledger(): DurableObjectStub<IdentityLedger> {
    return this.ledgers.get(this.ledgers.idFromName(IDENTITY_LEDGER_NAME));
  }

  /** The token endpoint's view: reads KV first and falls back to the ledger on a miss. */
  forEdge(): IdentityStore {
    return new IdentityStore(this.kv, this.ledgers, this.options, true, this.caches);
  }

  /** Web users' refresh tokens, kept by the same ledger; a revocation through this isolate is seen by it at once. */
  refreshTokens(): RefreshTokenStore {
    return new RefreshTokenStore(this.kv, this.ledgers, this.caches.recent);
  }

  // ---- namespaces ----

  async getNamespace(name: string): Promise<NamespaceRecord | null> {
    const key = kvKeys.namespace(name);
    if (!this.edge || (await this.caches.recent.changedAt(key)) !== undefined) return tracked(await this.ledger.getNamespace(name));
    const published = await this.kv.get<NamespaceRecord>(key, "json");
    if (published) return published;
    if (this.caches.absentNamespaces.get(key)) return null;
    const record = await this.ledger.getNamespaceForEdge(name);
    if (!record) this.caches.absentNamespaces.set(key, true);
    return record;
  }

  /** Creates a namespace with a fresh organization id (refused with 409 when the name exists). */
  async createNamespace(name: string, isPublic: boolean): Promise<NamespaceRecord> {
    const record = this.accept(await this.ledger.createNamespace({ name, public: isPublic, createdAt: new Date().toISOString() }));
    await this.caches.changed([kvKeys.namespace(name)]);
    return tracked(record);
  }

  /** Creates the namespace (a record not read from this store) or applies the caller's changes to it. */
  async putNamespace(record: NamespaceRecord): Promise<void> {
    const changes = changesOf(record);
    if (changes) this.accept(await this.ledger.patchNamespace(record.name, changes));
    else this.accept(await this.ledger.createNamespace(record));
    await this.caches.changed([kvKeys.namespace(record.name)]);
  }

  isOrganizationIdTaken(id: string): Promise<boolean> {
    return this.ledger.isOrganizationIdTaken(id);
  }

  /**
   * Deletes the namespace with its service accounts and every grant naming it or a repository in it, in
   * one ledger transaction; refused (409) when the namespace was recreated since `record` was read.
   */
  async deleteNamespace(record: NamespaceRecord): Promise<NamespaceDeletion> {
    const deletion = this.accept(await this.ledger.deleteNamespace(record.name, record.organizationId));
    await this.caches.changed([
      ...deletion.serviceAccounts.map((username) => kvKeys.serviceAccount(username)),
      ...deletion.principalsUpdated.map((principal) => principalKey(principal)),
      kvKeys.namespace(record.name),
    ]);
    return deletion;
  }

  listNamespaces(): Promise<NamespaceRecord[]> {
    return this.ledger.listNamespaces();
  }

  // ---- web users ----

  async getUser(username: string): Promise<UserRecord | null> {
    if (this.edge) return this.edgeRead(principalIds.user(username)) as Promise<UserRecord | null>;
    return tracked((await this.ledger.getPrincipal(principalIds.user(username))) as UserRecord | null);
  }

  /** A user record for a login: possibly up to LOGIN_RECORD_TTL_MS old. Never modify or write it back. */
  getUserForLogin(username: string): Promise<UserRecord | null> {
    return this.loginRecord(principalIds.user(username), this.caches.users) as Promise<UserRecord | null>;
  }

  /**
   * The user's record as the ledger has it now, for a check about to refuse on a record read from KV or the
   * login cache (which may be up to KV's propagation time old, platform.md §1): a refusal is final only when
   * the ledger agrees, so re-enabling a user or issuing a token takes effect at once. The login cache is
   * refreshed with it. Never modify or write it back.
   */
  confirmUserForLogin(username: string): Promise<UserRecord | null> {
    return this.confirmLoginRecord(principalIds.user(username), this.caches.users) as Promise<UserRecord | null>;
  }

  /** As `confirmUserForLogin`, for a service account (a rotated token or a re-enabled account works at once). */
  confirmServiceAccountForLogin(username: string): Promise<ServiceAccountRecord | null> {
    return this.confirmLoginRecord(principalIds.serviceAccount(username), this.caches.serviceAccounts) as Promise<ServiceAccountRecord | null>;
  }

  /** Creates the user (a record not read from this store; 409 when it exists) or applies the caller's changes. */
  async putUser(record: UserRecord): Promise<void> {
    await this.putPrincipal(principalIds.user(record.username), record);
  }

  async deleteUser(username: string): Promise<void> {
    this.accept(await this.ledger.deletePrincipal(principalIds.user(username)));
    await this.caches.changed([kvKeys.user(username)]);
  }

  async listUsers(): Promise<UserRecord[]> {
    return (await this.ledger.listPrincipals("user")) as UserRecord[];
  }

  // ---- service accounts ----

  async getServiceAccount(username: string): Promise<ServiceAccountRecord | null> {
    if (this.edge) return this.edgeRead(principalIds.serviceAccount(username)) as Promise<ServiceAccountRecord | null>;
    return tracked((await this.ledger.getPrincipal(principalIds.serviceAccount(username))) as ServiceAccountRecord | null);
  }

  /** A service-account record for a login: possibly up to LOGIN_RECORD_TTL_MS old. Never modify or write it back. */
  getServiceAccountForLogin(username: string): Promise<ServiceAccountRecord | null> {
    return this.loginRecord(principalIds.serviceAccount(username), this.caches.serviceAccounts) as Promise<ServiceAccountRecord | null>;
  }

  /** Creates the account (a record not read from this store; 409 when it exists, 404 without its namespace) or applies the caller's changes. */
  async putServiceAccount(record: ServiceAccountRecord): Promise<void> {
    await this.putPrincipal(principalIds.serviceAccount(record.username), record);
  }

  async deleteServiceAccount(username: string): Promise<void> {
    this.accept(await this.ledger.deletePrincipal(principalIds.serviceAccount(username)));
    await this.caches.changed([kvKeys.serviceAccount(username)]);
  }

  async listServiceAccounts(): Promise<ServiceAccountRecord[]> {
    return (await this.ledger.listPrincipals("sa")) as ServiceAccountRecord[];
  }

  // ---- last use (KV only: written by the token endpoint, never by the ledger) ----

  /** When a principal last obtained a token, to the resolution of LastUsedTracker. */
  getLastUsed(principal: PrincipalId): Promise<string | null> {
    return this.kv.get(kvKeys.lastUsed(principal));
  }

  /**
   * Best effort: KV refuses a second write to a key within a second (platform.md §1), which another isolate
   * or location recording the same principal may have made; the refused time is dropped, never an error.
   */
  async putLastUsed(principal: PrincipalId, isoTime: string): Promise<void> {
    try {
      await this.kv.put(kvKeys.lastUsed(principal), isoTime);
    } catch (error) {
      console.warn(JSON.stringify({ event: "last_used_write_dropped", principal: principal.slice(0, 200), error: String(error).slice(0, 200) }));
    }
  }

  // ---- grants ----

  /**
   * Sets (role given) or removes (role undefined) the grant of `principal` on `target`, as one ledger
   * operation on the current record (concurrent grant changes to one principal all apply). Returns false
   * where there is no such principal or no such grant to remove; a grant on a namespace that does not
   * exist is refused (404).
   */
  async updateGrant(principal: PrincipalId, target: GrantTarget, role: Role | undefined): Promise<boolean> {
    const changed = this.accept(await this.ledger.setGrant(principal, target, role));
    await this.caches.changed([principalKey(principal)]);
    return changed;
  }

  // ---- internals ----

  private async putPrincipal(id: PrincipalId, record: UserRecord | ServiceAccountRecord): Promise<void> {
    const changes = changesOf(record);
    try {
      if (changes) this.accept(await this.ledger.patchPrincipal(id, changes));
      else this.accept(await this.ledger.createPrincipal(id, plain(record)));
    } finally {
      await this.caches.changed([principalKey(id)]);
    }
  }

  /** The edge read: KV, then the ledger when KV has nothing (a cached miss is never an answer). */
  private async edgeRead(id: PrincipalId): Promise<UserRecord | ServiceAccountRecord | null> {
    const key = principalKey(id);
    if ((await this.caches.recent.changedAt(key)) !== undefined) return this.ledger.getPrincipal(id);
    const published = await this.kv.get<UserRecord | ServiceAccountRecord>(key, "json");
    return published ?? (await this.ledger.getPrincipalForEdge(id));
  }

  private async loginRecord<R extends UserRecord | ServiceAccountRecord>(id: PrincipalId, cache: TtlCache<LoginEntry<R>>): Promise<R | null> {
    const key = principalKey(id);
    // Changed lately in this isolate or location: KV may still serve the old record (platform.md §1), so
    // only a ledger read begun after the change answers, at most once per login-cache lifetime.
    const changedAt = await this.caches.recent.changedAt(key);
    if (changedAt !== undefined) {
      const entry = cache.get(key)?.value;
      if (entry?.ledgerReadAt !== undefined && entry.ledgerReadAt > changedAt + CLOCK_SKEW_MS) return entry.record;
      return this.confirmLoginRecord(id, cache);
    }
    const { record: cached } = await cache.getOrLoad(key, async () => ({ record: await this.kv.get<R>(key, "json") }));
    // A record that refuses every secret (disabled, expired) may be older than the ledger's (platform.md §1:
    // KV serves a cached value up to 60 s): the ledger confirms it, so re-enabling an account or clearing its
    // expiry works the moment the admin API answers. A failed login costs this read; failures are throttled.
    if (cached && refusesAll(cached)) return this.confirmLoginRecord(id, cache);
    if (cached) return cached;
    // platform.md §1: KV caches misses ≥ 60 s and may not read its own writes; the ledger has the answer.
    const ledgerReadAt = Date.now();
    const record = (await this.ledger.getPrincipalForEdge(id)) as R | null;
    if (record) cache.set(key, { record, ledgerReadAt });
    return record;
  }

  private async confirmLoginRecord<R extends UserRecord | ServiceAccountRecord>(id: PrincipalId, cache: TtlCache<LoginEntry<R>>): Promise<R | null> {
    const ledgerReadAt = Date.now();
    const record = (await this.ledger.getPrincipal(id)) as R | null;
    if (record) cache.set(principalKey(id), { record, ledgerReadAt });
    else cache.delete(principalKey(id));
    return record;
  }

  private accept<T>(result: LedgerResult<T>): T {
    if (result.ok) return result.value;
    throw this.options.refusal?.(result.status, result.message) ?? new IdentityRefusedError(result.status, result.message);
  }
}

/** Whether a login record refuses every secret: a disabled principal, or a service account past its expiry. */
function refusesAll(record: UserRecord | ServiceAccountRecord): boolean {
  return accountState(record) !== "active";
}

function encodeField(value: unknown): string {
  return value === undefined ? "" : JSON.stringify(value);
}

/** Attaches the hidden copy of what was read. */
function tracked<R extends object | null>(record: R): R {
  if (!record) return record;
  const readAs: Record<string, string> = {};
  for (const [field, value] of Object.entries(record)) readAs[field] = encodeField(value);
  Object.assign(record, { [READ_AS]: readAs });
  return record;
}

/** The fields changed since the record was read, or undefined for a record never read (a new one). */
function changesOf(record: object): FieldChange[] | undefined {
  const readAs = (record as Tracked)[READ_AS];
  if (!readAs) return undefined;
  const current = record as Record<string, unknown>;
  const changes: FieldChange[] = [];
  for (const field of new Set([...Object.keys(readAs), ...Object.keys(current)])) {
    const from = readAs[field] ?? "";
    const to = encodeField(current[field]);
    if (from !== to) changes.push({ field, from, to });
  }
  return changes;
}

/** The record without its hidden copy, for the RPC. */
function plain<R extends object>(record: R): R {
  return JSON.parse(JSON.stringify(record)) as R;
}
