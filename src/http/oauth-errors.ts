/**
 * Errors of the token endpoint, in OAuth 2.0's shape (RFC 6749 §5.2): `{"error","error_description"}`.
 * The one table of its codes and statuses; `otherStatuses` lists the statuses a code may take instead.
 */
import type { ErrorTable, StatusOf } from "./error-table";
import { jsonResponse } from "./headers";

export const OAUTH_ERRORS = {
  // 401: a malformed Authorization header; 413: a form body over the limit; 414, 431: URL or headers over the limits.
  invalid_request: { status: 400, otherStatuses: [401, 413, 414, 431] },
  invalid_client: { status: 401 },
  // 401: wrong credentials, as distribution's token server answers them (docker login expects it).
  invalid_grant: { status: 400, otherStatuses: [401] },
  unsupported_grant_type: { status: 400 },
  invalid_scope: { status: 400 },
  unauthorized: { status: 401 },
  too_many_requests: { status: 429 },
  method_not_allowed: { status: 405 },
  // RFC 6749 §4.1.2.1's codes for the server's own failures: a bug (500) or no configuration (503).
  server_error: { status: 500 },
  temporarily_unavailable: { status: 503 },
} as const satisfies ErrorTable;

export type OAuthErrorCode = keyof typeof OAUTH_ERRORS;

export class TokenEndpointError<C extends OAuthErrorCode = OAuthErrorCode> extends Error {
  override name = "TokenEndpointError";
  readonly status: number;
  constructor(
    status: StatusOf<typeof OAUTH_ERRORS, C>,
    readonly code: C,
    readonly description: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(description);
    this.status = status as number;
  }

  toResponse(): Response {
    return jsonResponse({ error: this.code, error_description: this.description }, this.status, this.headers);
  }
}
