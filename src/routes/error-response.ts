/**
 * The one place errors become responses. RegistryError → OCI `{"errors":[…]}`; TokenEndpointError →
 * OAuth JSON; AdminApiError → admin JSON; anything else is a bug: logged, and answered 500 without internals.
 */
import { ConfigError } from "../config/config";
import { jsonResponse } from "../http/headers";
import { OCI_ERRORS, RegistryError } from "../http/oci-errors";
import { TokenEndpointError } from "../http/oauth-errors";
import { AdminApiError } from "../http/api-errors";

export function ociErrorResponse(error: RegistryError, method: string): Response {
  const body = { errors: [{ code: error.code, message: error.message, detail: error.options.detail ?? null }] };
  const response = jsonResponse(body, error.status, error.options.headers ?? {});
  // HEAD answers carry no body (RFC 9110 §9.3.2).
  return method === "HEAD" ? new Response(null, { status: response.status, headers: response.headers }) : response;
}

export function errorToResponse(error: unknown, request: Request): Response {
  if (error instanceof RegistryError) return ociErrorResponse(error, request.method);
  if (error instanceof TokenEndpointError || error instanceof AdminApiError) return error.toResponse();
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
  if (error instanceof ConfigError) {
    return ociErrorResponse(
      new RegistryError("UNKNOWN", { status: 503, message: "registry is not configured; see the Worker logs" }),
      request.method,
    );
  }
  return ociErrorResponse(new RegistryError("UNKNOWN", { message: OCI_ERRORS.UNKNOWN.message }), request.method);
}
