/**
 * Web users' refresh tokens (the `identitytoken` docker keeps instead of a password). A token is
 * `<id>.<secret>`: the id finds the record, the secret is stored only as an HMAC. Tokens are reusable
 * (the docker daemon cannot store a rotated one) and revocable.
 *
 * The identity ledger (storage/identity-ledger.ts) is their single writer and consistent reader: issuing,
 * revoking and listing are ledger operations, and a disable, password change or delete of the user draws a
 * new refresh epoch and deletes the user's tokens in the same transaction as the change. The ledger
 * publishes each token's record to KV (`refresh:<id>`) for redemption at the edge, which reads KV first and
 * asks the ledger on a miss: KV caches misses and may not read its own writes (platform.md §1), so a token
 * works the moment its issuance is answered. A revoked token may still be read from KV until the deletion
 * is published and the location's cached copy expires (SECURITY.md "Revocation window").
 */
import type { PasswordHash } from "../crypto/secrets";
import { IDENTITY_LEDGER_NAME, type IdentityLedger, type LedgerResult } from "./identity-ledger";
import { kvKeys } from "./keys";
import type { RecentIdentityChanges } from "./recent-writes";

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
  /**
   * @param recent identity records changed lately in this isolate or location (shared with the identity
   *   store): their reads go to the ledger meanwhile, so no redemption there sees a revocation undone by a
   *   stale KV copy.
   */
  constructor(
    private readonly kv: KVNamespace,
    private readonly ledgers: DurableObjectNamespace<IdentityLedger>,
    private readonly recent: RecentIdentityChanges,
  ) {}

  /** A stub per use: a stub is an I/O object of the request that made it, and services outlive requests. */
  private get ledger(): DurableObjectStub<IdentityLedger> {
    return this.ledgers.get(this.ledgers.idFromName(IDENTITY_LEDGER_NAME));
  }

  /** The record of a token id, from the ledger (consistent); null for an unknown or malformed id. */
  async get(id: string): Promise<RefreshTokenRecord | null> {
    if (!isValidRefreshTokenId(id)) return null;
    return this.ledger.getRefreshToken(id);
  }

  /**
   * The record of a token id for a redemption: KV first (the edge read path), the ledger on a miss, since
   * KV caches misses for 60 s or more and may not read its own writes (platform.md §1). Null for an
   * unknown or malformed id (no key is built from the latter).
   */
  async getForRedemption(id: string): Promise<RefreshTokenRecord | null> {
    if (!isValidRefreshTokenId(id)) return null;
    const key = kvKeys.refreshToken(id);
    if ((await this.recent.changedAt(key)) !== undefined) return this.ledger.getRefreshToken(id);
    const published = await this.kv.get<RefreshTokenRecord>(key, "json");
    return published ?? (await this.ledger.getRefreshTokenForEdge(id));
  }

  /**
   * Records a token issued by a login that verified the password stored as `verified`, under the user's
   * current epoch; false when the ledger refuses it (the user is disabled, deleted or has another password).
   */
  async issue(token: Omit<RefreshTokenRecord, "epoch">, verified: PasswordHash): Promise<boolean> {
    const result: LedgerResult<RefreshTokenRecord> = await this.ledger.issueRefreshToken(token, verified);
    return result.ok;
  }

  /** A user's tokens, from the ledger (consistent: a token appears the moment it is issued). */
  listForUser(username: string): Promise<RefreshTokenSummary[]> {
    return this.ledger.listRefreshTokens(username);
  }

  /** Revokes one token of a user; false where the user has no such token. */
  async revoke(username: string, id: string): Promise<boolean> {
    if (!isValidRefreshTokenId(id)) return false;
    const result = await this.ledger.revokeRefreshToken(username, id);
    await this.recent.mark([kvKeys.refreshToken(id)]);
    return result.ok && result.value;
  }
}
