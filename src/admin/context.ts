/** What admin and account handlers need, and the Basic authentication both use. */
import type { Principal } from "../auth/access-model";
import type { Visibility } from "../auth/visibility";
import type { ConsoleSession, ConsoleSessions } from "../auth/console-sessions";
import type { AuthenticatedIdentity } from "../auth/credentials";
import type { GuardedLogin } from "../auth/guarded-login";
import { parseBasicAuthorization } from "../auth/basic-auth";
import type { Hmac, PasswordHasher } from "../crypto/secrets";
import { AdminApiError } from "../http/api-errors";
import { SESSION_COOKIE, readCookie } from "../http/cookies";
import { buildAuditEvent, type AuditInput, type AuditLog } from "../storage/audit-log";
import type { IdentityStore } from "../storage/identity-store";
import type { RefreshTokenStore } from "../storage/refresh-token-store";
import type { RepositoryStore } from "../storage/repository-store";
import type { UpstreamAdmin } from "./imports";
import type { WebhookServices } from "./webhooks";
import type { AdminAccess } from "./admin-access";

/** Dependencies shared by every admin request. */
export interface AdminServices {
  identities: IdentityStore;
  repositories: RepositoryStore;
  login: GuardedLogin;
  passwords: PasswordHasher;
  tokenHmac: Hmac;
  audit: AuditLog;
  refreshTokens: RefreshTokenStore;
  /** Which repositories allow anonymous pull (the account API's listing of what a caller may pull). */
  visibility: Visibility;
  /** The web console's sessions (auth/console-sessions.ts), the other way to authenticate than Basic. */
  sessions: ConsoleSessions;
  /** ALLOW_INSECURE_OIDC_ISSUERS: trust policies may name http:// loopback issuers (admin/service-accounts.ts). */
  allowInsecureOidcIssuers?: boolean;
  /** Imports and mirrors (admin/imports.ts). */
  upstream: UpstreamAdmin;
  /** Webhook subscriptions (admin/webhooks.ts). */
  webhooks: WebhookServices;
}

export interface AdminContext extends AdminServices {
  /** Origin clients reach the registry at, for the credential outputs in responses. */
  origin: string;
  /** The authenticated caller: an administrator, or for the account API the user acting on their own account. */
  actor: string;
  /** The caller, with its grants (what it may pull; what a namespace administrator may read). */
  principal: Principal;
  /** What the caller administers (admin/admin-access.ts; nothing on the account API); each admin route's role is in admin/route-roles.ts. */
  access: AdminAccess;
}

/** Checks Basic credentials (the same ones `podman login` takes); throttled and audited like any login. */
export async function authenticateBasic(services: AdminServices, request: Request, area: string): Promise<AuthenticatedIdentity> {
  const basic = parseBasicAuthorization(request.headers.get("Authorization"));
  if (!basic || basic === "malformed") throw new AdminApiError(401, "unauthorized", "Basic credentials are required");
  const result = await services.login.login(request, basic.username, basic.secret, area);
  if (!result.ok && result.throttled) {
    throw new AdminApiError(429, "too_many_requests", "too many failed logins; retry later", { "Retry-After": String(result.retryAfterSeconds) });
  }
  if (!result.ok) throw new AdminApiError(401, "unauthorized", "invalid username or password");
  return result.identity;
}

/** The header carrying a console session's CSRF token on every state-changing request. */
export const CSRF_HEADER = "X-CSRF-Token";

const SAFE_METHODS = new Set(["GET", "HEAD"]);

/**
 * The one place the admin and account APIs authenticate a request: Basic credentials when an Authorization
 * header is sent, else the console's session cookie. A state change made with the cookie must also come
 * from the registry's own origin (`Origin`, which browsers send on every non-GET request) and carry the
 * session's CSRF token in `X-CSRF-Token` (OWASP CSRF cheat sheet: synchronizer token + origin check).
 * `SameSite=Strict` already keeps the cookie off cross-site requests; these hold where it would not
 * (an older browser, a same-site sibling host).
 */
export async function authenticate(services: AdminServices, request: Request, area: string, origin: string): Promise<AuthenticatedIdentity> {
  if (request.headers.has("Authorization")) return authenticateBasic(services, request, area);
  const session = await sessionOf(services, request);
  if (!session) throw new AdminApiError(401, "unauthorized", "Basic credentials or a console session are required");
  if (!SAFE_METHODS.has(request.method)) await requireSameOriginWithCsrf(services, request, session, origin);
  return session.identity;
}

/** The console session the request's cookie stands for, or undefined (no cookie, forged, expired, revoked). */
export async function sessionOf(services: AdminServices, request: Request): Promise<ConsoleSession | undefined> {
  const cookie = readCookie(request.headers.get("Cookie"), SESSION_COOKIE);
  return cookie ? services.sessions.authenticate(cookie) : undefined;
}

export async function requireSameOriginWithCsrf(services: AdminServices, request: Request, session: ConsoleSession, origin: string): Promise<void> {
  if (request.headers.get("Origin") !== origin) throw new AdminApiError(403, "forbidden", "state changes with a console session must come from the console's origin");
  if (!(await services.sessions.verifyCsrf(session, request.headers.get(CSRF_HEADER)))) {
    throw new AdminApiError(403, "forbidden", "missing or invalid CSRF token; reload the console");
  }
}

/**
 * Makes an admin change with its audit record (SECURITY.md "Audit"): the record is built and validated
 * first (bounded by construction, so it cannot be refused for its size), written, and only then is the
 * change made. A failed audit write therefore leaves nothing changed; a change that fails after its record
 * was written leaves a record of an attempt the client saw fail (500), never a change without a record.
 */
export async function auditedChange<T>(ctx: AdminContext, input: Omit<AuditInput, "actor">, change: () => Promise<T>): Promise<T> {
  const event = buildAuditEvent({ actor: ctx.actor, ...input });
  await ctx.audit.write(event);
  return change();
}
