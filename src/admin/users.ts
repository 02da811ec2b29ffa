/** Admin API: web users (username + password). */
import { BOOTSTRAP_ADMIN_USERNAME, isValidUsername } from "../auth/identity-grammar";
import { AdminApiError } from "../http/api-errors";
import { jsonResponse } from "../http/headers";
import type { UserRecord } from "../storage/identity-store";
import { badRequest, optionalBoolean, password, readJson, requiredString } from "./admin-input";
import type { AdminContext } from "./context";
import { changedFields } from "./service-accounts";

/** What the API shows of a user: never the password hash. */
function view(record: UserRecord, lastUsedAt: string | null = null) {
  const { password: _hash, ...rest } = record;
  return { ...rest, lastUsedAt };
}

export async function requireUser(ctx: AdminContext, username: string): Promise<UserRecord> {
  const record = isValidUsername(username) ? await ctx.identities.getUser(username) : null;
  if (!record) throw new AdminApiError(404, "not_found", `user ${JSON.stringify(username)} does not exist`);
  return record;
}

export async function createUser(ctx: AdminContext, request: Request): Promise<Response> {
  const body = await readJson(request);
  const username = requiredString(body, "username", 64);
  if (!isValidUsername(username) || username === BOOTSTRAP_ADMIN_USERNAME) {
    throw badRequest(`username must match [a-z0-9][a-z0-9._-]*[a-z0-9] (at most 64) and not be "${BOOTSTRAP_ADMIN_USERNAME}"`);
  }
  if (await ctx.identities.getUser(username)) throw new AdminApiError(409, "conflict", `user ${username} exists`);
  const record: UserRecord = {
    username,
    password: await ctx.passwords.hash(password(body)),
    grants: [],
    registryAdmin: optionalBoolean(body, "registryAdmin") ?? false,
    disabled: false,
    createdAt: new Date().toISOString(),
  };
  await ctx.identities.putUser(record);
  await ctx.audit.record({ actor: ctx.actor, action: "user.create", target: username, detail: record.registryAdmin ? "registry administrator" : undefined });
  return jsonResponse(view(record), 201);
}

export async function listUsers(ctx: AdminContext): Promise<Response> {
  return jsonResponse({ users: (await ctx.identities.listUsers()).map((record) => view(record)) });
}

export async function getUser(ctx: AdminContext, username: string): Promise<Response> {
  const record = await requireUser(ctx, username);
  return jsonResponse(view(record, await ctx.identities.getLastUsed(`user/${username}`)));
}

/** PATCH `{"disabled":true}` / `{"registryAdmin":false}`. */
export async function updateUser(ctx: AdminContext, request: Request, username: string): Promise<Response> {
  const record = await requireUser(ctx, username);
  const body = await readJson(request);
  const updated: UserRecord = {
    ...record,
    disabled: optionalBoolean(body, "disabled") ?? record.disabled,
    registryAdmin: optionalBoolean(body, "registryAdmin") ?? record.registryAdmin,
  };
  await ctx.identities.putUser(updated);
  await ctx.audit.record({ actor: ctx.actor, action: "user.update", target: username, detail: changedFields(body) });
  return jsonResponse(view(updated));
}

/**
 * PUT `{"password":"…"}`: an administrator resets a user's password. The user's refresh tokens are
 * revoked with it, so a leaked password stops working everywhere.
 */
export async function setUserPassword(ctx: AdminContext, request: Request, username: string): Promise<Response> {
  const record = await requireUser(ctx, username);
  await changePassword(ctx, record, password(await readJson(request)), "user.password-reset");
  return new Response(null, { status: 204 });
}

/** Sets a password, revokes the user's refresh tokens, and audits it (admin reset or self-service). */
export async function changePassword(ctx: AdminContext, record: UserRecord, newPassword: string, action: string): Promise<void> {
  await ctx.identities.putUser({ ...record, password: await ctx.passwords.hash(newPassword) });
  const revoked = await ctx.refreshTokens.revokeAll(record.username);
  await ctx.audit.record({ actor: ctx.actor, action, target: record.username, detail: `${revoked} refresh tokens revoked` });
}

export async function deleteUser(ctx: AdminContext, username: string): Promise<Response> {
  await requireUser(ctx, username);
  await ctx.refreshTokens.revokeAll(username);
  await ctx.identities.deleteUser(username);
  await ctx.audit.record({ actor: ctx.actor, action: "user.delete", target: username });
  return new Response(null, { status: 204 });
}

/** GET …/users/<name>/refresh-tokens: the user's identity tokens (never the secrets). */
export async function listUserRefreshTokens(ctx: AdminContext, username: string): Promise<Response> {
  await requireUser(ctx, username);
  return jsonResponse({ refreshTokens: await ctx.refreshTokens.listForUser(username) });
}

/** DELETE …/users/<name>/refresh-tokens/<id>. */
export async function revokeUserRefreshToken(ctx: AdminContext, username: string, id: string): Promise<Response> {
  if (!(await ctx.refreshTokens.revoke(username, id))) throw new AdminApiError(404, "not_found", "no such refresh token");
  await ctx.audit.record({ actor: ctx.actor, action: "refresh-token.revoke", target: `${username}/${id}` });
  return new Response(null, { status: 204 });
}
