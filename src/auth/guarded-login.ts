/**
 * The one path every credential check takes (token endpoint, admin and account APIs): brute-force
 * throttling, the check itself, and an audit record of each failure. Callers turn the result into
 * their own protocol's error.
 */
import type { AuditLog } from "../storage/audit-log";
import type { AuthenticatedIdentity, CredentialVerifier } from "./credentials";
import type { LoginThrottle } from "./login-throttle";

export type GuardedLoginResult =
  | { ok: true; identity: AuthenticatedIdentity }
  | { ok: false; throttled: false }
  | { ok: false; throttled: true; retryAfterSeconds: number };

/** Cloudflare's client address; absent in local development. */
export function clientAddress(request: Request): string | undefined {
  return request.headers.get("CF-Connecting-IP") ?? undefined;
}

export class GuardedLogin {
  constructor(
    private readonly credentials: CredentialVerifier,
    private readonly throttle: LoginThrottle,
    private readonly audit: AuditLog,
  ) {}

  /** `area` names where the attempt was made, for the audit log. */
  async login(request: Request, username: string, secret: string, area: string): Promise<GuardedLoginResult> {
    const client = clientAddress(request);
    const locked = this.throttle.retryAfter(username, client);
    if (locked !== undefined) return { ok: false, throttled: true, retryAfterSeconds: locked };
    const result = await this.credentials.check(username, secret);
    if (result.ok) return result;
    const retryAfterSeconds = await this.throttle.recordFailure(username, client);
    await this.audit.record({
      actor: username,
      action: "auth.failure",
      detail: `${result.reason} at the ${area}; client ${client ?? "unknown"}${retryAfterSeconds ? "; now throttled" : ""}`,
    });
    return retryAfterSeconds ? { ok: false, throttled: true, retryAfterSeconds } : { ok: false, throttled: false };
  }
}
