/** Errors of the token endpoint, in OAuth 2.0's shape (RFC 6749 §5.2): `{"error","error_description"}`. */
import { jsonResponse } from "./headers";

export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_client"
  | "invalid_grant"
  | "unsupported_grant_type"
  | "invalid_scope"
  | "unauthorized"
  | "too_many_requests"
  | "method_not_allowed";

export class TokenEndpointError extends Error {
  override name = "TokenEndpointError";
  constructor(
    readonly status: number,
    readonly code: OAuthErrorCode,
    readonly description: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(description);
  }

  toResponse(): Response {
    return jsonResponse({ error: this.code, error_description: this.description }, this.status, this.headers);
  }
}
