/**
 * Routes of the admin API under /admin/v1 (each route's role, registry or namespace administrator, is in
 * admin/route-roles.ts) and the account API under /account/v1 (any authenticated caller) (README).
 */
import { Router, type IRequest, type RouterType } from "itty-router";
import * as account from "../admin/account";
import * as audit from "../admin/audit";
import type { AdminContext } from "../admin/context";
import * as grants from "../admin/grants";
import * as imports from "../admin/imports";
import * as namespaces from "../admin/namespaces";
import * as repositories from "../admin/repositories";
import * as serviceAccounts from "../admin/service-accounts";
import * as usage from "../admin/usage";
import * as users from "../admin/users";
import * as webhooks from "../admin/webhooks";
import { GRANT_FIELDS, GRANT_TARGET_FIELDS, bodyPresence, declareBodyFields, isJsonContentType } from "../admin/admin-input";
import { guardAdminRoutes, routeParam } from "../admin/route-roles";
import * as pullable from "../admin/pullable";
import { TRUST_POLICY_FIELDS } from "../auth/oidc-policy";
import type { PrincipalKind } from "../model/principal";
import { AdminApiError } from "../http/api-errors";

export const ADMIN_BASE = "/admin/v1";
export const ACCOUNT_BASE = "/account/v1";

const param = routeParam;

/** Route middleware: the fields this route's JSON body may hold (any other field → 400). */
const body =
  (...fields: readonly string[]) =>
  (request: IRequest, _ctx: AdminContext): undefined => {
    declareBodyFields(request as unknown as Request, fields);
  };

const UNSUPPORTED_BODY = () => new AdminApiError(415, "unsupported_media_type", "request bodies must be application/json");

/**
 * Refuses what a hostile web page can make a browser send to the admin and account APIs, before any
 * credential is checked: requests the browser marks cross-site or same-site (Fetch Metadata,
 * `Sec-Fetch-Site`), requests from another origin (`Origin`), and bodies that are not
 * `application/json` (an HTML form can send only form-encoded, multipart or text/plain bodies without a
 * CORS preflight, which this API never answers). Non-browser clients send none of these headers.
 *
 * Only a request with a body needs a Content-Type: a DELETE without one (as the CLI sends it) is not
 * refused. A browser always declares the length of a body it sends; a body of unknown length (a proxy may
 * forward a bodiless request with an empty stream) is checked once read, by `refuseNonJsonStream`.
 */
export function refuseBrowserForgery(request: Request, ownOrigin: string): void {
  const site = request.headers.get("Sec-Fetch-Site")?.toLowerCase();
  if (site === "cross-site" || site === "same-site") throw new AdminApiError(403, "forbidden", "cross-site requests are refused");
  const origin = request.headers.get("Origin");
  if (origin !== null && origin !== ownOrigin) throw new AdminApiError(403, "forbidden", "requests from another origin are refused");
  if (bodyPresence(request) === "some" && !isJsonContentType(request.headers.get("Content-Type"))) throw UNSUPPORTED_BODY();
}

/**
 * Route middleware, first on both routers: a body of unknown length that is not `application/json` is read
 * (it is never used: only JSON bodies are) and refused when it holds a byte; an empty one is no body.
 */
async function refuseNonJsonStream(request: IRequest): Promise<undefined> {
  const plain = request as unknown as Request;
  if (bodyPresence(plain) !== "unknown" || isJsonContentType(plain.headers.get("Content-Type"))) return undefined;
  const reader = plain.body!.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      // Empty: no body. Unlocked, so a route reading it finds it empty.
      reader.releaseLock();
      return undefined;
    }
    if (value.length > 0) {
      await reader.cancel();
      throw UNSUPPORTED_BODY();
    }
  }
}

