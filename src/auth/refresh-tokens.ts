/**
 * Refresh tokens (docker's "identity token") for web users: issued on login with offline_token=true
 * (GET) or access_type=offline (POST), redeemed with grant_type=refresh_token. Reusable and revocable,
 * bound to one user and one service (distribution docs spec/auth/oauth.md, token.md).
 *
 * Issuance and revocation are identity-ledger operations (storage/refresh-token-store.ts). A redemption
 * reads the token's published record (KV, the ledger on a miss) and the user's record (KV, the ledger on a
 * miss) and honours the token only while the user exists, is enabled and still has the refresh epoch the
 * token was issued under. A refusal is confirmed with the ledger before it is final: KV may serve a record
 * from before the change that made the token valid (a token issued just after a password change, platform.md
 * §1). An acceptance is not: KV may serve a user record from before a disable, password change or delete for
 * up to the revocation window (SECURITY.md), which is the documented bound on revocation.
 */
import type { Hmac } from "../crypto/secrets";
import { randomSecret } from "../crypto/secrets";
import type { IdentityStore, UserRecord } from "../storage/identity-store";
import type { RefreshTokenRecord, RefreshTokenStore } from "../storage/refresh-token-store";
import type { AuthenticatedIdentity, CredentialVerifier } from "./credentials";

/** A hash no secret matches, compared against when there is no record, to keep timing uniform. */
const NO_HASH = "0".repeat(64);

/** Whether `user` honours `token`: it exists, is enabled, and has the epoch the token was issued under. */
function honours(user: UserRecord | null, token: RefreshTokenRecord): user is UserRecord {
  return user !== null && !user.disabled && (token.epoch ?? "") === (user.refreshEpoch ?? "");
}

export class RefreshTokens {
  constructor(
    private readonly store: RefreshTokenStore,
    private readonly identities: IdentityStore,
    private readonly credentials: CredentialVerifier,
    private readonly hmac: Hmac,
  ) {}

  /**
   * Issues a token for a web user who has just logged in; `<id>.<secret>`, shown once. The ledger binds it
   * to the user's current epoch, and refuses it when the password the login verified (the record in the
   * isolate's login cache) is no longer the user's, or the user is disabled or gone: a login that raced a
   * password change, disable or delete gets no token, so no token outlives such a change.
   */
  async issue(username: string, service: string, clientId: string): Promise<string | undefined> {
    const user = await this.identities.getUserForLogin(username);
    if (!user || user.disabled) return undefined;
    const id = randomSecret(12);
    const secret = randomSecret(32);
    const issued = await this.store.issue(
      { id, username, service, clientId: clientId.slice(0, 100), secretHash: await this.hmac.signHex(secret), createdAt: new Date().toISOString() },
      user.password,
    );
    return issued ? `${id}.${secret}` : undefined;
  }

  /**
   * The user a refresh token stands for, or undefined for an unknown, revoked or foreign token, or one
   * older than `maxAgeSeconds` when given (console sessions, auth/console-sessions.ts).
   */
  async redeem(token: string, service: string, maxAgeSeconds?: number): Promise<AuthenticatedIdentity | undefined> {
    const [id, secret, ...rest] = token.split(".");
    if (!id || !secret || rest.length > 0 || token.length > 200) return undefined;
    const record = await this.store.getForRedemption(id);
    const matches = await this.hmac.verifyHex(secret, record?.secretHash ?? NO_HASH);
    if (!record || !matches || record.service !== service) return undefined;
    if (maxAgeSeconds !== undefined && !(Date.now() - Date.parse(record.createdAt) < maxAgeSeconds * 1000)) return undefined;
    // The token is only as good as the user behind it: a disable, password change or delete ends it for
    // good (a new epoch), and re-enabling the user does not bring it back.
    let user = await this.identities.getUser(record.username);
    // platform.md §1: KV may serve an older user record (a miss already fell back to the ledger); a refusal
    // is final only when the ledger agrees.
    if (!honours(user, record)) user = await this.identities.confirmUserForLogin(record.username);
    if (!honours(user, record)) return undefined;
    return this.credentials.userIdentity(user);
  }
}
