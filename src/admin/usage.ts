/**
 * Admin API: storage use and namespace quotas (docs/lifecycle.md "Quotas and usage"). The use and the quota
 * are held by the namespace's holder (storage/namespace-usage.ts), a Durable Object, so a quota set here
 * holds for every push that starts storing bytes after this answer, in every location.
 */
import { AdminApiError } from "../http/api-errors";
import { jsonResponse } from "../http/headers";
import { namespaceOf } from "../model/grants";
import { isValidRepositoryName } from "../oci/reference";
import { badRequest, optionalInteger, readJson } from "./admin-input";
import { auditedChange, type AdminContext } from "./context";
import { requireNamespace } from "./namespaces";

/** GET /admin/v1/namespaces/<name>/usage: deduplicated and logical bytes, reservations, quota, per repository. */
export async function namespaceUsage(ctx: AdminContext, name: string): Promise<Response> {
  await requireNamespace(ctx, name);
  return jsonResponse(await ctx.repositories.namespaceUsage(name));
}

/** PUT /admin/v1/namespaces/<name>/quota `{"bytes":N}`: sets the quota (it may be below the current use: pushes are refused then). */
export async function setNamespaceQuota(ctx: AdminContext, request: Request, name: string): Promise<Response> {
  await requireNamespace(ctx, name);
  const bytes = optionalInteger(await readJson(request), "bytes", 0, Number.MAX_SAFE_INTEGER);
  if (bytes === undefined) throw badRequest("bytes (an integer ≥ 0) is required");
  await auditedChange(ctx, { action: "quota.set", target: `namespace:${name}`, detail: `bytes=${bytes}` }, () => ctx.repositories.setNamespaceQuota(name, bytes));
  return jsonResponse(await ctx.repositories.namespaceUsage(name));
}

/** DELETE /admin/v1/namespaces/<name>/quota: no quota any more. */
export async function clearNamespaceQuota(ctx: AdminContext, name: string): Promise<Response> {
  await requireNamespace(ctx, name);
  await auditedChange(ctx, { action: "quota.clear", target: `namespace:${name}` }, () => ctx.repositories.setNamespaceQuota(name, null));
  return new Response(null, { status: 204 });
}

/** GET /admin/v1/repositories/<name>/usage */
export async function repositoryUsage(ctx: AdminContext, name: string): Promise<Response> {
  if (!isValidRepositoryName(name) || !name.includes("/")) throw badRequest("invalid repository name: expected <namespace>/<path>");
  const usage = await ctx.repositories.repositoryUsage(name);
  if (usage.blobs === 0 && usage.manifests === 0 && !(await ctx.repositories.getRepository(name))) {
    throw new AdminApiError(404, "not_found", `repository ${JSON.stringify(name)} does not exist`);
  }
  return jsonResponse(usage);
}

/**
 * The account API's read of a namespace's usage and quota (`GET /account/v1/namespaces/<name>/usage`) and of a
 * repository's (`GET /account/v1/repositories/<name>/usage`), for administrators of the namespace (an `admin`
 * grant on it) and registry administrators; everyone else gets the same 404 as for a namespace that does not
 * exist, so the answer tells nothing about namespaces the caller does not administer.
 */
export async function namespaceUsageForAdmin(ctx: AdminContext, name: string): Promise<Response> {
  requireNamespaceAdmin(ctx, name);
  return namespaceUsage(ctx, name);
}

export async function repositoryUsageForAdmin(ctx: AdminContext, name: string): Promise<Response> {
  if (!isValidRepositoryName(name) || !name.includes("/")) throw badRequest("invalid repository name: expected <namespace>/<path>");
  requireNamespaceAdmin(ctx, namespaceOf(name));
  return repositoryUsage(ctx, name);
}

function requireNamespaceAdmin(ctx: AdminContext, namespace: string): void {
  const principal = ctx.principal;
  const administers =
    principal !== undefined &&
    (principal.registryAdmin || principal.grants.some((grant) => grant.role === "admin" && grant.target.kind === "namespace" && grant.target.name === namespace));
  if (!administers) throw new AdminApiError(404, "not_found", `namespace ${JSON.stringify(namespace)} does not exist or you do not administer it`);
}
