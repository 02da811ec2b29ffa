/** What admin and account handlers need, and the Basic authentication both use. */
import type { CredentialVerifier, AuthenticatedIdentity } from "../auth/credentials";
import { parseBasicAuthorization } from "../auth/basic-auth";
import type { Hmac, PasswordHasher } from "../crypto/secrets";
import { AdminApiError } from "../http/api-errors";
import type { AuditLog } from "../storage/audit-log";
import type { IdentityStore } from "../storage/identity-store";
import type { RefreshTokenStore } from "../storage/refresh-token-store";
import type { RepositoryStore } from "../storage/repository-store";

/** Dependencies shared by every admin request. */
export interface AdminServices {
  identities: IdentityStore;
  repositories: RepositoryStore;
  credentials: CredentialVerifier;
  passwords: PasswordHasher;
  tokenHmac: Hmac;
  audit: AuditLog;
  refreshTokens: RefreshTokenStore;
}

export interface AdminContext extends AdminServices {
  /** Origin clients reach the registry at, for the credential outputs in responses. */
  origin: string;
  /** The authenticated administrator (or, for the account API, the user acting on their own account). */
  actor: string;
}

/** Checks Basic credentials (the same ones `podman login` takes); failures are audited. */
export async function authenticateBasic(services: AdminServices, request: Request, area: string): Promise<AuthenticatedIdentity> {
  const basic = parseBasicAuthorization(request.headers.get("Authorization"));
  if (!basic || basic === "malformed") throw new AdminApiError(401, "unauthorized", "Basic credentials are required");
  const result = await services.credentials.check(basic.username, basic.secret);
  if (!result.ok) {
    await services.audit.record({
      actor: basic.username,
      action: "auth.failure",
      detail: `${result.reason} at the ${area}; client ${request.headers.get("CF-Connecting-IP") ?? "unknown"}`,
    });
    throw new AdminApiError(401, "unauthorized", "invalid username or password");
  }
  return result.identity;
}

/** The admin API is for registry administrators only; returns the administrator's username. */
export async function requireRegistryAdmin(services: AdminServices, request: Request): Promise<string> {
  const identity = await authenticateBasic(services, request, "admin API");
  if (!identity.principal.registryAdmin) throw new AdminApiError(403, "forbidden", "registry administrators only");
  return identity.subject;
}
