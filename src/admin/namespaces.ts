/** Admin API: namespaces (organizations) and repository visibility. */
import { isValidNamespace } from "../auth/identity-grammar";
import { AdminApiError } from "../http/api-errors";
import type { NamespaceView } from "../http/admin-api-types";
import { jsonResponse } from "../http/headers";
import { isValidRepositoryName } from "../oci/reference";
import type { NamespaceRecord } from "../storage/identity-store";
import { notificationHubFor } from "../storage/notification-hub";
import { administers } from "./admin-access";
import { badRequest, optionalBoolean, readJson, requiredString } from "./admin-input";
import { auditedChange, type AdminContext } from "./context";

export async function requireNamespace(ctx: AdminContext, name: string): Promise<NamespaceRecord> {
  const record = isValidNamespace(name) ? await ctx.identities.getNamespace(name) : null;
  if (!record) throw new AdminApiError(404, "not_found", `namespace ${JSON.stringify(name)} does not exist`);
  return record;
}

export async function createNamespace(ctx: AdminContext, request: Request): Promise<Response> {
  const body = await readJson(request);
  const name = requiredString(body, "name", 64);
  if (!isValidNamespace(name)) throw badRequest("namespace names are one lowercase repository-name component");
  // The ledger refuses an existing name (409) and allocates an organization id never used before.
  const isPublic = optionalBoolean(body, "public") ?? false;
  const record = await auditedChange(ctx, { action: "namespace.create", target: name, detail: `public=${isPublic}` }, () =>
    ctx.identities.createNamespace(name, isPublic),
  );
  return jsonResponse(record, 201);
}

/** Every namespace for a registry administrator; the ones a namespace administrator administers. */
export async function listNamespaces(ctx: AdminContext): Promise<Response> {
  return jsonResponse({ namespaces: (await ctx.identities.listNamespaces()).filter((record) => administers(ctx.access, record.name)) satisfies NamespaceView[] });
}

export async function getNamespace(ctx: AdminContext, name: string): Promise<Response> {
  return jsonResponse(await requireNamespace(ctx, name));
}

export async function updateNamespace(ctx: AdminContext, request: Request, name: string): Promise<Response> {
  const record = await requireNamespace(ctx, name);
  const body = await readJson(request);
  const updated = { ...record, public: optionalBoolean(body, "public") ?? record.public };
  await auditedChange(ctx, { action: "namespace.update", target: name, detail: `public=${updated.public}` }, () => ctx.identities.putNamespace(updated));
  return jsonResponse(updated);
}

/**
 * DELETE /admin/v1/namespaces/<name>[?force=true]: refused (409) while the catalog lists repositories in it,
 * unless `force`, which deletes each of them first (docs/lifecycle.md). The namespace's immutable-tag rules go too.
 */
export async function deleteNamespace(ctx: AdminContext, name: string, force = false): Promise<Response> {
  const record = await requireNamespace(ctx, name);
  const names = (await ctx.repositories.listRepositories()).filter((repository) => repository.startsWith(`${name}/`));
  if (names.length > 0 && !force) {
    throw new AdminApiError(409, "conflict", `namespace ${name} still holds ${names.length} repositories; delete them first, or delete with force`);
  }
  for (const repository of names) {
    await auditedChange(ctx, { action: "repository.delete", target: repository, detail: `deleting namespace ${name}` }, () => ctx.repositories.deleteRepository(repository, ctx.actor));
  }
  await auditedChange(ctx, { action: "immutable-tag.remove", target: `namespace:${name}`, detail: "all rules and the quota: namespace deleted" }, () =>
    ctx.repositories.clearNamespaceImmutableRules(name),
  );
  // Its webhooks go too: a namespace created later under this name must not notify the old receivers.
  await auditedChange(ctx, { action: "webhook.delete", target: `namespace:${name}`, detail: "all webhooks: namespace deleted" }, () =>
    notificationHubFor(ctx.webhooks.hubs, name).deleteAllSubscriptions(),
  );
  // One ledger transaction: the namespace, its service accounts, and every grant naming it or a repository in it.
  await auditedChange(ctx, { action: "namespace.delete", target: name, detail: "with its service accounts and every grant naming it" }, () =>
    ctx.identities.deleteNamespace(record),
  );
  return new Response(null, { status: 204 });
}

/** PATCH /admin/v1/repositories/<name> `{"public":true}`: makes one repository public or private. */
export async function updateRepository(ctx: AdminContext, request: Request, name: string): Promise<Response> {
  if (!isValidRepositoryName(name) || !name.includes("/")) throw badRequest("invalid repository name");
  await requireNamespace(ctx, name.slice(0, name.indexOf("/")));
  const body = await readJson(request);
  const current = (await ctx.repositories.getRepository(name)) ?? { name, public: false, createdAt: new Date().toISOString() };
  const updated = { ...current, public: optionalBoolean(body, "public") ?? current.public };
  await auditedChange(ctx, { action: "repository.update", target: name, detail: `public=${updated.public}` }, () => ctx.repositories.putRepository(updated));
  return jsonResponse(updated);
}
