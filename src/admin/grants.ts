/** Admin API: grants of read/write/admin on a namespace or repository, to a user or a service account. */
import { namespaceOf, type Grant } from "../model/grants";
import { principalIds, type PrincipalId, type PrincipalKind } from "../model/principal";
import { AdminApiError } from "../http/api-errors";
import { jsonResponse } from "../http/headers";
import { administers, requireGrantInNamespace } from "./admin-access";
import { grant, readJson } from "./admin-input";
import { auditedChange, type AdminContext } from "./context";
import { requireNamespace } from "./namespaces";
import { requireServiceAccount } from "./service-accounts";
import { requireUser } from "./users";

/** The grant holder; a service account's namespace, which its grants may not leave. */
async function principal(ctx: AdminContext, kind: PrincipalKind, name: string): Promise<{ id: PrincipalId; grants: Grant[]; namespace?: string }> {
  if (kind === "user") return { id: principalIds.user(name), grants: (await requireUser(ctx, name)).grants };
  // `name` may be `<namespace>+<name>`: the id is built from the stored username.
  const account = await requireServiceAccount(ctx, name);
  return { id: principalIds.serviceAccount(account.username), grants: account.grants, namespace: account.namespace };
}

/** A user's grants within the namespaces the caller administers (every one for a registry administrator). */
export async function listGrants(ctx: AdminContext, kind: PrincipalKind, name: string): Promise<Response> {
  const { grants } = await principal(ctx, kind, name);
  return jsonResponse({ grants: kind === "user" ? grants.filter((item) => administers(ctx.access, namespaceOf(item.target.name))) : grants });
}

/** PUT `{"namespace":"acme","role":"write"}` or `{"repository":"acme/app","role":"read"}`. */
export async function putGrant(ctx: AdminContext, request: Request, kind: PrincipalKind, name: string): Promise<Response> {
  const { id, namespace } = await principal(ctx, kind, name);
  const { target, role } = grant(await readJson(request), true);
  if (namespace !== undefined) requireGrantInNamespace(namespace, target);
  await requireNamespace(ctx, namespaceOf(target.name));
  // The ledger checks the namespace again in the same transaction as the grant (404 if it was deleted meanwhile).
  const set = await auditedChange(ctx, { action: "grant.set", target: id, detail: `${role} on ${target.kind} ${target.name}` }, () =>
    ctx.identities.updateGrant(id, target, role),
  );
  if (!set) throw new AdminApiError(404, "not_found", `${id} does not exist`);
  return jsonResponse({ target, role });
}

/** DELETE with `{"namespace":"acme"}` or `{"repository":"acme/app"}`. */
export async function deleteGrant(ctx: AdminContext, request: Request, kind: PrincipalKind, name: string): Promise<Response> {
  const { id } = await principal(ctx, kind, name);
  const { target } = grant(await readJson(request), false);
  const revoked = await auditedChange(ctx, { action: "grant.revoke", target: id, detail: `${target.kind} ${target.name}` }, () =>
    ctx.identities.updateGrant(id, target, undefined),
  );
  if (!revoked) throw new AdminApiError(404, "not_found", "no such grant");
  return new Response(null, { status: 204 });
}
