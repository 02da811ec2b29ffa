/** The Workers rate-limiting binding (wrangler.toml `[[ratelimits]]`; platform.md §7). */
export interface RateLimiter {
  limit(options: { key: string }): Promise<{ success: boolean }>;
}

/**
 * Bindings, vars and secrets the Worker receives (see wrangler.toml and README "Configuration"). The
 * Durable Object bindings (REPOSITORY_LEDGER, BLOB_INDEX, IDENTITY_LEDGER) are declared beside their
 * classes, in storage/durable-object-bindings.ts, so that config/ imports nothing above it.
 */
export interface Env {
  REGISTRY_KV: KVNamespace;
  REGISTRY_BUCKET: R2Bucket;
  /** Rate limiters of failed logins (wrangler.toml `[[ratelimits]]`); throttling is off without them. */
  LOGIN_ACCOUNT_LIMITER?: RateLimiter;
  LOGIN_CLIENT_LIMITER?: RateLimiter;

  /** Vars. */
  SERVICE_NAME?: string;
  TOKEN_ISSUER?: string;
  TOKEN_LIFETIME_SECONDS?: string;
  PUBLIC_URL?: string;
  BLOB_URL_LIFETIME_SECONDS?: string;
  R2_ACCOUNT_ID?: string;
  R2_BUCKET_NAME?: string;
  /** "true": pulls by tag read the repository ledger (consistent everywhere) instead of KV. */
  CONSISTENT_TAG_READS?: string;
  /** Largest upload request body accepted, in bytes (the zone's Cloudflare plan; default 100000000). */
  MAX_REQUEST_BODY_BYTES?: string;
  /** Size of R2 multipart parts of blob bytes (default 16 MiB; R2: 5 MiB to 5 GiB). Tests lower it. */
  UPLOAD_PART_BYTES?: string;
  /** Largest body stored by one R2 put (default and most: 5 GiB − 5 MiB, R2's limit); longer ones go multipart. Tests lower it. */
  UPLOAD_SINGLE_PUT_MAX_BYTES?: string;
  /** Days tag moves are kept for history and restore (default 14; docs/lifecycle.md). */
  TAG_HISTORY_RETENTION_DAYS?: string;
  /** Hours unreferenced blob links and unlinked blob bytes are kept before garbage collection (default 24). */
  GC_GRACE_HOURS?: string;

  /**
   * "true" lets trust policies name `http://` OIDC issuers on 127.0.0.1 or localhost: local development and
   * tests only, never in production (README "Workload identity federation").
   */
  ALLOW_INSECURE_OIDC_ISSUERS?: string;

  /** Secrets. */
  SIGNING_KEYS?: string;
  SECRET_PEPPER?: string;
  BOOTSTRAP_ADMIN_PASSWORD?: string;
  R2_ACCESS_KEY_ID?: string;
  R2_SECRET_ACCESS_KEY?: string;
}
