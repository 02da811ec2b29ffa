/**
 * Admin API: service accounts, the credential production should use. Named `<org id>|<name>` after the
 * namespace they are created in, independent of any user; the token is shown once, stored as an HMAC.
 */
import { namespaceOf, type Grant } from "../auth/access-model";
import { isValidServiceAccountName, parseServiceAccountUsername } from "../auth/identity-grammar";
import { randomSecret } from "../crypto/secrets";
import { AdminApiError } from "../http/api-errors";
import { jsonResponse } from "../http/headers";
import type { ServiceAccountRecord } from "../storage/identity-store";
import { badRequest, grant, optionalBoolean, optionalString, readJson, requiredString } from "./admin-input";
import type { AdminContext } from "./context";
import { requireNamespace } from "./namespaces";

/** 32 random bytes, base64url: 43 characters. */
const TOKEN_BYTES = 32;

function view(record: ServiceAccountRecord) {
  const { tokenHash: _hash, ...rest } = record;
  return rest;
}

export async function requireServiceAccount(ctx: AdminContext, username: string): Promise<ServiceAccountRecord> {
  const record = parseServiceAccountUsername(username) ? await ctx.identities.getServiceAccount(username) : null;
  if (!record) throw new AdminApiError(404, "not_found", `service account ${JSON.stringify(username)} does not exist`);
  return record;
}

/** POST `{"namespace":"acme","name":"ci-puller","description":"…","grants":[{"namespace":"acme","role":"read"}]}`. */
export async function createServiceAccount(ctx: AdminContext, request: Request): Promise<Response> {
  const body = await readJson(request);
  const namespace = await requireNamespace(ctx, requiredString(body, "namespace", 64));
  const name = requiredString(body, "name", 64);
  if (!isValidServiceAccountName(name)) throw badRequest("name must match [a-z0-9][a-z0-9._-]*[a-z0-9] (at most 64)");
  const grants = body.grants === undefined ? [] : body.grants;
  if (!Array.isArray(grants)) throw badRequest("grants must be an array");
  const parsedGrants = dedupeGrants(grants.map((item) => grant((item ?? {}) as Record<string, unknown>, true)));
  for (const item of parsedGrants) await requireNamespace(ctx, namespaceOf(item.target.name));
  const username = `${namespace.organizationId}|${name}`;
  if (await ctx.identities.getServiceAccount(username)) throw new AdminApiError(409, "conflict", `service account ${username} exists`);
  const token = randomSecret(TOKEN_BYTES);
  const record: ServiceAccountRecord = {
    username,
    namespace: namespace.name,
    description: optionalString(body, "description") ?? "",
    tokenHash: await ctx.tokenHmac.signHex(token),
    grants: parsedGrants,
    disabled: false,
    createdAt: new Date().toISOString(),
  };
  await ctx.identities.putServiceAccount(record);
  const host = new URL(ctx.origin).host;
  return jsonResponse(
    {
      ...view(record),
      // Shown once; only its HMAC is stored.
      token,
      login: `podman login -u '${username}' -p '${token}' ${host}`,
    },
    201,
  );
}

export async function listServiceAccounts(ctx: AdminContext): Promise<Response> {
  return jsonResponse({ serviceAccounts: (await ctx.identities.listServiceAccounts()).map(view) });
}

export async function getServiceAccount(ctx: AdminContext, username: string): Promise<Response> {
  return jsonResponse(view(await requireServiceAccount(ctx, username)));
}

/** PATCH `{"disabled":true}` or `{"description":"…"}`. */
export async function updateServiceAccount(ctx: AdminContext, request: Request, username: string): Promise<Response> {
  const record = await requireServiceAccount(ctx, username);
  const body = await readJson(request);
  const updated: ServiceAccountRecord = {
    ...record,
    disabled: optionalBoolean(body, "disabled") ?? record.disabled,
    description: optionalString(body, "description") ?? record.description,
  };
  await ctx.identities.putServiceAccount(updated);
  return jsonResponse(view(updated));
}

export async function deleteServiceAccount(ctx: AdminContext, username: string): Promise<Response> {
  await requireServiceAccount(ctx, username);
  await ctx.identities.deleteServiceAccount(username);
  return new Response(null, { status: 204 });
}

/** One grant per target; a later entry for the same target wins. */
function dedupeGrants(grants: Grant[]): Grant[] {
  const byTarget = new Map(grants.map((item) => [`${item.target.kind}:${item.target.name}`, item]));
  return [...byTarget.values()];
}
