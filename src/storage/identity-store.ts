/**
 * Namespaces, web users, service accounts and grants in KV.
 *
 * Consistency: KV is eventually consistent across locations (a write can take ~60 s to be seen
 * elsewhere) and allows one write per second per key. Identity records change rarely, so that is
 * acceptable; it bounds how fast a revocation reaches every location (README "Revocation").
 */
import type { Grant, GrantTarget, Role } from "../auth/access-model";
import type { PasswordHash } from "../crypto/secrets";
import { kvKeys, type PrincipalId } from "./keys";
import { listAll } from "./kv-list";
import { TtlCache } from "./ttl-cache";

/**
 * How long a login may use a principal record it read before (per isolate). The token endpoint then
 * needs no KV read for a client that logs in again and again; a change made through this isolate is
 * seen at once, one made elsewhere adds at most this to KV's own propagation (SECURITY.md).
 */
export const LOGIN_RECORD_TTL_MS = 10_000;
const LOGIN_RECORD_CACHE_SIZE = 1024;

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
}

export class IdentityStore {
  /** Records read for logins, absent ones too (so an unknown account costs what a known one does). */
  private readonly loginUsers = new TtlCache<UserRecord | null>(LOGIN_RECORD_TTL_MS, LOGIN_RECORD_CACHE_SIZE);
  private readonly loginServiceAccounts = new TtlCache<ServiceAccountRecord | null>(LOGIN_RECORD_TTL_MS, LOGIN_RECORD_CACHE_SIZE);

  constructor(private readonly kv: KVNamespace) {}

  getNamespace(name: string): Promise<NamespaceRecord | null> {
    return this.kv.get<NamespaceRecord>(kvKeys.namespace(name), "json");
  }

  async putNamespace(record: NamespaceRecord): Promise<void> {
    await this.kv.put(kvKeys.organizationId(record.organizationId), record.name);
    await this.kv.put(kvKeys.namespace(record.name), JSON.stringify(record));
  }

  async isOrganizationIdTaken(id: string): Promise<boolean> {
    return (await this.kv.get(kvKeys.organizationId(id))) !== null;
  }

  async deleteNamespace(record: NamespaceRecord): Promise<void> {
    await this.kv.delete(kvKeys.namespace(record.name));
    await this.kv.delete(kvKeys.organizationId(record.organizationId));
  }

  async listNamespaces(): Promise<NamespaceRecord[]> {
    const keys = await listAll(this.kv, kvKeys.namespacePrefix);
    const records = await Promise.all(keys.map((key) => this.kv.get<NamespaceRecord>(key.name, "json")));
    return records.filter((record): record is NamespaceRecord => record !== null);
  }

  getUser(username: string): Promise<UserRecord | null> {
    return this.kv.get<UserRecord>(kvKeys.user(username), "json");
  }

  /** A user record for a login: possibly up to LOGIN_RECORD_TTL_MS old. Never modify or write it back. */
  getUserForLogin(username: string): Promise<UserRecord | null> {
    const key = kvKeys.user(username);
    return this.loginUsers.getOrLoad(key, () => this.kv.get<UserRecord>(key, "json"));
  }

  async putUser(record: UserRecord): Promise<void> {
    await this.kv.put(kvKeys.user(record.username), JSON.stringify(record));
    this.loginUsers.delete(kvKeys.user(record.username));
  }

  async deleteUser(username: string): Promise<void> {
    await this.kv.delete(kvKeys.user(username));
    this.loginUsers.delete(kvKeys.user(username));
    await this.kv.delete(kvKeys.lastUsed(`user/${username}`));
  }

  async listUsers(): Promise<UserRecord[]> {
    const keys = await listAll(this.kv, kvKeys.userPrefix);
    const records = await Promise.all(keys.map((key) => this.kv.get<UserRecord>(key.name, "json")));
    return records.filter((record): record is UserRecord => record !== null);
  }

  getServiceAccount(username: string): Promise<ServiceAccountRecord | null> {
    return this.kv.get<ServiceAccountRecord>(kvKeys.serviceAccount(username), "json");
  }

  /** A service-account record for a login: possibly up to LOGIN_RECORD_TTL_MS old. Never modify or write it back. */
  getServiceAccountForLogin(username: string): Promise<ServiceAccountRecord | null> {
    const key = kvKeys.serviceAccount(username);
    return this.loginServiceAccounts.getOrLoad(key, () => this.kv.get<ServiceAccountRecord>(key, "json"));
  }

  async putServiceAccount(record: ServiceAccountRecord): Promise<void> {
    await this.kv.put(kvKeys.serviceAccount(record.username), JSON.stringify(record));
    this.loginServiceAccounts.delete(kvKeys.serviceAccount(record.username));
  }

  async deleteServiceAccount(username: string): Promise<void> {
    await this.kv.delete(kvKeys.serviceAccount(username));
    this.loginServiceAccounts.delete(kvKeys.serviceAccount(username));
    await this.kv.delete(kvKeys.lastUsed(`sa/${username}`));
  }

  /** When a principal last obtained a token, to the resolution of LastUsedTracker. */
  getLastUsed(principal: PrincipalId): Promise<string | null> {
    return this.kv.get(kvKeys.lastUsed(principal));
  }

  async putLastUsed(principal: PrincipalId, isoTime: string): Promise<void> {
    await this.kv.put(kvKeys.lastUsed(principal), isoTime);
  }

  async listServiceAccounts(): Promise<ServiceAccountRecord[]> {
    const keys = await listAll(this.kv, kvKeys.serviceAccountPrefix);
    const records = await Promise.all(keys.map((key) => this.kv.get<ServiceAccountRecord>(key.name, "json")));
    return records.filter((record): record is ServiceAccountRecord => record !== null);
  }

  /**
   * Sets (role given) or removes (role undefined) the grant of `principal` on `target`, by rewriting the
   * principal's record. Returns false where there was no such grant to remove. Concurrent grant changes
   * to one principal are last-write-wins (KV has no transactions); admin changes are rare.
   */
  async updateGrant(principal: PrincipalId, target: GrantTarget, role: Role | undefined): Promise<boolean> {
    if (principal.startsWith("user/")) {
      const record = await this.getUser(principal.slice("user/".length));
      const grants = record && withGrant(record.grants, target, role);
      if (!record || !grants) return false;
      await this.putUser({ ...record, grants });
    } else {
      const record = await this.getServiceAccount(principal.slice("sa/".length));
      const grants = record && withGrant(record.grants, target, role);
      if (!record || !grants) return false;
      await this.putServiceAccount({ ...record, grants });
    }
    return true;
  }
}

/** `grants` with the grant on `target` set to `role` (or removed); undefined when removing a missing grant. */
function withGrant(grants: Grant[], target: GrantTarget, role: Role | undefined): Grant[] | undefined {
  const others = grants.filter((grant) => grant.target.kind !== target.kind || grant.target.name !== target.name);
  if (role === undefined) return others.length === grants.length ? undefined : others;
  return [...others, { target, role }];
}
