/** Errors of the admin and account APIs: `{"error":{"code","message"}}` with an HTTP status. */
import { jsonResponse } from "./headers";

export type AdminErrorCode =
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "invalid_request"
  | "unsupported_media_type"
  | "method_not_allowed"
  | "too_many_requests";

/**
 * The 401 challenge. RFC 9110 §11.6.1 requires one, but a `Basic` challenge makes browsers prompt, then
 * cache and replay the credentials on any later request to the registry, including ones a hostile page
 * makes (cross-site request forgery). Browsers act only on schemes they implement (Basic, Digest, NTLM,
 * Negotiate), so a scheme of our own satisfies the RFC and never prompts. The API's clients (the CLI, curl
 * -u, scripts) send Basic credentials preemptively and never wait for a challenge.
 */
export const ADMIN_CHALLENGE = 'EdgeRegistry-Basic realm="edge-registry", hint="send Authorization: Basic preemptively"';

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
    if (this.status === 401) headers["WWW-Authenticate"] = ADMIN_CHALLENGE;
    return jsonResponse({ error: { code: this.code, message: this.message } }, this.status, headers);
  }
}
