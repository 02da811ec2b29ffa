/** Top-level routing: token endpoint, JWKS, signed blob downloads, /v2/ and the admin API. */
import { Router, type IRequest } from "itty-router";
import { serveBlobData } from "../registry/blob-download";
import type { Services } from "../services";
import { BLOB_DATA_PATH } from "../storage/blob-urls";
import { NO_ACCESS, adminAccessOf } from "../admin/admin-access";
import { authenticateBasic } from "../admin/context";
import { ACCOUNT_BASE, ADMIN_BASE, createAccountRouter, createAdminRouter, refuseBrowserForgery } from "./admin-router";
import { errorToResponse } from "./error-response";
import { jsonResponse } from "./headers";
import { TokenEndpointError } from "./oauth-errors";
import { AdminApiError } from "./api-errors";
import { RegistryError } from "./oci-errors";
import type { Background } from "../auth/token-endpoint";
import { createV2Router, withApiVersion, type RequestScope } from "./v2-router";

export const TOKEN_PATH = "/token";
export const JWKS_PATH = "/.well-known/jwks.json";

const v2 = createV2Router();
const admin = createAdminRouter();
const account = createAccountRouter();

const top = Router<IRequest, [RequestScope]>()
  .get(TOKEN_PATH, (request, { services, background }) => services.tokenEndpoint.get(request, background))
  .post(TOKEN_PATH, (request, { services, background }) => services.tokenEndpoint.post(request, background))
  .all(TOKEN_PATH, () => {
    throw new TokenEndpointError(405, "method_not_allowed", "use GET or POST", { Allow: "GET, POST" });
  })
  .get(JWKS_PATH, (_request, { services }) => jsonResponse(services.keys.jwks, 200, { "Cache-Control": "public, max-age=300" }))
  .all(`${BLOB_DATA_PATH}*`, async (request, { services }) => {
    if (request.method !== "GET" && request.method !== "HEAD") return jsonResponse({ error: "method not allowed" }, 405, { Allow: "GET, HEAD" });
    const key = await services.workerUrls.verify(new URL(request.url));
    if (!key) return jsonResponse({ error: "invalid or expired signed URL" }, 403);
    return serveBlobData(services.registry.objects, key, request);
  })
  .all(`${ADMIN_BASE}/*`, async (request, { services, origin }) => {
    // Before any credential check: a forged request must not even count as a failed login.
    refuseBrowserForgery(request as unknown as Request, origin);
    // Who may call which route is decided by the route's role (admin/route-roles.ts).
    const identity = await authenticateBasic(services.admin, request, "admin API");
    const access = await adminAccessOf(services.admin, identity);
    return admin.fetch(request, { ...services.admin, origin, actor: identity.subject, principal: identity.principal, access });
  })
  .all(`${ACCOUNT_BASE}/*`, async (request, { services, origin }) => {
    refuseBrowserForgery(request as unknown as Request, origin);
    const identity = await authenticateBasic(services.admin, request, "account API");
    // The account API administers nothing: its caller acts on its own account, or reads by its grants.
    return account.fetch(request, { ...services.admin, origin, actor: identity.subject, principal: identity.principal, access: NO_ACCESS });
  })
  .get("/", () => jsonResponse({ service: "edge-registry", api: "/v2/", token: TOKEN_PATH, jwks: JWKS_PATH }))
  .all("*", () => jsonResponse({ error: "not found" }, 404));

/** Longest URL and total header size accepted; real clients stay far below both. */
export const MAX_URL_LENGTH = 16 * 1024;
export const MAX_HEADER_BYTES = 32 * 1024;

function headerBytes(headers: Headers): number {
  let total = 0;
  for (const [name, value] of headers) total += name.length + value.length + 4;
  return total;
}

/** Handles one request; every error is turned into a response in one place. */
export async function handleRequest(request: Request, services: Services, background: Background): Promise<Response> {
  const url = new URL(request.url);
  const origin = services.config.publicUrl ?? url.origin;
  const scope: RequestScope = { services, origin, realm: `${origin}${TOKEN_PATH}`, background };
  const isV2 = url.pathname === "/v2" || url.pathname.startsWith("/v2/");
  let response: Response;
  try {
    if (request.url.length > MAX_URL_LENGTH) throw oversized(isV2, 414, "request URL too long");
    if (headerBytes(request.headers) > MAX_HEADER_BYTES) throw oversized(isV2, 431, "request headers too large");
    response = isV2 ? await v2.fetch(request, scope) : await top.fetch(request, scope);
  } catch (error) {
    response = errorToResponse(error, request);
  }
  return isV2 ? withApiVersion(response) : response;
}

function oversized(isV2: boolean, status: number, message: string): Error {
  return isV2 ? new RegistryError("UNSUPPORTED", { status, message }) : new AdminApiError(status, "invalid_request", message);
}

