/**
 * The role each admin API route needs (README "Roles"), in one table, enforced by one guard that
 * `guardAdminRoutes` puts in front of every route's handler. A route missing from the table (or an entry no
 * route uses) stops the router from being built, so no route is ever served without a decided role.
 */
import type { IRequest, RouteEntry } from "itty-router";
import { namespaceOf } from "../model/grants";
import { AdminApiError } from "../http/api-errors";
import {
  NEEDS_REGISTRY_ADMIN,
  NEEDS_SOME_ADMIN,
  administersAny,
  requireAdministers,
} from "./admin-access";
import { grant, readJson, requiredString } from "./admin-input";
import type { AdminContext } from "./context";
import { requireServiceAccount } from "./service-accounts";

/** The namespace a route acts on, from its path or body. */
type NamespaceOf = (request: IRequest, ctx: AdminContext) => string | Promise<string>;

export type RouteRole =
  /** Registry administrators only. */
  | { need: "registry-admin" }
  /** Registry administrators, and administrators of the namespace the route acts on. */
  | { need: "namespace-admin"; of: NamespaceOf }
  /** Registry administrators, and administrators of any namespace: the handler answers only about theirs (lists, audit). */
  | { need: "some-admin" }
  /** Any authenticated caller (the body check and the 404 for unknown paths). */
  | { need: "authenticated" }
  /** Grant routes: the role depends on whose grants they are. */
  | { need: "by-holder"; users: RouteRole; "service-accounts": RouteRole };

/** Path parameters arrive percent-encoded (`12345678%7Cci` for a service account). */
export function routeParam(request: IRequest, name: string): string {
  try {
    return decodeURIComponent(request.params[name] ?? "");
  } catch {
    throw new AdminApiError(400, "invalid_request", `malformed ${name}`);
  }
}

const REGISTRY_ADMIN: RouteRole = { need: "registry-admin" };
const SOME_ADMIN: RouteRole = { need: "some-admin" };
const AUTHENTICATED: RouteRole = { need: "authenticated" };
const namespaceAdmin = (of: NamespaceOf): RouteRole => ({ need: "namespace-admin", of });

/** `/namespaces/<name>…` */
const NAMESPACE = namespaceAdmin((request) => routeParam(request, "name"));
/** `/repositories/<namespace>/<path>…` */
const REPOSITORY = namespaceAdmin((request) => namespaceOf(routeParam(request, "name")));
/** `/service-accounts/<orgId|name>…`: the namespace the account belongs to (404 when there is no such account). */
const SERVICE_ACCOUNT = namespaceAdmin(async (request, ctx) => (await requireServiceAccount(ctx, routeParam(request, "name"))).namespace);
/** POST /service-accounts: the `namespace` of the body. */
const NAMESPACE_IN_BODY = namespaceAdmin(async (request) => requiredString(await readJson(request as unknown as Request), "namespace", 64));
/** A user's grant: the namespace of the grant's target, in the body. */
const GRANT_TARGET_IN_BODY = (withRole: boolean) =>
  namespaceAdmin(async (request) => namespaceOf(grant(await readJson(request as unknown as Request), withRole).target.name));

