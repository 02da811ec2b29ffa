/**
 * The one place errors become responses, in the format of the surface the request reached: chosen by the
 * route, never by the error's origin. OCI `{"errors":[…]}` on /v2/, OAuth JSON on /token, the admin JSON
 * format everywhere else. Each surface renders its own error type, a request over the limits
 * (RequestLimitError) and a missing configuration (503); anything else is a bug: logged, and answered 500
 * without internals.
 */
import { ConfigError } from "../config/config";
import { AdminApiError } from "../http/api-errors";
import { jsonResponse } from "../http/headers";
import { TokenEndpointError } from "../http/oauth-errors";
import { RegistryError } from "../http/oci-errors";
import { TOKEN_PATH } from "../http/paths";

export type Surface = "oci" | "oauth" | "admin";

export function surfaceOf(pathname: string): Surface {
  if (pathname === "/v2" || pathname.startsWith("/v2/")) return "oci";
  return pathname === TOKEN_PATH ? "oauth" : "admin";
}

/** A request URL (414) or header block (431) over the limits, refused before any route runs. */
export class RequestLimitError extends Error {
  override name = "RequestLimitError";
  constructor(
    readonly status: 414 | 431,
    message: string,
  ) {
    super(message);
  }
}

type SurfaceError = RegistryError | TokenEndpointError | AdminApiError;

const NOT_CONFIGURED = "registry is not configured; see the Worker logs";

/** What each surface answers for the errors it renders besides its own type. */
const SURFACES: Record<Surface, { own: (error: unknown) => error is SurfaceError; limit: (error: RequestLimitError) => SurfaceError; unconfigured: () => SurfaceError; internal: () => SurfaceError }> = {
  oci: {
    own: (error): error is RegistryError => error instanceof RegistryError,
    limit: (error) => new RegistryError("UNSUPPORTED", { status: error.status, message: error.message }),
    unconfigured: () => new RegistryError("UNKNOWN", { status: 503, message: NOT_CONFIGURED }),
    internal: () => new RegistryError("UNKNOWN"),
  },
  oauth: {
    own: (error): error is TokenEndpointError => error instanceof TokenEndpointError,
    limit: (error) => new TokenEndpointError(error.status, "invalid_request", error.message),
    unconfigured: () => new TokenEndpointError(503, "temporarily_unavailable", NOT_CONFIGURED),
    internal: () => new TokenEndpointError(500, "server_error", "internal error"),
  },
  admin: {
    own: (error): error is AdminApiError => error instanceof AdminApiError,
    limit: (error) => new AdminApiError(error.status, "invalid_request", error.message),
    unconfigured: () => new AdminApiError(503, "unavailable", NOT_CONFIGURED),
    internal: () => new AdminApiError(500, "internal_error", "internal error"),
  },
};

export function ociErrorResponse(error: RegistryError, method: string): Response {
  const body = { errors: [{ code: error.code, message: error.message, detail: error.options.detail ?? null }] };
  const response = jsonResponse(body, error.status, error.options.headers ?? {});
  // HEAD answers carry no body (RFC 9110 §9.3.2).
  return method === "HEAD" ? new Response(null, { status: response.status, headers: response.headers }) : response;
}

function render(error: SurfaceError, request: Request): Response {
  return error instanceof RegistryError ? ociErrorResponse(error, request.method) : error.toResponse();
}

export function errorToResponse(error: unknown, request: Request, surface: Surface): Response {
  const rules = SURFACES[surface];
  if (rules.own(error)) return render(error, request);
  if (error instanceof RequestLimitError) return render(rules.limit(error), request);
  const url = new URL(request.url);
  // Only method and path are logged: never headers (Authorization) nor the query (signatures).
  console.error(
    JSON.stringify({
      event: error instanceof ConfigError ? "config_error" : "unhandled_error",
      method: request.method,
      path: url.pathname,
      error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    }),
  );
  return render(error instanceof ConfigError ? rules.unconfigured() : rules.internal(), request);
}
