/** Admin API: namespaces (organizations) and repository visibility. */
import { isValidNamespace } from "../auth/identity-grammar";
import { AdminApiError } from "../http/api-errors";
import { jsonResponse } from "../http/headers";
import { isValidRepositoryName } from "../registry/reference";
import type { NamespaceRecord } from "../storage/identity-store";
import { badRequest, optionalBoolean, readJson, requiredString } from "./admin-input";
import type { AdminContext } from "./context";

async function newOrganizationId(ctx: AdminContext): Promise<string> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const id = String(10_000_000 + (crypto.getRandomValues(new Uint32Array(1))[0]! % 90_000_000));
    if (!(await ctx.identities.isOrganizationIdTaken(id))) return id;
  }
  throw new Error("could not allocate an organization id");
}

export async function requireNamespace(ctx: AdminContext, name: string): Promise<NamespaceRecord> {
  const record = isValidNamespace(name) ? await ctx.identities.getNamespace(name) : null;
  if (!record) throw new AdminApiError(404, "not_found", `namespace ${JSON.stringify(name)} does not exist`);
  return record;
}

export async function createNamespace(ctx: AdminContext, request: Request): Promise<Response> {
  const body = await readJson(request);
  const name = requiredString(body, "name", 64);
  if (!isValidNamespace(name)) throw badRequest("namespace names are one lowercase repository-name component");
  if (await ctx.identities.getNamespace(name)) throw new AdminApiError(409, "conflict", `namespace ${name} exists`);
  const record: NamespaceRecord = {
    name,
    organizationId: await newOrganizationId(ctx),
    public: optionalBoolean(body, "public") ?? false,
    createdAt: new Date().toISOString(),
  };
  await ctx.identities.putNamespace(record);
  await ctx.audit.record({ actor: ctx.actor, action: "namespace.create", target: name, detail: `public=${record.public}` });
  return jsonResponse(record, 201);
}

export async function listNamespaces(ctx: AdminContext): Promise<Response> {
  return jsonResponse({ namespaces: await ctx.identities.listNamespaces() });
}

export async function getNamespace(ctx: AdminContext, name: string): Promise<Response> {
  return jsonResponse(await requireNamespace(ctx, name));
}

export async function updateNamespace(ctx: AdminContext, request: Request, name: string): Promise<Response> {
  const record = await requireNamespace(ctx, name);
  const body = await readJson(request);
  const updated = { ...record, public: optionalBoolean(body, "public") ?? record.public };
  await ctx.identities.putNamespace(updated);
  await ctx.audit.record({ actor: ctx.actor, action: "namespace.update", target: name, detail: `public=${updated.public}` });
  return jsonResponse(updated);
}

export async function deleteNamespace(ctx: AdminContext, name: string): Promise<Response> {
  const record = await requireNamespace(ctx, name);
  const names = await ctx.repositories.listRepositories();
  if (names.some((repository) => repository.startsWith(`${name}/`))) {
    throw new AdminApiError(409, "conflict", `namespace ${name} still holds repositories`);
  }
  await ctx.identities.deleteNamespace(record);
  await ctx.audit.record({ actor: ctx.actor, action: "namespace.delete", target: name });
  return new Response(null, { status: 204 });
}

/** PATCH /admin/v1/repositories/<name> `{"public":true}`: makes one repository public or private. */
export async function updateRepository(ctx: AdminContext, request: Request, name: string): Promise<Response> {
  if (!isValidRepositoryName(name) || !name.includes("/")) throw badRequest("invalid repository name");
  await requireNamespace(ctx, name.slice(0, name.indexOf("/")));
  const body = await readJson(request);
  const current = (await ctx.repositories.getRepository(name)) ?? { name, public: false, createdAt: new Date().toISOString() };
  const updated = { ...current, public: optionalBoolean(body, "public") ?? current.public };
  await ctx.repositories.putRepository(updated);
  await ctx.audit.record({ actor: ctx.actor, action: "repository.update", target: name, detail: `public=${updated.public}` });
  return jsonResponse(updated);
}
