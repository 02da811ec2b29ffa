/**
 * The one table of OCI error codes (distribution-spec spec.md "Error Codes", statuses from
 * distribution's errcode/register.go) and the error type handlers throw. `otherStatuses` lists the
 * statuses a code may take instead where the spec or the platform asks for one; no other is possible.
 */
import type { ErrorTable, StatusOf } from "./error-table";

export const OCI_ERRORS = {
  BLOB_UNKNOWN: { status: 404, message: "blob unknown to registry" },
  BLOB_UPLOAD_INVALID: { status: 400, message: "blob upload invalid" },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: "blob upload unknown to registry" },
  DIGEST_INVALID: { status: 400, message: "provided digest did not match uploaded content" },
  MANIFEST_BLOB_UNKNOWN: { status: 400, message: "manifest references a manifest or blob unknown to registry" },
  // 413: a manifest over the size this registry reads (spec.md "Pushing Manifests": MAY answer 413).
  MANIFEST_INVALID: { status: 400, message: "manifest invalid", otherStatuses: [413] },
  MANIFEST_UNKNOWN: { status: 404, message: "manifest unknown to registry" },
  NAME_INVALID: { status: 400, message: "invalid repository name" },
  NAME_UNKNOWN: { status: 404, message: "repository name not known to registry" },
  // 413: an upload request body over MAX_REQUEST_BODY_BYTES (platform.md §3: Cloudflare's own answer).
  SIZE_INVALID: { status: 400, message: "provided length did not match content length", otherStatuses: [413] },
  UNAUTHORIZED: { status: 401, message: "authentication required" },
  DENIED: { status: 403, message: "requested access to the resource is denied" },
  // 404: no such endpoint (spec.md end-1 … end-13); 414, 431: a URL or headers over the limits (routes/router.ts).
  UNSUPPORTED: { status: 405, message: "the operation is unsupported", otherStatuses: [404, 414, 431] },
  TOOMANYREQUESTS: { status: 429, message: "too many requests" },
  // distribution extensions used deliberately:
  RANGE_INVALID: { status: 416, message: "invalid content range" },
  PAGINATION_NUMBER_INVALID: { status: 400, message: "invalid number of results requested" },
  // 503: the Worker is not configured (missing or malformed secrets).
  UNKNOWN: { status: 500, message: "unknown error", otherStatuses: [503] },
} as const satisfies ErrorTable;

export type OciErrorCode = keyof typeof OCI_ERRORS;

export interface RegistryErrorOptions<C extends OciErrorCode = OciErrorCode> {
  message?: string;
  detail?: unknown;
  /** Extra response headers (a challenge, `Range` on a 416, `Retry-After` on a 429). */
  headers?: Record<string, string>;
  /** One of the code's `otherStatuses` in the table (e.g. 413 with SIZE_INVALID). */
  status?: StatusOf<typeof OCI_ERRORS, C>;
}

export class RegistryError<C extends OciErrorCode = OciErrorCode> extends Error {
  override name = "RegistryError";
  constructor(
    readonly code: C,
    readonly options: RegistryErrorOptions<C> = {},
  ) {
    super(options.message ?? OCI_ERRORS[code].message);
  }

  get status(): number {
    const table: ErrorTable = OCI_ERRORS;
    return (this.options.status as number | undefined) ?? table[this.code]!.status;
  }
}
