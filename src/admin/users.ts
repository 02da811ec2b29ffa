/** Admin API: web users (username + password). */
import { BOOTSTRAP_ADMIN_USERNAME, isValidUsername } from "../auth/identity-grammar";
import { AdminApiError } from "../http/api-errors";
import type { UserView } from "../http/admin-api-types";
import { jsonResponse } from "../http/headers";
import { principalIds } from "../model/principal";
import type { UserRecord } from "../storage/identity-store";
import { isValidRefreshTokenId } from "../storage/refresh-token-store";
import { badRequest, optionalBoolean, password, readJson, requiredString } from "./admin-input";
import { auditedChange, type AdminContext } from "./context";

/** What the API shows of a user: never the password hash (nor the ledger's refresh epoch). */
function view(record: UserRecord, lastUsedAt: string | null = null): UserView {
  const { password: _hash, refreshEpoch: _epoch, ...rest } = record;
  return { ...rest, lastUsedAt };
}

export async function requireUser(ctx: AdminContext, username: string): Promise<UserRecord> {
  const record = isValidUsername(username) ? await ctx.identities.getUser(username) : null;
  if (!record) throw new AdminApiError(404, "not_found", `user ${JSON.stringify(username.slice(0, 64))} does not exist`);
  return record;
}

export async function createUser(ctx: AdminContext, request: Request): Promise<Response> {
  const body = await readJson(request);
  const username = requiredString(body, "username", 64);
  if (!isValidUsername(username) || username === BOOTSTRAP_ADMIN_USERNAME) {
    throw badRequest(`username must match [a-z0-9][a-z0-9._-]*[a-z0-9] (at most 64) and not be "${BOOTSTRAP_ADMIN_USERNAME}"`);
  }
  const registryAdmin = optionalBoolean(body, "registryAdmin") ?? false;
  const newPassword = password(body);
  if (await ctx.identities.getUser(username)) throw new AdminApiError(409, "conflict", `user ${username} exists`);
  const record: UserRecord = {
    username,
    password: await ctx.passwords.hash(newPassword),
    grants: [],
    registryAdmin,
    disabled: false,
    createdAt: new Date().toISOString(),
  };
  await auditedChange(ctx, { action: "user.create", target: username, detail: `registryAdmin=${registryAdmin}` }, () => ctx.identities.putUser(record));
  return jsonResponse(view(record), 201);
}

export async function listUsers(ctx: AdminContext): Promise<Response> {
  return jsonResponse({ users: (await ctx.identities.listUsers()).map((record) => view(record)) });
}

export async function getUser(ctx: AdminContext, username: string): Promise<Response> {
  const record = await requireUser(ctx, username);
  return jsonResponse(view(record, await ctx.identities.getLastUsed(principalIds.user(username))));
}

/**
 * PATCH `{"disabled":true}` / `{"registryAdmin":false}`. Disabling ends the user's refresh tokens for good:
 * the identity ledger draws a new refresh epoch and deletes them in the same transaction as the disable.
 */
export async function updateUser(ctx: AdminContext, request: Request, username: string): Promise<Response> {
  const record = await requireUser(ctx, username);
  const body = await readJson(request);
  const disabled = optionalBoolean(body, "disabled");
  const registryAdmin = optionalBoolean(body, "registryAdmin");
  const updated: UserRecord = { ...record, disabled: disabled ?? record.disabled, registryAdmin: registryAdmin ?? record.registryAdmin };
  // The detail is built from the validated values only, never from the body's keys.
  const detail = [disabled !== undefined && `disabled=${disabled}`, registryAdmin !== undefined && `registryAdmin=${registryAdmin}`].filter(Boolean).join(", ");
  await auditedChange(ctx, { action: "user.update", target: username, detail: detail || "no change" }, () => ctx.identities.putUser(updated));
  return jsonResponse(view(updated));
}

/**
 * PUT `{"password":"…"}`: an administrator resets a user's password. The user's refresh tokens are
 * ended with it (in the ledger transaction that sets it), so a leaked password stops working everywhere.
 */
export async function setUserPassword(ctx: AdminContext, request: Request, username: string): Promise<Response> {
  const record = await requireUser(ctx, username);
  await changePassword(ctx, record, password(await readJson(request)), "user.password-reset");
  return new Response(null, { status: 204 });
}

/**
 * Sets a password, audited first (admin reset or self-service). The identity ledger ends the user's refresh
 * tokens (a new epoch, the tokens deleted) in the same transaction as the new password.
 */
export async function changePassword(ctx: AdminContext, record: UserRecord, newPassword: string, action: "user.password-reset" | "user.password-change"): Promise<void> {
  const hash = await ctx.passwords.hash(newPassword);
  await auditedChange(ctx, { action, target: record.username, detail: "refresh tokens ended" }, () => ctx.identities.putUser({ ...record, password: hash }));
}

export async function deleteUser(ctx: AdminContext, username: string): Promise<Response> {
  await requireUser(ctx, username);
  // The ledger deletes the user's refresh tokens with the user; a new user of the same name gets a new epoch.
  await auditedChange(ctx, { action: "user.delete", target: username }, () => ctx.identities.deleteUser(username));
  return new Response(null, { status: 204 });
}

/** GET …/users/<name>/refresh-tokens: the user's identity tokens (never the secrets). */
export async function listUserRefreshTokens(ctx: AdminContext, username: string): Promise<Response> {
  await requireUser(ctx, username);
  return jsonResponse({ refreshTokens: await ctx.refreshTokens.listForUser(username) });
}

/** DELETE …/users/<name>/refresh-tokens/<id>. */
export async function revokeUserRefreshToken(ctx: AdminContext, username: string, id: string): Promise<Response> {
  await revokeRefreshToken(ctx, username, id);
  return new Response(null, { status: 204 });
}

/** Revokes one of a user's refresh tokens, audited first; 404 where the user holds no such token. */
export async function revokeRefreshToken(ctx: AdminContext, username: string, id: string): Promise<void> {
  // Read from the ledger (consistent): a token issued a moment ago is found, one revoked meanwhile is not.
  const record = isValidUsername(username) && isValidRefreshTokenId(id) ? await ctx.refreshTokens.get(id) : null;
  if (!record || record.username !== username) throw new AdminApiError(404, "not_found", "no such refresh token");
  const revoked = await auditedChange(ctx, { action: "refresh-token.revoke", target: `${username}/${id}` }, () => ctx.refreshTokens.revoke(username, id));
  // Revoked by a racing request between the read and the revocation: gone either way.
  if (!revoked) throw new AdminApiError(404, "not_found", "no such refresh token");
}