/** `METHOD path` (as declared in routes/admin-router.ts, without the base) → who may call it. */
export const ROUTE_ROLES: Readonly<Record<string, RouteRole>> = {
  "ALL *": AUTHENTICATED,
  // Audit: namespace administrators read their namespace's events (`namespace=`; admin/audit.ts).
  "GET /audit": SOME_ADMIN,
  // Namespaces: created and deleted by registry administrators; shown and made public by their administrators.
  "GET /namespaces": SOME_ADMIN,
  "POST /namespaces": REGISTRY_ADMIN,
  "GET /namespaces/:name": NAMESPACE,
  "PATCH /namespaces/:name": NAMESPACE,
  "DELETE /namespaces/:name": REGISTRY_ADMIN,
  // Lifecycle settings of the namespace and its repositories (docs/lifecycle.md); the quota is the operator's.
  "GET /namespaces/:name/immutable-tags": NAMESPACE,
  "POST /namespaces/:name/immutable-tags": NAMESPACE,
  "DELETE /namespaces/:name/immutable-tags": NAMESPACE,
  "GET /namespaces/:name/usage": NAMESPACE,
  "PUT /namespaces/:name/quota": REGISTRY_ADMIN,
  "DELETE /namespaces/:name/quota": REGISTRY_ADMIN,
  "GET /repositories/:name+/usage": REPOSITORY,
  "GET /namespaces/:name/untagged-retention": NAMESPACE,
  "PUT /namespaces/:name/untagged-retention": NAMESPACE,
  "DELETE /namespaces/:name/untagged-retention": NAMESPACE,
  "POST /repositories/:name+/untagged-retention/run": REPOSITORY,
  "GET /repositories/:name+/untagged-retention": REPOSITORY,
  "PUT /repositories/:name+/untagged-retention": REPOSITORY,
  "DELETE /repositories/:name+/untagged-retention": REPOSITORY,
  "GET /repositories/:name+/tags/history": REPOSITORY,
  "DELETE /repositories/:name+/tags/history": REPOSITORY,
  "POST /repositories/:name+/tags/:tag/restore": REPOSITORY,
  "GET /repositories/:name+/retention": REPOSITORY,
  "POST /repositories/:name+/retention/run": REPOSITORY,
  "POST /repositories/:name+/retention": REPOSITORY,
  "DELETE /repositories/:name+/retention": REPOSITORY,
  "GET /repositories/:name+/immutable-tags": REPOSITORY,
  "POST /repositories/:name+/immutable-tags": REPOSITORY,
  "DELETE /repositories/:name+/immutable-tags": REPOSITORY,
  "PATCH /repositories/:name+": REPOSITORY,
  "DELETE /repositories/:name+": REPOSITORY,
  // Notifications, imports and the mirror: settings of the namespace or repository (README "Notifications", "Import", "Mirror").
  "GET /namespaces/:name/webhooks": NAMESPACE,
  "POST /namespaces/:name/webhooks": NAMESPACE,
  "GET /namespaces/:name/webhooks/:id": NAMESPACE,
  "DELETE /namespaces/:name/webhooks/:id": NAMESPACE,
  "GET /namespaces/:name/webhooks/:id/deliveries": NAMESPACE,
  "POST /repositories/:name+/imports": REPOSITORY,
  "GET /repositories/:name+/imports": REPOSITORY,
  "DELETE /repositories/:name+/imports": REPOSITORY,
  "PUT /namespaces/:name/mirror": NAMESPACE,
  "GET /namespaces/:name/mirror": NAMESPACE,
  "DELETE /namespaces/:name/mirror": NAMESPACE,
  // Garbage collection works on blobs every namespace shares.
  "POST /gc": REGISTRY_ADMIN,
  // Web users span namespaces: registry administrators manage them (namespace administrators grant them roles, below).
  "GET /users": REGISTRY_ADMIN,
  "POST /users": REGISTRY_ADMIN,
  "GET /users/:name": REGISTRY_ADMIN,
  "PATCH /users/:name": REGISTRY_ADMIN,
  "DELETE /users/:name": REGISTRY_ADMIN,
  "PUT /users/:name/password": REGISTRY_ADMIN,
  "GET /users/:name/refresh-tokens": REGISTRY_ADMIN,
  "DELETE /users/:name/refresh-tokens/:id": REGISTRY_ADMIN,
  // Service accounts belong to one namespace; its administrators manage them.
  "GET /service-accounts": SOME_ADMIN,
  "POST /service-accounts": NAMESPACE_IN_BODY,
  "GET /service-accounts/:name": SERVICE_ACCOUNT,
  "PATCH /service-accounts/:name": SERVICE_ACCOUNT,
  "POST /service-accounts/:name/rotate": SERVICE_ACCOUNT,
  "DELETE /service-accounts/:name": SERVICE_ACCOUNT,
  "GET /service-accounts/:name/trust-policies": SERVICE_ACCOUNT,
  "PUT /service-accounts/:name/trust-policies": SERVICE_ACCOUNT,
  "DELETE /service-accounts/:name/trust-policies": SERVICE_ACCOUNT,
  "GET /service-accounts/:name/trust-policies/:policy": SERVICE_ACCOUNT,
  "PUT /service-accounts/:name/trust-policies/:policy": SERVICE_ACCOUNT,
  "DELETE /service-accounts/:name/trust-policies/:policy": SERVICE_ACCOUNT,
  // Grants: a user's within the namespaces the caller administers; a service account's by its namespace's
  // administrators (and only inside that namespace: admin/grants.ts).
  "GET /:kind/:name/grants": { need: "by-holder", users: SOME_ADMIN, "service-accounts": SERVICE_ACCOUNT },
  "PUT /:kind/:name/grants": { need: "by-holder", users: GRANT_TARGET_IN_BODY(true), "service-accounts": SERVICE_ACCOUNT },
  "DELETE /:kind/:name/grants": { need: "by-holder", users: GRANT_TARGET_IN_BODY(false), "service-accounts": SERVICE_ACCOUNT },
};

/** Refuses (403, naming what is missing) a caller the route's role does not admit. */
async function enforce(role: RouteRole, request: IRequest, ctx: AdminContext): Promise<void> {
  const access = ctx.access;
  switch (role.need) {
    case "authenticated":
      return;
    case "registry-admin":
      if (!access.registryAdmin) throw NEEDS_REGISTRY_ADMIN();
      return;
    case "some-admin":
      if (!administersAny(access)) throw NEEDS_SOME_ADMIN();
      return;
    case "namespace-admin":
      // Registry administrators need no lookup; for anyone else, the caller with no namespace at all is
      // refused before the route's body or records are read.
      if (access.registryAdmin) return;
      if (!administersAny(access)) throw NEEDS_SOME_ADMIN();
      requireAdministers(access, await role.of(request, ctx));
      return;
    case "by-holder": {
      const kind = request.params.kind;
      if (kind !== "users" && kind !== "service-accounts") throw new AdminApiError(404, "not_found", "no such admin endpoint");
      return enforce(role[kind], request, ctx);
    }
  }
}

/**
 * Puts the role check in front of each route's handler (after its body declaration, so a namespace named
 * in the body can be read). Throws at construction for a route without a role or a role without a route.
 */
export function guardAdminRoutes(routes: RouteEntry<IRequest, [AdminContext]>[], base: string): void {
  const unused = new Set(Object.keys(ROUTE_ROLES));
  for (const [method, , handlers, path] of routes) {
    const key = `${method} ${(path ?? "").slice(base.length) || "/"}`;
    const role = ROUTE_ROLES[key];
    if (!role) throw new Error(`admin route ${key} has no entry in ROUTE_ROLES`);
    unused.delete(key);
    const guard = async (request: IRequest, ctx: AdminContext): Promise<undefined> => {
      await enforce(role, request, ctx);
      return undefined;
    };
    handlers.splice(Math.max(0, handlers.length - 1), 0, guard);
  }
  if (unused.size > 0) throw new Error(`ROUTE_ROLES names routes that do not exist: ${[...unused].join(", ")}`);
}
