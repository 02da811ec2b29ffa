/** Top-level routing: token endpoint, JWKS, signed blob downloads, /v2/ and the admin API. */
import { Router, type IRequest } from "itty-router";
import { serveBlobData } from "../registry/blob-download";
import type { Services } from "../services";
import { NO_ACCESS, adminAccessOf } from "../admin/admin-access";
import { authenticate } from "../admin/context";
import { CONSOLE_BASE, createConsoleRouter } from "./console-router";
import { ACCOUNT_BASE, ADMIN_BASE, createAccountRouter, createAdminRouter, refuseBrowserForgery } from "./admin-router";
import { RequestLimitError, errorToResponse, surfaceOf } from "./error-response";
import { jsonResponse } from "../http/headers";
import { BLOB_DATA_PATH, JWKS_PATH, TOKEN_PATH } from "../http/paths";
import { TokenEndpointError } from "../http/oauth-errors";
import { AdminApiError } from "../http/api-errors";
import type { Background } from "../auth/token-endpoint";
import { createV2Router, withApiVersion, type RequestScope } from "./v2-router";

const v2 = createV2Router();
const admin = createAdminRouter();
const account = createAccountRouter();
const consoleApi = createConsoleRouter();

const top = Router<IRequest, [RequestScope]>()
  .get(TOKEN_PATH, (request, { services, background }) => services.tokenEndpoint.get(request, background))
  .post(TOKEN_PATH, (request, { services, background }) => services.tokenEndpoint.post(request, background))
  .all(TOKEN_PATH, () => {
    throw new TokenEndpointError(405, "method_not_allowed", "use GET or POST", { Allow: "GET, POST" });
  })
  .get(JWKS_PATH, (_request, { services }) => jsonResponse(services.keys.jwks, 200, { "Cache-Control": "public, max-age=300" }))
  .all(`${BLOB_DATA_PATH}*`, async (request, { services }) => {
    if (request.method !== "GET" && request.method !== "HEAD") throw new AdminApiError(405, "method_not_allowed", "use GET or HEAD", { Allow: "GET, HEAD" });
    const key = await services.workerUrls.verify(new URL(request.url));
    if (!key) throw new AdminApiError(403, "forbidden", "invalid or expired signed URL");
    return serveBlobData(services.registry.objects, key, request);
  })
  .all(`${ADMIN_BASE}/*`, async (request, { services, origin }) => {
    // Before any credential check: a forged request must not even count as a failed login.
    refuseBrowserForgery(request as unknown as Request, origin);
    // Who may call which route is decided by the route's role (admin/route-roles.ts).
    const identity = await authenticate(services.admin, request, "admin API", origin);
    const access = await adminAccessOf(services.admin, identity);
    return admin.fetch(request, { ...services.admin, origin, actor: identity.subject, principal: identity.principal, access });
  })
  .all(`${ACCOUNT_BASE}/*`, async (request, { services, origin }) => {
    refuseBrowserForgery(request as unknown as Request, origin);
    const identity = await authenticate(services.admin, request, "account API", origin);
    // The account API administers nothing: its caller acts on its own account, or reads by its grants.
    return account.fetch(request, { ...services.admin, origin, actor: identity.subject, principal: identity.principal, access: NO_ACCESS });
  })
  .all(`${CONSOLE_BASE}/*`, (request, { services, origin }) => {
    refuseBrowserForgery(request as unknown as Request, origin);
    return consoleApi.fetch(request, { services: services.admin, origin });
  })
  .get("/", () => jsonResponse({ service: "edge-registry", api: "/v2/", token: TOKEN_PATH, jwks: JWKS_PATH, console: "/console/" }))
  .all("*", () => {
    throw new AdminApiError(404, "not_found", "not found");
  });

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
  const surface = surfaceOf(url.pathname);
  const isV2 = surface === "oci";
  let response: Response;
  try {
    if (request.url.length > MAX_URL_LENGTH) throw new RequestLimitError(414, "request URL too long");
    if (headerBytes(request.headers) > MAX_HEADER_BYTES) throw new RequestLimitError(431, "request headers too large");
    response = isV2 ? await v2.fetch(request, scope) : await top.fetch(request, scope);
  } catch (error) {
    response = errorToResponse(error, request, surface);
  }
  return isV2 ? withApiVersion(response) : response;
}

