/**
 * The account API under /account/v1: a web user manages their own account with their own Basic
 * credentials: change password, list and revoke refresh tokens (docker's identity tokens).
 */
import { AdminApiError } from "../http/api-errors";
import { jsonResponse } from "../http/headers";
import { password, readJson } from "./admin-input";
import type { AdminContext } from "./context";
import { changePassword, revokeRefreshToken } from "./users";

/** Web users only: service accounts and the bootstrap admin have no account to manage here. */
async function self(ctx: AdminContext) {
  const record = await ctx.identities.getUser(ctx.actor);
  if (!record) throw new AdminApiError(403, "forbidden", "only web users have an account to manage");
  return record;
}

export async function changeOwnPassword(ctx: AdminContext, request: Request): Promise<Response> {
  const record = await self(ctx);
  await changePassword(ctx, record, password(await readJson(request)), "user.password-change");
  return new Response(null, { status: 204 });
}

export async function listOwnRefreshTokens(ctx: AdminContext): Promise<Response> {
  const record = await self(ctx);
  return jsonResponse({ refreshTokens: await ctx.refreshTokens.listForUser(record.username) });
}

export async function revokeOwnRefreshToken(ctx: AdminContext, id: string): Promise<Response> {
  const record = await self(ctx);
  await revokeRefreshToken(ctx, record.username, id);
  return new Response(null, { status: 204 });
}
