/**
 * The one path every credential check takes (token endpoint, admin and account APIs, refresh-token
 * redemption): brute-force throttling, the check itself, and an audit record of each failure. Callers turn
 * the result into their own protocol's error.
 *
 * Lockout policy (SECURITY.md "Brute force"):
 *  - every failure counts against the client address; a locked address is refused for every credential;
 *  - service-account tokens (256-bit random, unguessable) and refresh tokens are throttled per client
 *    address only, so nobody can lock out a service account by failing against its public username;
 *  - passwords (web users, bootstrap admin) also count per account, and a locked account refuses only
 *    client addresses that have never signed in successfully as it (OWASP "device cookies", the address as
 *    the device): guessing from new addresses stays limited, the account's known clients keep working.
 */
import type { AuditLog } from "../storage/audit-log";
import type { LoginDeviceStore } from "../storage/login-device-store";
import { principalIds, type PrincipalId } from "../model/principal";
import type { AuthenticatedIdentity, CredentialVerifier, FederationContext } from "./credentials";
import { BOOTSTRAP_ADMIN_USERNAME, isValidUsername, isServiceAccountName } from "./identity-grammar";
import type { LoginThrottle } from "./login-throttle";

export type GuardedLoginResult =
  | { ok: true; identity: AuthenticatedIdentity }
  | { ok: false; throttled: false }
  | { ok: false; throttled: true; retryAfterSeconds: number };

/** Cloudflare's client address; absent in local development. */
export function clientAddress(request: Request): string | undefined {
  return request.headers.get("CF-Connecting-IP") ?? undefined;
}

/** The password principal a username names (the key of its device records), or undefined when none can exist. */
function passwordPrincipal(username: string): PrincipalId | undefined {
  return username === BOOTSTRAP_ADMIN_USERNAME || isValidUsername(username) ? principalIds.user(username) : undefined;
}

export class GuardedLogin {
  constructor(
    private readonly credentials: CredentialVerifier,
    private readonly throttle: LoginThrottle,
    private readonly audit: AuditLog,
    private readonly devices: LoginDeviceStore,
  ) {}

  /**
   * `area` names where the attempt was made, for the audit log. `federation` (the token endpoint only) lets
   * an OIDC token stand in for a service-account token; a refused one counts as a failure like any other.
   */
  async login(request: Request, username: string, secret: string, area: string, federation?: FederationContext): Promise<GuardedLoginResult> {
    const client = clientAddress(request);
    // Service-account usernames are public; only their clients' addresses are throttled.
    const account = isServiceAccountName(username) ? undefined : username;
    const locked = await this.retryAfter(client, account);
    if (locked !== undefined) return { ok: false, throttled: true, retryAfterSeconds: locked };
    const result = await this.credentials.check(username, secret, new Date(), federation);
    if (result.ok) {
      if (account !== undefined && client) await this.devices.remember(result.identity.id, client);
      return result;
    }
    // Which rule refused a federated token goes to the audit log only, never to the caller.
    return this.fail(client, account, username, `${result.reason}${result.detail ? ` (${result.detail})` : ""} at the ${area}`);
  }

  /** A refresh-token redemption: a failure counts against the client address like a wrong password. */
  async redeem(request: Request, redeem: () => Promise<AuthenticatedIdentity | undefined>): Promise<GuardedLoginResult> {
    const client = clientAddress(request);
    const locked = this.throttle.clientRetryAfter(client);
    if (locked !== undefined) return { ok: false, throttled: true, retryAfterSeconds: locked };
    const identity = await redeem();
    if (identity) return { ok: true, identity };
    return this.fail(client, undefined, "(refresh token)", "invalid refresh token at the token endpoint");
  }

  /** The lock that applies to this attempt, in seconds, or undefined. */
  private async retryAfter(client: string | undefined, account: string | undefined): Promise<number | undefined> {
    const clientLock = this.throttle.clientRetryAfter(client);
    if (clientLock !== undefined || account === undefined) return clientLock;
    const accountLock = this.throttle.accountRetryAfter(account);
    if (accountLock === undefined) return undefined;
    // A locked account still admits the addresses it has signed in from (read only while it is locked).
    const principal = passwordPrincipal(account);
    const known = client !== undefined && principal !== undefined && (await this.devices.isKnown(principal, client));
    return known ? undefined : accountLock;
  }

  private async fail(client: string | undefined, account: string | undefined, actor: string, why: string): Promise<GuardedLoginResult> {
    await this.throttle.recordFailure({ account, client });
    const retryAfterSeconds = await this.retryAfter(client, account);
    // The actor is the name that was tried, cleaned and cut by the audit log; never the secret.
    await this.audit.record({
      actor,
      action: "auth.failure",
      detail: `${why}; client ${client ?? "unknown"}${retryAfterSeconds ? "; now throttled" : ""}`,
    });
    return retryAfterSeconds ? { ok: false, throttled: true, retryAfterSeconds } : { ok: false, throttled: false };
  }
}
