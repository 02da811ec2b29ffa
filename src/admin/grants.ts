/** Admin API: grants of read/write/admin on a namespace or repository, to a user or a service account. */
import { AdminApiError } from "../http/api-errors";
import { jsonResponse } from "../http/headers";
import type { PrincipalId } from "../storage/keys";
import { grant, readJson } from "./admin-input";
import type { AdminContext } from "./context";
import { requireNamespace } from "./namespaces";
import { requireServiceAccount } from "./service-accounts";
import { requireUser } from "./users";

export type PrincipalKind = "users" | "service-accounts";

async function principalId(ctx: AdminContext, kind: PrincipalKind, name: string): Promise<PrincipalId> {
  if (kind === "users") {
    await requireUser(ctx, name);
    return `user/${name}`;
  }
  await requireServiceAccount(ctx, name);
  return `sa/${name}`;
}

export async function listGrants(ctx: AdminContext, kind: PrincipalKind, name: string): Promise<Response> {
  const principal = await principalId(ctx, kind, name);
  return jsonResponse({ grants: await ctx.identities.grantsOf(principal) });
}

/** PUT `{"namespace":"acme","role":"write"}` or `{"repository":"acme/app","role":"read"}`. */
export async function putGrant(ctx: AdminContext, request: Request, kind: PrincipalKind, name: string): Promise<Response> {
  const principal = await principalId(ctx, kind, name);
  const { target, role } = grant(await readJson(request), true);
  await requireNamespace(ctx, target.kind === "namespace" ? target.name : target.name.slice(0, target.name.indexOf("/")));
  await ctx.identities.putGrant(principal, target, role);
  return jsonResponse({ target, role });
}

/** DELETE with `{"namespace":"acme"}` or `{"repository":"acme/app"}`. */
export async function deleteGrant(ctx: AdminContext, request: Request, kind: PrincipalKind, name: string): Promise<Response> {
  const principal = await principalId(ctx, kind, name);
  const { target } = grant(await readJson(request), false);
  if (!(await ctx.identities.deleteGrant(principal, target))) throw new AdminApiError(404, "not_found", "no such grant");
  return new Response(null, { status: 204 });
}
