/**
 * The one table of OCI error codes (distribution-spec spec.md "Error Codes", statuses from
 * distribution's errcode/register.go) and the error type handlers throw.
 */
export const OCI_ERRORS = {
  BLOB_UNKNOWN: { status: 404, message: "blob unknown to registry" },
  BLOB_UPLOAD_INVALID: { status: 400, message: "blob upload invalid" },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: "blob upload unknown to registry" },
  DIGEST_INVALID: { status: 400, message: "provided digest did not match uploaded content" },
  MANIFEST_BLOB_UNKNOWN: { status: 400, message: "manifest references a manifest or blob unknown to registry" },
  MANIFEST_INVALID: { status: 400, message: "manifest invalid" },
  MANIFEST_UNKNOWN: { status: 404, message: "manifest unknown to registry" },
  NAME_INVALID: { status: 400, message: "invalid repository name" },
  NAME_UNKNOWN: { status: 404, message: "repository name not known to registry" },
  SIZE_INVALID: { status: 400, message: "provided length did not match content length" },
  UNAUTHORIZED: { status: 401, message: "authentication required" },
  DENIED: { status: 403, message: "requested access to the resource is denied" },
  UNSUPPORTED: { status: 405, message: "the operation is unsupported" },
  TOOMANYREQUESTS: { status: 429, message: "too many requests" },
  // distribution extensions used deliberately:
  RANGE_INVALID: { status: 416, message: "invalid content range" },
  PAGINATION_NUMBER_INVALID: { status: 400, message: "invalid number of results requested" },
  UNKNOWN: { status: 500, message: "unknown error" },
} as const satisfies Record<string, { status: number; message: string }>;

export type OciErrorCode = keyof typeof OCI_ERRORS;

export interface RegistryErrorOptions {
  message?: string;
  detail?: unknown;
  /** Extra response headers (a challenge, `Range` on a 416, `Retry-After` on a 429). */
  headers?: Record<string, string>;
  /** Overrides the table's status where the spec asks for another one (e.g. 413 with SIZE_INVALID). */
  status?: number;
}

export class RegistryError extends Error {
  override name = "RegistryError";
  constructor(
    readonly code: OciErrorCode,
    readonly options: RegistryErrorOptions = {},
  ) {
    super(options.message ?? OCI_ERRORS[code].message);
  }

  get status(): number {
    return this.options.status ?? OCI_ERRORS[this.code].status;
  }
}
