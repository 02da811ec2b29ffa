/**
 * Web console sessions (README "Console"): a web user signs in with username and password (the throttled,
 * audited login every credential takes) and gets a session, held as a refresh token of a distinct kind
 * (`service` = CONSOLE_SESSION_SERVICE, which no token request can name, so a session is never redeemed
 * for a registry token and a refresh token never opens a session). It therefore has what refresh tokens
 * have: only an HMAC of its secret is stored, it is revocable one by one (sign-out) and ends for good when
 * the user is disabled, deleted or changes password (the identity ledger's refresh epoch), within the
 * revocation window SECURITY.md states. On top: a lifetime of SESSION_LIFETIME_SECONDS from sign-in, and a
 * CSRF token bound to the session (an HMAC of its id), which every state-changing request must carry.
 */
import type { Hmac } from "../crypto/secrets";
import type { RefreshTokenStore } from "../storage/refresh-token-store";
import type { AuthenticatedIdentity } from "./credentials";
import type { GuardedLogin, GuardedLoginResult } from "./guarded-login";
import { parseServiceAccountUsername } from "./identity-grammar";
import type { RefreshTokens } from "./refresh-tokens";

/**
 * The token endpoint redeems refresh tokens only for the configured SERVICE_NAME (auth/token-endpoint.ts
 * `checkService`); this kind holds spaces, which no service name a registry client sends holds.
 */
export const CONSOLE_SESSION_SERVICE = "web console session";
export const SESSION_LIFETIME_SECONDS = 3600;
/** Sessions a user may hold at once; signing in beyond it ends the oldest (bounds the ledger's rows). */
export const MAX_SESSIONS_PER_USER = 10;

export interface ConsoleSession {
  identity: AuthenticatedIdentity;
  /** The session id (the public half of the cookie). */
  id: string;
  csrfToken: string;
}

export type SignInResult = { ok: true; cookieValue: string; session: ConsoleSession } | Exclude<GuardedLoginResult, { ok: true }>;

export class ConsoleSessions {
  constructor(
    private readonly login: GuardedLogin,
    private readonly tokens: RefreshTokens,
    private readonly store: RefreshTokenStore,
    /** Keyed for CSRF tokens only (a purpose of its own under the pepper). */
    private readonly csrfHmac: Hmac,
  ) {}

  /**
   * Signs a web user in. Service accounts and the bootstrap admin (which has no user record) get the same
   * refusal as a wrong password; the bootstrap admin is for the API and for creating the first users.
   */
  async signIn(request: Request, username: string, password: string): Promise<SignInResult> {
    if (parseServiceAccountUsername(username)) return { ok: false, throttled: false };
    const result = await this.login.login(request, username, password, "console");
    if (!result.ok) return result;
    if (result.identity.principal.kind !== "user") return { ok: false, throttled: false };
    await this.endStaleSessions(result.identity.subject);
    const token = await this.tokens.issue(result.identity.subject, CONSOLE_SESSION_SERVICE, "console");
    // The ledger refuses a session to a login that raced a disable, delete or password change.
    if (!token) return { ok: false, throttled: false };
    const id = token.slice(0, token.indexOf("."));
    return { ok: true, cookieValue: token, session: { identity: result.identity, id, csrfToken: await this.csrfToken(id) } };
  }

  /** The session a cookie value stands for: unknown, forged, expired, revoked or foreign → undefined. */
  async authenticate(cookieValue: string): Promise<ConsoleSession | undefined> {
    const identity = await this.tokens.redeem(cookieValue, CONSOLE_SESSION_SERVICE, SESSION_LIFETIME_SECONDS);
    if (!identity) return undefined;
    const id = cookieValue.slice(0, cookieValue.indexOf("."));
    return { identity, id, csrfToken: await this.csrfToken(id) };
  }

  /** Whether `presented` is the session's CSRF token (constant-time). */
  verifyCsrf(session: ConsoleSession, presented: string | null): Promise<boolean> {
    if (presented === null || presented.length > 128) return Promise.resolve(false);
    return this.csrfHmac.verifyHex(`csrf:${session.id}`, presented);
  }

  /** Sign-out: the session ends at once in this location, everywhere within the revocation window. */
  async signOut(session: ConsoleSession): Promise<void> {
    await this.store.revoke(session.identity.subject, session.id);
  }

  private csrfToken(id: string): Promise<string> {
    return this.csrfHmac.signHex(`csrf:${id}`);
  }

  /** Ends the user's expired sessions, and the oldest live ones beyond the limit (room for the new one). */
  private async endStaleSessions(username: string): Promise<void> {
    const sessions = (await this.store.listForUser(username)).filter((token) => token.service === CONSOLE_SESSION_SERVICE);
    const expiredBefore = Date.now() - SESSION_LIFETIME_SECONDS * 1000;
    const live = sessions.filter((token) => Date.parse(token.createdAt) > expiredBefore);
    const ending = [...sessions.filter((token) => !live.includes(token)), ...live.slice(0, Math.max(0, live.length - (MAX_SESSIONS_PER_USER - 1)))];
    for (const token of ending) await this.store.revoke(username, token.id);
  }
}
