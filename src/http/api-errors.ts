/**
 * Errors of the admin and account APIs, and of every other path outside /v2/ and /token:
 * `{"error":{"code","message"}}` with an HTTP status. The one table of their codes and statuses;
 * `otherStatuses` lists the statuses a code may take instead.
 */
import { codeWithStatus, type ErrorTable, type StatusOf } from "./error-table";
import { jsonResponse } from "./headers";

export const ADMIN_ERRORS = {
  unauthorized: { status: 401 },
  forbidden: { status: 403 },
  not_found: { status: 404 },
  // 503: a change saved but not yet applied everywhere (repeating the request waits for it).
  conflict: { status: 409, otherStatuses: [503] },
  // 413: a body over the limit; 414, 431: URL or headers over the limits.
  invalid_request: { status: 400, otherStatuses: [413, 414, 431] },
  unsupported_media_type: { status: 415 },
  method_not_allowed: { status: 405 },
  too_many_requests: { status: 429 },
  // The server's own failures: a bug (500) or no configuration (503).
  internal_error: { status: 500 },
  unavailable: { status: 503 },
} as const satisfies ErrorTable;

export type AdminErrorCode = keyof typeof ADMIN_ERRORS;

/**
 * The 401 challenge. RFC 9110 §11.6.1 requires one, but a `Basic` challenge makes browsers prompt, then
 * cache and replay the credentials on any later request to the registry, including ones a hostile page
 * makes (cross-site request forgery). Browsers act only on schemes they implement (Basic, Digest, NTLM,
 * Negotiate), so a scheme of our own satisfies the RFC and never prompts. The API's clients (the CLI, curl
 * -u, scripts) send Basic credentials preemptively and never wait for a challenge.
 */
export const ADMIN_CHALLENGE = 'EdgeRegistry-Basic realm="edge-registry", hint="send Authorization: Basic preemptively"';

export class AdminApiError<C extends AdminErrorCode = AdminErrorCode> extends Error {
  override name = "AdminApiError";
  readonly status: number;
  constructor(
    status: StatusOf<typeof ADMIN_ERRORS, C>,
    readonly code: C,
    message: string,
    private readonly extraHeaders: Record<string, string> = {},
  ) {
    super(message);
    this.status = status as number;
  }

  toResponse(): Response {
    const headers: Record<string, string> = { ...this.extraHeaders };
    if (this.status === 401) headers["WWW-Authenticate"] = ADMIN_CHALLENGE;
    return jsonResponse({ error: { code: this.code, message: this.message } }, this.status, headers);
  }
}

/**
 * A storage refusal (a ledger's 400, 404 or 409) in the admin format: the code whose status it is. A status
 * no code has is a bug, left to be logged as one.
 */
export function adminRefusal(status: number, message: string): Error {
  const code = codeWithStatus(ADMIN_ERRORS, status);
  return code ? new AdminApiError(ADMIN_ERRORS[code].status, code, message) : new Error(`unexpected refusal ${status}: ${message}`);
}
