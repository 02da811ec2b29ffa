/** Routes of the admin API under /admin/v1 (registry administrators) and the account API under /account/v1 (README). */
import { Router, type IRequest } from "itty-router";
import * as account from "../admin/account";
import * as audit from "../admin/audit";
import type { AdminContext } from "../admin/context";
import * as grants from "../admin/grants";
import * as namespaces from "../admin/namespaces";
import * as serviceAccounts from "../admin/service-accounts";
import * as users from "../admin/users";
import { AdminApiError } from "./api-errors";

export const ADMIN_BASE = "/admin/v1";
export const ACCOUNT_BASE = "/account/v1";

/** Path parameters arrive percent-encoded (`12345678%7Cci` for a service account). */
function param(request: IRequest, name: string): string {
  try {
    return decodeURIComponent(request.params[name] ?? "");
  } catch {
    throw new AdminApiError(400, "invalid_request", `malformed ${name}`);
  }
}

export function createAdminRouter() {
  const router = Router<IRequest, [AdminContext]>({ base: ADMIN_BASE });
  router
    .get("/audit", (r, ctx) => audit.queryAudit(ctx, new URL(r.url)))
    .get("/namespaces", (_r, ctx) => namespaces.listNamespaces(ctx))
    .post("/namespaces", (r, ctx) => namespaces.createNamespace(ctx, r))
    .get("/namespaces/:name", (r, ctx) => namespaces.getNamespace(ctx, param(r, "name")))
    .patch("/namespaces/:name", (r, ctx) => namespaces.updateNamespace(ctx, r, param(r, "name")))
    .delete("/namespaces/:name", (r, ctx) => namespaces.deleteNamespace(ctx, param(r, "name")))
    .patch("/repositories/:name+", (r, ctx) => namespaces.updateRepository(ctx, r, param(r, "name")))
    .get("/users", (_r, ctx) => users.listUsers(ctx))
    .post("/users", (r, ctx) => users.createUser(ctx, r))
    .get("/users/:name", (r, ctx) => users.getUser(ctx, param(r, "name")))
    .patch("/users/:name", (r, ctx) => users.updateUser(ctx, r, param(r, "name")))
    .delete("/users/:name", (r, ctx) => users.deleteUser(ctx, param(r, "name")))
    .put("/users/:name/password", (r, ctx) => users.setUserPassword(ctx, r, param(r, "name")))
    .get("/users/:name/refresh-tokens", (r, ctx) => users.listUserRefreshTokens(ctx, param(r, "name")))
    .delete("/users/:name/refresh-tokens/:id", (r, ctx) => users.revokeUserRefreshToken(ctx, param(r, "name"), param(r, "id")))
    .get("/service-accounts", (_r, ctx) => serviceAccounts.listServiceAccounts(ctx))
    .post("/service-accounts", (r, ctx) => serviceAccounts.createServiceAccount(ctx, r))
    .get("/service-accounts/:name", (r, ctx) => serviceAccounts.getServiceAccount(ctx, param(r, "name")))
    .patch("/service-accounts/:name", (r, ctx) => serviceAccounts.updateServiceAccount(ctx, r, param(r, "name")))
    .post("/service-accounts/:name/rotate", (r, ctx) => serviceAccounts.rotateServiceAccount(ctx, r, param(r, "name")))
    .delete("/service-accounts/:name", (r, ctx) => serviceAccounts.deleteServiceAccount(ctx, param(r, "name")))
    .get("/:kind/:name/grants", (r, ctx) => grants.listGrants(ctx, principalKind(r), param(r, "name")))
    .put("/:kind/:name/grants", (r, ctx) => grants.putGrant(ctx, r, principalKind(r), param(r, "name")))
    .delete("/:kind/:name/grants", (r, ctx) => grants.deleteGrant(ctx, r, principalKind(r), param(r, "name")))
    .all("*", () => {
      throw new AdminApiError(404, "not_found", "no such admin endpoint or method");
    });
  return router;
}

/** The account API: web users acting on their own account. */
export function createAccountRouter() {
  const router = Router<IRequest, [AdminContext]>({ base: ACCOUNT_BASE });
  router
    .put("/password", (r, ctx) => account.changeOwnPassword(ctx, r))
    .get("/refresh-tokens", (_r, ctx) => account.listOwnRefreshTokens(ctx))
    .delete("/refresh-tokens/:id", (_r, ctx) => account.revokeOwnRefreshToken(ctx, param(_r, "id")))
    .all("*", () => {
      throw new AdminApiError(404, "not_found", "no such account endpoint or method");
    });
  return router;
}

function principalKind(request: IRequest): grants.PrincipalKind {
  const kind = request.params.kind;
  if (kind === "users" || kind === "service-accounts") return kind;
  throw new AdminApiError(404, "not_found", "no such admin endpoint");
}