/** Imports and mirrors (admin/imports.ts); before `/repositories/:name+`, which matches their paths too. */
function addUpstreamRoutes(router: RouterType<IRequest, [AdminContext]>): void {
  router
    .post("/repositories/:name+/imports", body(...imports.IMPORT_FIELDS), (r, ctx) => imports.createImport(ctx, r, param(r, "name")))
    .get("/repositories/:name+/imports", (r, ctx) => imports.getImport(ctx, param(r, "name")))
    .delete("/repositories/:name+/imports", (r, ctx) => imports.deleteImport(ctx, param(r, "name")))
    .put("/namespaces/:name/mirror", body(...imports.MIRROR_FIELDS), (r, ctx) => imports.setMirror(ctx, r, param(r, "name")))
    .get("/namespaces/:name/mirror", (r, ctx) => imports.getMirror(ctx, param(r, "name")))
    .delete("/namespaces/:name/mirror", (r, ctx) => imports.deleteMirror(ctx, param(r, "name")));
}

export function createAdminRouter() {
  const router = Router<IRequest, [AdminContext]>({ base: ADMIN_BASE });
  router.all("*", refuseNonJsonStream);
  addWebhookRoutes(router);
  addUpstreamRoutes(router);
  router
    .get("/audit", (r, ctx) => audit.queryAudit(ctx, new URL(r.url)))
    .get("/namespaces", (_r, ctx) => namespaces.listNamespaces(ctx))
    .post("/namespaces", body("name", "public"), (r, ctx) => namespaces.createNamespace(ctx, r))
    .get("/namespaces/:name", (r, ctx) => namespaces.getNamespace(ctx, param(r, "name")))
    .patch("/namespaces/:name", body("public"), (r, ctx) => namespaces.updateNamespace(ctx, r, param(r, "name")))
    .delete("/namespaces/:name", (r, ctx) => namespaces.deleteNamespace(ctx, param(r, "name"), new URL(r.url).searchParams.get("force") === "true"))
    // Lifecycle (admin/repositories.ts). Under /repositories the longer paths come first: `:name+` matches them too.
    .get("/namespaces/:name/immutable-tags", (r, ctx) => repositories.listNamespaceImmutableRules(ctx, param(r, "name")))
    .post("/namespaces/:name/immutable-tags", body("pattern"), (r, ctx) => repositories.changeNamespaceImmutableRule(ctx, r, param(r, "name"), true))
    .delete("/namespaces/:name/immutable-tags", body("pattern"), (r, ctx) => repositories.changeNamespaceImmutableRule(ctx, r, param(r, "name"), false))
    .get("/namespaces/:name/usage", (r, ctx) => usage.namespaceUsage(ctx, param(r, "name")))
    .put("/namespaces/:name/quota", body("bytes"), (r, ctx) => usage.setNamespaceQuota(ctx, r, param(r, "name")))
    .delete("/namespaces/:name/quota", (r, ctx) => usage.clearNamespaceQuota(ctx, param(r, "name")))
    .get("/repositories/:name+/usage", (r, ctx) => usage.repositoryUsage(ctx, param(r, "name")))
    .get("/namespaces/:name/untagged-retention", (r, ctx) => repositories.getNamespaceUntaggedRetention(ctx, param(r, "name")))
    .put("/namespaces/:name/untagged-retention", body("expireAfterSeconds"), (r, ctx) => repositories.setNamespaceUntaggedRetention(ctx, r, param(r, "name")))
    .delete("/namespaces/:name/untagged-retention", (r, ctx) => repositories.setNamespaceUntaggedRetention(ctx, null, param(r, "name")))
    .post("/repositories/:name+/untagged-retention/run", body("dryRun"), (r, ctx) => repositories.runUntaggedRetention(ctx, r, param(r, "name")))
    .get("/repositories/:name+/untagged-retention", (r, ctx) => repositories.getUntaggedRetention(ctx, param(r, "name")))
    .put("/repositories/:name+/untagged-retention", body("expireAfterSeconds"), (r, ctx) => repositories.setUntaggedRetention(ctx, r, param(r, "name")))
    .delete("/repositories/:name+/untagged-retention", (r, ctx) => repositories.setUntaggedRetention(ctx, null, param(r, "name")))
    .get("/repositories/:name+/tags/history", (r, ctx) => repositories.tagHistory(ctx, param(r, "name"), new URL(r.url)))
    .delete("/repositories/:name+/tags/history", body("before"), (r, ctx) => repositories.purgeTagHistory(ctx, r, param(r, "name")))
    .post("/repositories/:name+/tags/:tag/restore", body("digest", "time"), (r, ctx) => repositories.restoreTag(ctx, r, param(r, "name"), param(r, "tag")))
    .get("/repositories/:name+/retention", (r, ctx) => repositories.listRetentionRules(ctx, param(r, "name")))
    .post("/repositories/:name+/retention/run", body("dryRun"), (r, ctx) => repositories.runRetention(ctx, r, param(r, "name")))
    .post("/repositories/:name+/retention", body("pattern", "keepNewest", "expireAfterSeconds"), (r, ctx) => repositories.setRetentionRule(ctx, r, param(r, "name")))
    .delete("/repositories/:name+/retention", body("pattern"), (r, ctx) => repositories.removeRetentionRule(ctx, r, param(r, "name")))
    .get("/repositories/:name+/immutable-tags", (r, ctx) => repositories.listImmutableRules(ctx, param(r, "name")))
    .post("/repositories/:name+/immutable-tags", body("pattern"), (r, ctx) => repositories.addImmutableRule(ctx, r, param(r, "name")))
    .delete("/repositories/:name+/immutable-tags", body("pattern"), (r, ctx) => repositories.removeImmutableRule(ctx, r, param(r, "name")))
    .patch("/repositories/:name+", body("public"), (r, ctx) => namespaces.updateRepository(ctx, r, param(r, "name")))
    .delete("/repositories/:name+", (r, ctx) => repositories.deleteRepository(ctx, param(r, "name")))
    .post("/gc", body("dryRun", "gracePeriodSeconds", "repository"), (r, ctx) => repositories.collectGarbage(ctx, r))
    .get("/users", (_r, ctx) => users.listUsers(ctx))
    .post("/users", body("username", "password", "registryAdmin"), (r, ctx) => users.createUser(ctx, r))
    .get("/users/:name", (r, ctx) => users.getUser(ctx, param(r, "name")))
    .patch("/users/:name", body("disabled", "registryAdmin"), (r, ctx) => users.updateUser(ctx, r, param(r, "name")))
    .delete("/users/:name", (r, ctx) => users.deleteUser(ctx, param(r, "name")))
    .put("/users/:name/password", body("password"), (r, ctx) => users.setUserPassword(ctx, r, param(r, "name")))
    .get("/users/:name/refresh-tokens", (r, ctx) => users.listUserRefreshTokens(ctx, param(r, "name")))
    .delete("/users/:name/refresh-tokens/:id", (r, ctx) => users.revokeUserRefreshToken(ctx, param(r, "name"), param(r, "id")))
    .get("/service-accounts", (_r, ctx) => serviceAccounts.listServiceAccounts(ctx))
    .post("/service-accounts", body("namespace", "name", "description", "grants", "expiresAt", "kubernetesNamespace", "secretName"), (r, ctx) => serviceAccounts.createServiceAccount(ctx, r))
    .get("/service-accounts/:name", (r, ctx) => serviceAccounts.getServiceAccount(ctx, param(r, "name")))
    .patch("/service-accounts/:name", body("disabled", "description", "expiresAt"), (r, ctx) => serviceAccounts.updateServiceAccount(ctx, r, param(r, "name")))
    .post("/service-accounts/:name/rotate", body("overlapSeconds", "kubernetesNamespace", "secretName"), (r, ctx) => serviceAccounts.rotateServiceAccount(ctx, r, param(r, "name")))
    .delete("/service-accounts/:name", (r, ctx) => serviceAccounts.deleteServiceAccount(ctx, param(r, "name")))
    // Workload identity federation (SECURITY.md): trust policies, addressed by index or id.
    .get("/service-accounts/:name/trust-policies", (r, ctx) => serviceAccounts.listTrustPolicies(ctx, param(r, "name")))
    .put("/service-accounts/:name/trust-policies", body(...TRUST_POLICY_FIELDS), (r, ctx) => serviceAccounts.addTrustPolicy(ctx, r, param(r, "name")))
    .delete("/service-accounts/:name/trust-policies", (r, ctx) => serviceAccounts.deleteTrustPolicy(ctx, param(r, "name"), undefined))
    .get("/service-accounts/:name/trust-policies/:policy", (r, ctx) => serviceAccounts.getTrustPolicy(ctx, param(r, "name"), param(r, "policy")))
    .put("/service-accounts/:name/trust-policies/:policy", body(...TRUST_POLICY_FIELDS), (r, ctx) => serviceAccounts.replaceTrustPolicy(ctx, r, param(r, "name"), param(r, "policy")))
    .delete("/service-accounts/:name/trust-policies/:policy", (r, ctx) => serviceAccounts.deleteTrustPolicy(ctx, param(r, "name"), param(r, "policy")))
    .get("/:kind/:name/grants", (r, ctx) => grants.listGrants(ctx, principalKind(r), param(r, "name")))
    .put("/:kind/:name/grants", body(...GRANT_FIELDS), (r, ctx) => grants.putGrant(ctx, r, principalKind(r), param(r, "name")))
    .delete("/:kind/:name/grants", body(...GRANT_TARGET_FIELDS), (r, ctx) => grants.deleteGrant(ctx, r, principalKind(r), param(r, "name")))
    .all("*", () => {
      throw new AdminApiError(404, "not_found", "no such admin endpoint or method");
    });
  guardAdminRoutes(router.routes, ADMIN_BASE);
  return router;
}

