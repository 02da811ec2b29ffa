/**
 * Web users' refresh tokens (the `identitytoken` docker keeps instead of a password). A token is
 * `<id>.<secret>`: the id finds the record, the secret is stored only as an HMAC. Tokens are reusable
 * (the docker daemon cannot store a rotated one) and revocable; an index per user lists them.
 */
import { kvKeys } from "./keys";
import { listAll } from "./kv-list";

export interface RefreshTokenRecord {
  id: string;
  username: string;
  /** The audience it was issued for; it is refused for any other service. */
  service: string;
  clientId: string;
  secretHash: string;
  createdAt: string;
}

/** What listing shows: never the hash. */
export type RefreshTokenSummary = Omit<RefreshTokenRecord, "secretHash">;

export class RefreshTokenStore {
  constructor(private readonly kv: KVNamespace) {}

  get(id: string): Promise<RefreshTokenRecord | null> {
    return this.kv.get<RefreshTokenRecord>(kvKeys.refreshToken(id), "json");
  }

  async put(record: RefreshTokenRecord): Promise<void> {
    const { secretHash: _hash, ...summary } = record;
    await this.kv.put(kvKeys.refreshToken(record.id), JSON.stringify(record));
    await this.kv.put(kvKeys.userRefreshToken(record.username, record.id), "", { metadata: summary });
  }

  async listForUser(username: string): Promise<RefreshTokenSummary[]> {
    const keys = await listAll<RefreshTokenSummary>(this.kv, kvKeys.userRefreshTokenPrefix(username));
    return keys.map((key) => key.metadata).filter((summary): summary is RefreshTokenSummary => summary !== undefined);
  }

  /** Revokes one token of a user; false where the user has no such token. */
  async revoke(username: string, id: string): Promise<boolean> {
    const record = await this.get(id);
    if (!record || record.username !== username) return false;
    await this.kv.delete(kvKeys.refreshToken(id));
    await this.kv.delete(kvKeys.userRefreshToken(username, id));
    return true;
  }

  async revokeAll(username: string): Promise<number> {
    const tokens = await this.listForUser(username);
    await Promise.all(tokens.map((token) => this.revoke(username, token.id)));
    return tokens.length;
  }
}
