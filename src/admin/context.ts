/** What admin handlers need. */
import type { CredentialVerifier } from "../auth/credentials";
import type { Hmac, PasswordHasher } from "../crypto/secrets";
import { AdminApiError } from "../http/api-errors";
import { parseBasicAuthorization } from "../auth/basic-auth";
import type { IdentityStore } from "../storage/identity-store";
import type { RepositoryStore } from "../storage/repository-store";

export interface AdminContext {
  identities: IdentityStore;
  repositories: RepositoryStore;
  credentials: CredentialVerifier;
  passwords: PasswordHasher;
  tokenHmac: Hmac;
  /** Origin clients reach the registry at, for the login hints in responses. */
  origin: string;
}

/** The admin API takes the same Basic credentials as `podman login`, from registry administrators only. */
export async function requireRegistryAdmin(ctx: AdminContext, request: Request): Promise<string> {
  const basic = parseBasicAuthorization(request.headers.get("Authorization"));
  if (!basic || basic === "malformed") throw new AdminApiError(401, "unauthorized", "Basic credentials of a registry administrator are required");
  const identity = await ctx.credentials.authenticate(basic.username, basic.secret);
  if (!identity) throw new AdminApiError(401, "unauthorized", "invalid username or password");
  if (!identity.principal.registryAdmin) throw new AdminApiError(403, "forbidden", "registry administrators only");
  return identity.subject;
}