/** A namespace's webhook subscriptions (admin/webhooks.ts). */
function addWebhookRoutes(router: RouterType<IRequest, [AdminContext]>): void {
  router
    .get("/namespaces/:name/webhooks", (r, ctx) => webhooks.listWebhooks(ctx, param(r, "name")))
    .post("/namespaces/:name/webhooks", body(...webhooks.WEBHOOK_FIELDS), (r, ctx) => webhooks.createWebhook(ctx, r, param(r, "name")))
    .get("/namespaces/:name/webhooks/:id", (r, ctx) => webhooks.getWebhook(ctx, param(r, "name"), param(r, "id")))
    .delete("/namespaces/:name/webhooks/:id", (r, ctx) => webhooks.deleteWebhook(ctx, param(r, "name"), param(r, "id")))
    .get("/namespaces/:name/webhooks/:id/deliveries", (r, ctx) => webhooks.webhookDeliveries(ctx, param(r, "name"), param(r, "id"), new URL(r.url)));
}

/** The account API: web users acting on their own account. */
export function createAccountRouter() {
  const router = Router<IRequest, [AdminContext]>({ base: ACCOUNT_BASE });
  router.all("*", refuseNonJsonStream);
  router
    .put("/password", body("password"), (r, ctx) => account.changeOwnPassword(ctx, r))
    // Storage use and quota, for administrators of the namespace (docs/lifecycle.md "Quotas and usage").
    .get("/namespaces/:name/usage", (r, ctx) => usage.namespaceUsageForAdmin(ctx, param(r, "name")))
    .get("/repositories/:name+/usage", (r, ctx) => usage.repositoryUsageForAdmin(ctx, param(r, "name")))
    // What the caller may pull, a page at a time (admin/pullable.ts); `/v2/_catalog` stays for registry administrators.
    .get("/repositories", (r, ctx) => pullable.listPullableRepositories(ctx, new URL(r.url)))
    .get("/repositories/:name+/tags", (r, ctx) => pullable.listPullableTags(ctx, param(r, "name"), new URL(r.url)))
    .get("/refresh-tokens", (_r, ctx) => account.listOwnRefreshTokens(ctx))
    .delete("/refresh-tokens/:id", (_r, ctx) => account.revokeOwnRefreshToken(ctx, param(_r, "id")))
    .all("*", () => {
      throw new AdminApiError(404, "not_found", "no such account endpoint or method");
    });
  return router;
}

/** The kind of principal a path names: `/users/…` or `/service-accounts/…`. */
const PRINCIPAL_KIND_SEGMENTS: Record<string, PrincipalKind> = { users: "user", "service-accounts": "service-account" };

function principalKind(request: IRequest): PrincipalKind {
  const kind = Object.hasOwn(PRINCIPAL_KIND_SEGMENTS, request.params.kind ?? "") ? PRINCIPAL_KIND_SEGMENTS[request.params.kind!] : undefined;
  if (kind) return kind;
  throw new AdminApiError(404, "not_found", "no such admin endpoint");
}
