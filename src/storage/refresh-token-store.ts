/**
 * Web users' refresh tokens (the `identitytoken` docker keeps instead of a password). A token is
 * `<id>.<secret>`: the id finds the record, the secret is stored only as an HMAC. Tokens are reusable
 * (the docker daemon cannot store a rotated one) and revocable; an index per user lists them.
 *
 * Each token also carries the user's refresh epoch at issue (`refresh-epoch:<username>`), and is honoured
 * only while the epoch is unchanged. Disabling, deleting or re-passwording a user writes a new random epoch
 * (`endAll`) before anything else: every token issued before ends for good, including one the per-user
 * index does not list yet (KV lists are eventually consistent), and re-enabling the user cannot bring any
 * back. The epoch is written once per such change (never a read-modify-write), and is kept after a user is
 * deleted, so a new user of the same name inherits nothing.
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
  /** The user's refresh epoch when issued ("" where none was set); the token ends when it changes. */
  epoch?: string;
}

/** What listing shows: never the hash. */
export type RefreshTokenSummary = Omit<RefreshTokenRecord, "secretHash" | "epoch">;

/** Refresh-token ids are 12 random bytes, base64url (16 characters). */
const TOKEN_ID = /^[A-Za-z0-9_-]{16}$/;

export function isValidRefreshTokenId(id: string): boolean {
  return TOKEN_ID.test(id);
}

export class RefreshTokenStore {
  constructor(private readonly kv: KVNamespace) {}

  /** The record of a token id; null for an unknown or malformed id (no key is built from the latter). */
  async get(id: string): Promise<RefreshTokenRecord | null> {
    if (!isValidRefreshTokenId(id)) return null;
    return this.kv.get<RefreshTokenRecord>(kvKeys.refreshToken(id), "json");
  }

  /** The user's current refresh epoch ("" while none was ever set). */
  async epoch(username: string): Promise<string> {
    return (await this.kv.get(kvKeys.refreshEpoch(username))) ?? "";
  }

  /**
   * Ends every refresh token of the user, listed or not: a new epoch first (the guarantee), then the
   * listed records are deleted (housekeeping). Returns how many records were deleted.
   */
  async endAll(username: string): Promise<number> {
    await this.kv.put(kvKeys.refreshEpoch(username), crypto.randomUUID());
    return this.revokeAll(username);
  }

  async put(record: RefreshTokenRecord): Promise<void> {
    const { secretHash: _hash, epoch: _epoch, ...summary } = record;
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
