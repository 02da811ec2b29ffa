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

export interface NamespaceRecord {
  name: string;
  /** Numeric organization id; service accounts are named `<organizationId>|<name>`. */
  organizationId: string;
  public: boolean;
  createdAt: string;
}

export interface UserRecord {
  username: string;
  password: PasswordHash;
  registryAdmin: boolean;
  disabled: boolean;
  createdAt: string;
}

export interface ServiceAccountRecord {
  username: string;
  namespace: string;
  description: string;
  /** HMAC-SHA-256 of the token under the pepper, hex; the token itself is never stored. */
  tokenHash: string;
  disabled: boolean;
  createdAt: string;
}

/** Grant metadata kept on the KV key so one list returns every grant of a principal. */
interface GrantMetadata {
  role: Role;
}


export class IdentityStore {
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

  async putUser(record: UserRecord): Promise<void> {
    await this.kv.put(kvKeys.user(record.username), JSON.stringify(record));
  }

  async deleteUser(username: string): Promise<void> {
    await this.deleteGrantsOf(`user/${username}`);
    await this.kv.delete(kvKeys.user(username));
  }

  async listUsers(): Promise<UserRecord[]> {
    const keys = await listAll(this.kv, kvKeys.userPrefix);
    const records = await Promise.all(keys.map((key) => this.kv.get<UserRecord>(key.name, "json")));
    return records.filter((record): record is UserRecord => record !== null);
  }

  getServiceAccount(username: string): Promise<ServiceAccountRecord | null> {
    return this.kv.get<ServiceAccountRecord>(kvKeys.serviceAccount(username), "json");
  }

  async putServiceAccount(record: ServiceAccountRecord): Promise<void> {
    await this.kv.put(kvKeys.serviceAccount(record.username), JSON.stringify(record));
  }

  async deleteServiceAccount(username: string): Promise<void> {
    await this.deleteGrantsOf(`sa/${username}`);
    await this.kv.delete(kvKeys.serviceAccount(username));
  }

  async listServiceAccounts(): Promise<ServiceAccountRecord[]> {
    const keys = await listAll(this.kv, kvKeys.serviceAccountPrefix);
    const records = await Promise.all(keys.map((key) => this.kv.get<ServiceAccountRecord>(key.name, "json")));
    return records.filter((record): record is ServiceAccountRecord => record !== null);
  }

  /** Every grant of a principal, in one KV list (the role rides in the key's metadata). */
  async grantsOf(principal: PrincipalId): Promise<Grant[]> {
    const prefix = kvKeys.grantPrefix(principal);
    const keys = await listAll<GrantMetadata>(this.kv, prefix);
    const grants: Grant[] = [];
    for (const key of keys) {
      const [kind, ...rest] = key.name.slice(prefix.length).split(":");
      if ((kind === "namespace" || kind === "repository") && key.metadata?.role) {
        grants.push({ target: { kind, name: rest.join(":") }, role: key.metadata.role });
      }
    }
    return grants;
  }

  async putGrant(principal: PrincipalId, target: GrantTarget, role: Role): Promise<void> {
    const metadata: GrantMetadata = { role };
    await this.kv.put(kvKeys.grant(principal, target), role, { metadata });
  }

  async deleteGrant(principal: PrincipalId, target: GrantTarget): Promise<boolean> {
    const key = kvKeys.grant(principal, target);
    if ((await this.kv.get(key)) === null) return false;
    await this.kv.delete(key);
    return true;
  }

  private async deleteGrantsOf(principal: PrincipalId): Promise<void> {
    const keys = await listAll(this.kv, kvKeys.grantPrefix(principal));
    await Promise.all(keys.map((key) => this.kv.delete(key.name)));
  }
}
