/** Routes of the OCI distribution API under /v2/ (spec.md "Endpoints"), each authorized first. */
import { Router, type IRequest } from "itty-router";
import { CATALOG_ACCESS, requiredAccess, tokenAllows } from "../auth/registry-access";
import * as blobs from "../registry/blobs";
import type { RepositoryRequest } from "../registry/context";
import * as discovery from "../registry/discovery";
import * as manifests from "../registry/manifests";
import { requireRepositoryName } from "../registry/oci-names";
import * as uploads from "../registry/uploads";
import type { Background } from "../auth/token-endpoint";
import type { Services } from "../services";
import type { RecentWrites } from "../storage/recent-writes";
import type { ReadFreshness } from "../storage/repository-store";
import { API_VERSION, API_VERSION_HEADER, jsonResponse } from "../http/headers";
import { RegistryError } from "../http/oci-errors";

export interface RequestScope {
  services: Services;
  origin: string;
  realm: string;
  /** Work to finish after the response (ctx.waitUntil). */
  background: Background;
}

type RepositoryHandler = (req: RepositoryRequest, params: Record<string, string>, scope: RequestScope) => Promise<Response>;

/**
 * Validates the names (before anything else), authorizes the method's access on the target, then runs the
 * handler. A mount's pull on `from` is the handler's to ask (mayPull): without it the upload starts unmounted.
 */
function repositoryRoute(handler: RepositoryHandler) {
  return async (request: IRequest, scope: RequestScope) => {
    const url = new URL(request.url);
    const repository = requireRepositoryName(request.params.name ?? "");
    const from = request.method === "POST" ? url.searchParams.get("from") : null;
    if (from !== null) requireRepositoryName(from);
    const token = await scope.services.access.authorize(request, scope.realm, requiredAccess(request.method, repository));
    const mayPull = (name: string) => tokenAllows(token, { type: "repository", name, actions: ["pull"] });
    const recentWrites = scope.services.registry.recentWrites;
    const may = (action: string) => tokenAllows(token, { type: "repository", name: repository, actions: [action] });
    const freshness = await readFreshness(recentWrites, repository, may("push") || may("delete"));
    const response = await handler({ request, url, repository, origin: scope.origin, mayPull, freshness, actor: token.subject }, request.params, scope);
    // Before the answer: the client's next request in this location must find the marker.
    if (request.method !== "GET" && request.method !== "HEAD" && response.status < 300) {
      await recentWrites.mark(repository, request.method === "DELETE" && !isUploadPath(url.pathname) ? "removal" : "addition");
    }
    return response;
  };
}

/**
 * What this request's reads must see: a client sees its own writes at once, and so does anyone in a location
 * where the repository was written within KV's staleness window (storage/recent-writes.ts), although KV
 * promises no read-your-writes (platform.md §1). A token that may push or delete reads the ledger alone: a
 * pusher skips the upload of a blob it is told exists, so a stale KV hit for a blob removed anywhere would
 * fail its manifest.
 */
async function readFreshness(recentWrites: RecentWrites, repository: string, mayWrite: boolean): Promise<ReadFreshness> {
  if (mayWrite) return "own-writes";
  // One cache lookup on the steady-state path: a removal marker is only ever set beside a write marker.
  if (!(await recentWrites.has(repository))) return "edge";
  return (await recentWrites.hasRemovals(repository)) ? "own-writes" : "own-additions";
}

/** An upload session's path: deleting one cancels an upload and removes no content. */
const isUploadPath = (pathname: string) => pathname.includes("/blobs/uploads/");

const registry = (scope: RequestScope) => scope.services.registry;

export function createV2Router() {
  const router = Router<IRequest, [RequestScope]>({ base: "/v2" });
  router
    .get("/", async (request, scope) => {
      // Any valid token passes, even one with empty access (podman login's check).
      await scope.services.access.authenticate(request, scope.realm);
      return jsonResponse({});
    })
    .get("/_catalog", async (request, scope) => {
      await scope.services.access.authorize(request, scope.realm, [CATALOG_ACCESS]);
      return discovery.listCatalog(registry(scope), new URL(request.url));
    })
    .get("/:name+/tags/list", repositoryRoute((req, _p, s) => discovery.listTags(registry(s), req)))
    .get("/:name+/referrers/:digest", repositoryRoute((req, p, s) => discovery.listReferrers(registry(s), req, p.digest!)))
    .get("/:name+/manifests/:reference", repositoryRoute((req, p, s) => manifests.getManifest(registry(s), req, p.reference!)))
    .head("/:name+/manifests/:reference", repositoryRoute((req, p, s) => manifests.getManifest(registry(s), req, p.reference!)))
    .put("/:name+/manifests/:reference", repositoryRoute((req, p, s) => manifests.putManifest(registry(s), req, p.reference!)))
    .delete("/:name+/manifests/:reference", repositoryRoute((req, p, s) => manifests.deleteManifest(registry(s), req, p.reference!)))
    .post("/:name+/blobs/uploads/", repositoryRoute((req, _p, s) => uploads.startUpload(registry(s), req)))
    .get("/:name+/blobs/uploads/:uuid", repositoryRoute((req, p, s) => uploads.getUploadStatus(registry(s), req, p.uuid!)))
    .patch("/:name+/blobs/uploads/:uuid", repositoryRoute((req, p, s) => uploads.patchUpload(registry(s), req, p.uuid!)))
    .put("/:name+/blobs/uploads/:uuid", repositoryRoute((req, p, s) => uploads.putUpload(registry(s), req, p.uuid!)))
    .delete("/:name+/blobs/uploads/:uuid", repositoryRoute((req, p, s) => uploads.cancelUpload(registry(s), req, p.uuid!)))
    .get("/:name+/blobs/:digest", repositoryRoute((req, p, s) => blobs.getBlob(registry(s), req, p.digest!)))
    .head("/:name+/blobs/:digest", repositoryRoute((req, p, s) => blobs.headBlob(registry(s), req, p.digest!)))
    .delete("/:name+/blobs/:digest", repositoryRoute((req, p, s) => blobs.deleteBlob(registry(s), req, p.digest!)))
    .all("*", () => {
      throw new RegistryError("UNSUPPORTED", { status: 404, message: "no such endpoint or method" });
    });
  return router;
}

/** Every /v2/ answer, errors included, names the API version (spec.md end-1). */
export function withApiVersion(response: Response): Response {
  const headers = new Headers(response.headers);
  headers.set(API_VERSION_HEADER, API_VERSION);
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}
