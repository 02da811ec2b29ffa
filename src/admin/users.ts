/** Admin API: web users (username + password). */
import { BOOTSTRAP_ADMIN_USERNAME, isValidUsername } from "../auth/identity-grammar";
import { AdminApiError } from "../http/api-errors";
import { jsonResponse } from "../http/headers";
import type { UserRecord } from "../storage/identity-store";
import { badRequest, optionalBoolean, password, readJson, requiredString } from "./admin-input";
import type { AdminContext } from "./context";

/** What the API shows of a user: never the password hash. */
function view(record: UserRecord) {
  const { password: _hash, ...rest } = record;
  return rest;
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
  return jsonResponse(view(record), 201);
}

export async function listUsers(ctx: AdminContext): Promise<Response> {
  return jsonResponse({ users: (await ctx.identities.listUsers()).map(view) });
}

export async function getUser(ctx: AdminContext, username: string): Promise<Response> {
  return jsonResponse(view(await requireUser(ctx, username)));
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
  return jsonResponse(view(updated));
}

/** PUT `{"password":"…"}`: an administrator sets a user's password. */
export async function setUserPassword(ctx: AdminContext, request: Request, username: string): Promise<Response> {
  const record = await requireUser(ctx, username);
  const body = await readJson(request);
  await ctx.identities.putUser({ ...record, password: await ctx.passwords.hash(password(body)) });
  return new Response(null, { status: 204 });
}

export async function deleteUser(ctx: AdminContext, username: string): Promise<Response> {
  await requireUser(ctx, username);
  await ctx.identities.deleteUser(username);
  return new Response(null, { status: 204 });
}
