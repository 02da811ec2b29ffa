/**
 * Refresh tokens (docker's "identity token") for web users: issued on login with offline_token=true
 * (GET) or access_type=offline (POST), redeemed with grant_type=refresh_token. Reusable and revocable,
 * bound to one user and one service (distribution docs spec/auth/oauth.md, token.md).
 */
import type { Hmac } from "../crypto/secrets";
import { randomSecret } from "../crypto/secrets";
import type { IdentityStore } from "../storage/identity-store";
import type { RefreshTokenStore } from "../storage/refresh-token-store";
import type { AuthenticatedIdentity, CredentialVerifier } from "./credentials";

export class RefreshTokens {
  constructor(
    private readonly store: RefreshTokenStore,
    private readonly identities: IdentityStore,
    private readonly credentials: CredentialVerifier,
    private readonly hmac: Hmac,
  ) {}

  /** Issues a token for a web user; `<id>.<secret>`, shown once. */
  async issue(username: string, service: string, clientId: string): Promise<string> {
    const id = randomSecret(12);
    const secret = randomSecret(32);
    // Bound to the user's epoch now: a disable, delete or password change after this ends it.
    const epoch = await this.store.epoch(username);
    await this.store.put({
      epoch,
      id,
      username,
      service,
      clientId: clientId.slice(0, 100),
      secretHash: await this.hmac.signHex(secret),
      createdAt: new Date().toISOString(),
    });
    return `${id}.${secret}`;
  }

  /** The user a refresh token stands for, or undefined for an unknown, revoked or foreign token. */
  async redeem(token: string, service: string): Promise<AuthenticatedIdentity | undefined> {
    const [id, secret, ...rest] = token.split(".");
    if (!id || !secret || rest.length > 0 || token.length > 200) return undefined;
    const record = await this.store.get(id);
    const matches = await this.hmac.verifyHex(secret, record?.secretHash ?? "0".repeat(64));
    if (!record || !matches || record.service !== service) return undefined;
    // The token is only as good as the user behind it: deleted or disabled users lose access at once, and
    // a token issued before a disable (or password change) stays ended after a re-enable: its epoch is gone.
    const [user, epoch] = await Promise.all([this.identities.getUser(record.username), this.store.epoch(record.username)]);
    if (!user || user.disabled || (record.epoch ?? "") !== epoch) return undefined;
    return this.credentials.userIdentity(user);
  }
}
