/**
 * The console's session API under /console/v1 (README "Console"): sign in with a web user's username and
 * password, read the current session (and its CSRF token, after a reload), sign out. The admin and account
 * APIs accept the session this sets (admin/context.ts `authenticate`).
 */
import { SESSION_LIFETIME_SECONDS } from "../auth/console-sessions";
import { AdminApiError } from "../http/api-errors";
import { sessionCookie } from "../http/cookies";
import { jsonResponse } from "../http/headers";
import { declareBodyFields, readJson, requiredString } from "./admin-input";
import { requireSameOriginWithCsrf, sessionOf, type AdminServices } from "./context";
import type { ConsoleSession } from "../auth/console-sessions";

export interface ConsoleContext {
  services: AdminServices;
  origin: string;
}

function view(session: ConsoleSession) {
  const { subject, principal } = session.identity;
  return { username: subject, registryAdmin: principal.registryAdmin, grants: principal.grants, csrfToken: session.csrfToken };
}

/** POST /console/v1/session `{"username","password"}`: 200 with the session (and its cookie), 401, or 429. */
export async function signIn(ctx: ConsoleContext, request: Request): Promise<Response> {
  // Login CSRF: a foreign page must not sign the browser in as someone else (the router already refused a
  // foreign Origin; a browser always sends one on a POST).
  if (request.headers.get("Origin") !== ctx.origin) throw new AdminApiError(403, "forbidden", "sign in from the console's own page");
  declareBodyFields(request, ["username", "password"]);
  const body = await readJson(request);
  const username = requiredString(body, "username", 200);
  const password = requiredString(body, "password", 1024);
  const result = await ctx.services.sessions.signIn(request, username, password);
  if (!result.ok && result.throttled) {
    throw new AdminApiError(429, "too_many_requests", "too many failed logins; retry later", { "Retry-After": String(result.retryAfterSeconds) });
  }
  if (!result.ok) throw new AdminApiError(401, "unauthorized", "invalid username or password (the console is for web users)");
  return jsonResponse(view(result.session), 200, { "Set-Cookie": sessionCookie(result.cookieValue, SESSION_LIFETIME_SECONDS) });
}

/** GET /console/v1/session: the signed-in user, or 401. */
export async function currentSession(ctx: ConsoleContext, request: Request): Promise<Response> {
  const session = await sessionOf(ctx.services, request);
  if (!session) throw new AdminApiError(401, "unauthorized", "not signed in");
  return jsonResponse(view(session));
}

/** DELETE /console/v1/session: ends the session (CSRF-checked like any state change) and clears the cookie. */
export async function signOut(ctx: ConsoleContext, request: Request): Promise<Response> {
  const session = await sessionOf(ctx.services, request);
  if (!session) throw new AdminApiError(401, "unauthorized", "not signed in");
  await requireSameOriginWithCsrf(ctx.services, request, session, ctx.origin);
  await ctx.services.sessions.signOut(session);
  return new Response(null, { status: 204, headers: { "Set-Cookie": sessionCookie("", 0), "Cache-Control": "no-store" } });
}
