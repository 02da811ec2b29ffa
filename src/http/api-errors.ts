/** Errors of the admin API: `{"error":{"code","message"}}` with an HTTP status. */
import { jsonResponse } from "./headers";

export type AdminErrorCode =
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "invalid_request"
  | "method_not_allowed"
  | "too_many_requests";

export class AdminApiError extends Error {
  override name = "AdminApiError";
  constructor(
    readonly status: number,
    readonly code: AdminErrorCode,
    message: string,
    private readonly extraHeaders: Record<string, string> = {},
  ) {
    super(message);
  }

  toResponse(): Response {
    const headers: Record<string, string> = { ...this.extraHeaders };
    if (this.status === 401) headers["WWW-Authenticate"] = 'Basic realm="registry admin"';
    return jsonResponse({ error: { code: this.code, message: this.message } }, this.status, headers);
  }
}
