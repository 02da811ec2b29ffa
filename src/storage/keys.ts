/**
 * Every KV key and R2 key the registry uses, built in this one module and documented in
 * docs/storage-schema.md. Inputs are validated before they get here: repository names and
 * namespaces never contain ':' (OCI grammar), principals never contain ':' (identity grammar),
 * so ':' separates fields unambiguously and a prefix list never reaches another repository's keys.
 */
/** Names a grant holder: `user/<username>` or `sa/<org id>|<name>`. */
export type PrincipalId = `user/${string}` | `sa/${string}`;

export const kvKeys = {
  namespace: (name: string) => `ns:${name}`,
  namespacePrefix: "ns:",
  /** Reserves a namespace's numeric organization id. */
  organizationId: (id: string) => `org:${id}`,

  repository: (name: string) => `repo:${name}`,
  repositoryPrefix: "repo:",
  tag: (repository: string, tag: string) => `tag:${repository}:${tag}`,
  tagPrefix: (repository: string) => `tag:${repository}:`,
  manifest: (repository: string, digest: string) => `manifest:${repository}:${digest}`,
  blobLink: (repository: string, digest: string) => `link:${repository}:${digest}`,
  blob: (digest: string) => `blob:${digest}`,
  /** A manifest of the repository references the blob (guards blob deletes). */
  blobReference: (repository: string, blob: string, manifest: string) => `ref:${repository}:${blob}:${manifest}`,
  blobReferencePrefix: (repository: string, blob: string) => `ref:${repository}:${blob}:`,
  referrer: (repository: string, subject: string, referrer: string) => `referrer:${repository}:${subject}:${referrer}`,
  referrerPrefix: (repository: string, subject: string) => `referrer:${repository}:${subject}:`,

  user: (name: string) => `user:${name}`,
  userPrefix: "user:",
  serviceAccount: (username: string) => `sa:${username}`,
  serviceAccountPrefix: "sa:",
  /** When a principal last obtained a token (written at most every LAST_USED_RESOLUTION_SECONDS). */
  lastUsed: (principal: PrincipalId) => `lastused:${principal}`,
  /** A web user's refresh token (identity token), by its public id. */
  refreshToken: (id: string) => `refresh:${id}`,
  /** Index of a user's refresh tokens, for listing and revoking them. */
  userRefreshToken: (username: string, id: string) => `user-refresh:${username}:${id}`,
  userRefreshTokenPrefix: (username: string) => `user-refresh:${username}:`,
  /** An audit event; ISO times sort chronologically. */
  auditEvent: (isoTime: string, unique: string) => `audit:${isoTime}:${unique}`,
  /** All audit events of one UTC day (`YYYY-MM-DD`). */
  auditPrefix: (day: string) => `audit:${day}`,
} as const;

export const r2Keys = {
  /**
   * Blob bytes, named by the upload that wrote them, not by digest (unknown until the end): a fresh UUID per
   * first-request object and per multipart upload that copies one, the upload id for an upload with no body.
   */
  blobData: (id: string) => `blobs/${id}`,
  /** Upload session state plus its unflushed tail bytes, one object per offset (written once each). */
  uploadState: (uploadId: string, offset: number) => `uploads/${uploadId}/${offset.toString().padStart(16, "0")}`,
  uploadStatePrefix: (uploadId: string) => `uploads/${uploadId}/`,
  /** Every upload session's objects. */
  uploadsPrefix: "uploads/",
} as const;
