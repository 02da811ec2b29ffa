/**
 * Every KV key and R2 key the registry uses, built in this one module and documented in
 * docs/storage-schema.md. Inputs are validated before they get here: repository names and
 * namespaces never contain ':' (OCI grammar), principals never contain ':' (identity grammar),
 * so ':' separates fields unambiguously and a prefix list never reaches another repository's keys.
 */
import type { PrincipalId } from "../model/principal";

export const kvKeys = {
  namespace: (name: string) => `ns:${name}`,
  namespacePrefix: "ns:",
  /** Reserves a namespace's numeric organization id. */
  organizationId: (id: string) => `org:${id}`,
  organizationIdPrefix: "org:",

  // Published by the repository ledger (storage/repository-ledger.ts), read at the edge.
  repository: (name: string) => `repo:${name}`,
  repositoryPrefix: "repo:",
  /** A copy of the tagged manifest's bytes; metadata names its digest. */
  tag: (repository: string, tag: string) => `tag:${repository}:${tag}`,
  manifest: (repository: string, digest: string) => `manifest:${repository}:${digest}`,
  blobLink: (repository: string, digest: string) => `link:${repository}:${digest}`,

  user: (name: string) => `user:${name}`,
  userPrefix: "user:",
  serviceAccount: (username: string) => `sa:${username}`,
  serviceAccountPrefix: "sa:",
  /** When a principal last obtained a token (written at most every LAST_USED_RESOLUTION_SECONDS). */
  lastUsed: (principal: PrincipalId) => `lastused:${principal}`,
  /** A web user's refresh token (identity token), by its public id: published by the identity ledger. */
  refreshToken: (id: string) => `refresh:${id}`,
  refreshTokenPrefix: "refresh:",
  /**
   * An audit event in one stream (`change`, `auth`, `action/<action>`, `actor/<kind>/<hash>`: see
   * storage/audit-log.ts). Inverted day and time (fixed width) make a prefix list newest first.
   */
  auditEvent: (stream: string, invertedDay: string, invertedMs: string, unique: string) => `audit:${stream}:${invertedDay}:${invertedMs}:${unique}`,
  /** One stream's events of one UTC day. */
  auditDayPrefix: (stream: string, invertedDay: string) => `audit:${stream}:${invertedDay}:`,
  /**
   * Previous schema, read once by the identity ledger's import and written by nothing: a user's refresh epoch
   * (now the `refreshEpoch` field of the user's record). Its per-user index `user-refresh:<user>:<id>` is
   * neither read nor written (the ledger lists a user's tokens).
   */
  refreshEpochPrefix: "refresh-epoch:",
  /** A client address (keyed hash) that has signed in successfully as a password principal: exempt from its account lock. */
  loginDevice: (principal: PrincipalId, addressHash: string) => `login-device:${principal}:${addressHash}`,
  /** First use of a federated (OIDC) token: SHA-256 hex of its issuer and `jti` (src/auth/oidc-replay.ts); expires with the token. */
  federatedToken: (hash: string) => `oidc-token:${hash}`,
} as const;

export const r2Keys = {
  /**
   * Blob bytes, named by the upload that wrote them, not by digest (unknown until the end): a fresh UUID per
   * first-request object and per multipart upload that copies one, the upload id for an upload with no body.
   */
  blobData: (id: string) => `blobs/${id}`,
  /**
   * An upload session's tail bytes (fewer than one part), one object per saved state: the claim (lease) of
   * the request that wrote it makes the key fresh, so racing requests never overwrite each other's tail.
   */
  uploadTail: (uploadId: string, lease: string) => `uploads/${uploadId}/${lease}`,
  /** Every upload session's tail objects (swept by the cron trigger once older than any live session). */
  uploadsPrefix: "uploads/",
  /** Every blob object (the orphan sweep lists them in key order). */
  blobsPrefix: "blobs/",
  /**
   * An empty marker: the orphan sweep found blob object `blobKey` named by a blob record, so later sweeps skip
   * it without asking a ledger. Deleted with the bytes by the blob index's collection.
   */
  referencedBlob: (blobKey: string) => `referenced/${blobKey}`,
  referencedPrefix: "referenced/",
  /** Where the orphan sweep stopped (the last `blobs/` key it looked at), to resume there next time. */
  orphanSweepPosition: "gc/orphan-sweep-position",
} as const;

/** Names of Durable Object instances (`idFromName`): one ledger per repository, one index object per digest. */
export const objectNames = {
  repositoryLedger: (repository: string) => `repository:${repository}`,
  /** A RepositoryLedger instance holding a namespace's immutable-tag rules (docs/lifecycle.md); no repository has this name. */
  namespacePolicy: (namespace: string) => `namespace-policy:${namespace}`,
  blobIndex: (digest: string) => `blob:${digest}`,
  /** The one identity ledger. */
  identityLedger: "identities",
} as const;

/** Cache API keys (per data center, never replicated): a URL on a host that never resolves. */
export const cacheKeys = {
  /** A repository was written in this location within RECENT_WRITE_SECONDS (storage/recent-writes.ts). */
  recentWrite: (repository: string) => `https://edge-registry.internal/recent-writes/${repository}`,
  /** Something was removed from a repository in this location within RECENT_WRITE_SECONDS (storage/recent-writes.ts). */
  recentRemoval: (repository: string) => `https://edge-registry.internal/recent-removals/${repository}`,
  /** An identity record (its KV key) was changed in this location within RECENT_IDENTITY_CHANGE_SECONDS (storage/recent-writes.ts). */
  recentIdentityChange: (kvKey: string) => `https://edge-registry.internal/recent-identity-changes/${encodeURIComponent(kvKey)}`,
} as const;
