/**
 * Who may administer what (README "Roles"): a registry administrator administers everything; a namespace
 * administrator (a web user holding the `admin` role on a namespace) administers that namespace; anyone
 * else administers nothing. Which route needs which role is the table in admin/route-roles.ts.
 */
import { namespaceOf, type GrantTarget } from "../model/grants";
import type { AuthenticatedIdentity } from "../auth/credentials";
import { AdminApiError } from "../http/api-errors";
import { badRequest } from "./admin-input";
import type { AdminServices } from "./context";

/** What the caller of the admin API administers. */
export interface AdminAccess {
  registryAdmin: boolean;
  /** Namespaces the caller holds the `admin` role on (empty for registry administrators: they hold them all). */
  namespaces: ReadonlySet<string>;
}

export const NO_ACCESS: AdminAccess = { registryAdmin: false, namespaces: new Set() };

/**
 * The caller's administrative reach. A namespace administrator's grants are read from the identity ledger
 * (the login read a record up to KV's propagation time old, platform.md §1), so revoking someone's `admin`
 * role ends their administration at once. Only web users administer namespaces: a service account's `admin`
 * role lets it delete images on /v2/, never mint credentials or grants (Quay's robots administer nothing).
 */
export async function adminAccessOf(services: AdminServices, identity: AuthenticatedIdentity): Promise<AdminAccess> {
  if (identity.principal.registryAdmin) return { registryAdmin: true, namespaces: new Set() };
  if (identity.principal.kind !== "user") return NO_ACCESS;
  // Not the login's grants: an `admin` role granted or revoked a moment ago counts at once.
  const record = await services.identities.getUser(identity.subject);
  if (!record || record.disabled) return NO_ACCESS;
  return { registryAdmin: false, namespaces: new Set(record.grants.filter(isNamespaceAdminGrant).map((grant) => grant.target.name)) };
}

function isNamespaceAdminGrant(grant: { target: GrantTarget; role: string }): boolean {
  return grant.role === "admin" && grant.target.kind === "namespace";
}

export function administers(access: AdminAccess, namespace: string): boolean {
  return access.registryAdmin || access.namespaces.has(namespace);
}

export function administersAny(access: AdminAccess): boolean {
  return access.registryAdmin || access.namespaces.size > 0;
}

export const NEEDS_REGISTRY_ADMIN = () => new AdminApiError(403, "forbidden", "this needs a registry administrator");

export const NEEDS_SOME_ADMIN = () =>
  new AdminApiError(403, "forbidden", "this needs a registry administrator or the admin role on a namespace");

export function needsNamespaceAdmin(namespace: string): AdminApiError {
  return new AdminApiError(403, "forbidden", `this needs the admin role on namespace ${JSON.stringify(namespace.slice(0, 64))} (or a registry administrator)`);
}

/** Refuses (403) unless the caller administers `namespace`. */
export function requireAdministers(access: AdminAccess, namespace: string): void {
  if (!administers(access, namespace)) throw needsNamespaceAdmin(namespace);
}

/**
 * A service account's grants stay inside its namespace (as Quay's robot accounts stay inside their
 * organization). Refused with 400 for every caller, registry administrators included: the request asks for
 * something the model does not allow, which no other credential would make acceptable (a 403 would say it does).
 */
export function requireGrantInNamespace(accountNamespace: string, target: GrantTarget): void {
  const namespace = namespaceOf(target.name);
  if (namespace !== accountNamespace) {
    throw badRequest(
      `a service account's grants stay inside its namespace: ${target.kind} ${JSON.stringify(target.name.slice(0, 256))} is outside namespace ${JSON.stringify(accountNamespace)}`,
    );
  }
}
