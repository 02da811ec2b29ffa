import type { Env } from "./env";

/** Validated configuration, built once per isolate from `env`. */
export interface Config {
  /** The token audience and the `service` clients must ask for. */
  serviceName: string;
  issuer: string;
  tokenLifetimeSeconds: number;
  /** Absolute origin clients reach the registry at; undefined means "the request's own origin". */
  publicUrl: string | undefined;
  blobUrlLifetimeSeconds: number;
  /** JSON `{"keys":[private JWK, …]}`: the first key signs, every key verifies. */
  signingKeysJson: string;
  pepper: string;
  bootstrapAdminPassword: string | undefined;
  r2Presign: R2PresignConfig | undefined;
  /** CONSISTENT_TAG_READS: every pull by tag asks the repository ledger instead of KV (docs/storage-schema.md). */
  consistentTagReads: boolean;
  /** MAX_REQUEST_BODY_BYTES: the Cloudflare plan's request body limit; larger upload bodies get 413. */
  maxRequestBodyBytes: number;
  /** How blob bytes are cut for R2 (UPLOAD_PART_BYTES, UPLOAD_SINGLE_PUT_MAX_BYTES). */
  uploadStorage: UploadStorageConfig;
  lifecycle: LifecycleConfig;
  /** ALLOW_INSECURE_OIDC_ISSUERS: trust policies may name http:// issuers on loopback (local development, tests). */
  allowInsecureOidcIssuers: boolean;
  /** ALLOW_INSECURE_UPSTREAMS: imports and mirrors may name http:// registries on loopback (local development, tests). */
  allowInsecureUpstreams: boolean;
  /** Blobs from other registries larger than IMPORT_CHUNK_BYTES are fetched in ranges of that size; IMPORT_BYTES_PER_RUN bounds one invocation. */
  importTransfer: { chunkBytes: number; bytesPerRun: number };
  /** ALLOW_INSECURE_WEBHOOKS: webhooks may name http:// receivers on loopback (local development, tests). */
  allowInsecureWebhooks: boolean;
}

/** Image lifecycle settings (docs/lifecycle.md), also read by the repository ledger from its own env. */
export interface LifecycleConfig {
  /** TAG_HISTORY_RETENTION_DAYS (default 14, as Quay's time machine): how long tag moves can be restored. */
  tagHistoryRetentionMs: number;
  /**
   * GC_GRACE_HOURS (default 24): how long a blob link no manifest references, and then blob bytes no
   * repository links, are kept before garbage collection removes them (protects pushes in flight).
   */
  gcGraceMs: number;
}

/**
 * Thresholds of blob storage in R2 (platform.md §4: one put ≤ 5 GiB − 5 MiB; parts 5 MiB to 5 GiB, all but the
 * last the same size, ≤ 10,000 of them). Production keeps the defaults; tests lower both so that a blob of a few
 * MiB takes the path of a blob over R2's single-put limit.
 */
export interface UploadStorageConfig {
  /** Bytes per multipart part (default 16 MiB: 10,000 parts then hold 156 GiB). */
  partBytes: number;
  /** A body longer than this is never stored by one put: it goes to multipart parts. */
  singlePutMaxBytes: number;
}

/** platform.md §4: "Single upload (one PUT, one part …) ≤ 5 GiB − 5 MiB". */
export const R2_SINGLE_PUT_MAX_BYTES = 5 * 1024 ** 3 - 5 * 1024 ** 2;
/** platform.md §4: multipart parts are 5 MiB to 5 GiB (all but the last). */
const R2_MIN_PART_BYTES = 5 * 1024 ** 2;
export const DEFAULT_UPLOAD_PART_BYTES = 16 * 1024 ** 2;

export const DEFAULT_TAG_HISTORY_RETENTION_DAYS = 14;
export const DEFAULT_GC_GRACE_HOURS = 24;

export interface R2PresignConfig {
  accountId: string;
  bucketName: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** Thrown when a required secret or var is missing or malformed: the Worker refuses to serve. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Longest token lifetime the verifier accepts; configuration may not exceed it. */
export const MAX_TOKEN_LIFETIME_SECONDS = 3600;
/** The token spec: a token "should never be returned with less than 60 seconds to live". */
export const MIN_TOKEN_LIFETIME_SECONDS = 60;
/** platform.md §3: Free and Pro zones refuse request bodies over 100 MB (Business 200 MB, Enterprise 500 MB). */
export const DEFAULT_MAX_REQUEST_BODY_BYTES = 100_000_000;
/**
 * Bounds of MAX_REQUEST_BODY_BYTES: at least 1 MiB (no plan allows less; tests lower it this far), at most
 * 5 GB (platform.md §3: Enterprise self-serve), which stays under R2's single-put limit of 5 GiB − 5 MiB (§4).
 */
const MIN_REQUEST_BODY_BYTES = 1024 * 1024;
const MAX_REQUEST_BODY_BYTES = 5_000_000_000;

function integerVar(value: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined || value === "") return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return parsed;
}

function requiredSecret(value: string | undefined, name: string): string {
  if (!value) {
    throw new ConfigError(`secret ${name} is not set: run \`wrangler secret put ${name}\` (see README "Secrets")`);
  }
  return value;
}

/** The upload storage vars; a part is never larger than one put may be (a blob under one part is one put). */
export function uploadStorageConfig(env: Pick<Env, "UPLOAD_PART_BYTES" | "UPLOAD_SINGLE_PUT_MAX_BYTES">): UploadStorageConfig {
  const singlePutMaxBytes = integerVar(env.UPLOAD_SINGLE_PUT_MAX_BYTES, "UPLOAD_SINGLE_PUT_MAX_BYTES", R2_SINGLE_PUT_MAX_BYTES, R2_MIN_PART_BYTES, R2_SINGLE_PUT_MAX_BYTES);
  const partBytes = integerVar(env.UPLOAD_PART_BYTES, "UPLOAD_PART_BYTES", Math.min(DEFAULT_UPLOAD_PART_BYTES, singlePutMaxBytes), R2_MIN_PART_BYTES, singlePutMaxBytes);
  return { partBytes, singlePutMaxBytes };
}

/** The lifecycle vars alone (no secrets needed): the repository ledger reads them from its own env. */
export function lifecycleConfig(env: Pick<Env, "TAG_HISTORY_RETENTION_DAYS" | "GC_GRACE_HOURS">): LifecycleConfig {
  const days = integerVar(env.TAG_HISTORY_RETENTION_DAYS, "TAG_HISTORY_RETENTION_DAYS", DEFAULT_TAG_HISTORY_RETENTION_DAYS, 1, 3650);
  const graceHours = integerVar(env.GC_GRACE_HOURS, "GC_GRACE_HOURS", DEFAULT_GC_GRACE_HOURS, 1, 720);
  return { tagHistoryRetentionMs: days * 24 * 3600 * 1000, gcGraceMs: graceHours * 3600 * 1000 };
}

export function parseConfig(env: Env): Config {
  if (!env.REGISTRY_KV || !env.REGISTRY_BUCKET || !env.REPOSITORY_LEDGER || !env.BLOB_INDEX || !env.IDENTITY_LEDGER) {
    throw new ConfigError(
      "bindings REGISTRY_KV (KV), REGISTRY_BUCKET (R2) and the Durable Objects REPOSITORY_LEDGER, BLOB_INDEX, IDENTITY_LEDGER are required",
    );
  }
  if (![undefined, "", "true", "false"].includes(env.ALLOW_INSECURE_OIDC_ISSUERS)) {
    throw new ConfigError(`ALLOW_INSECURE_OIDC_ISSUERS must be "true" or "false", got ${JSON.stringify(env.ALLOW_INSECURE_OIDC_ISSUERS)}`);
  }
  if (![undefined, "", "true", "false"].includes(env.CONSISTENT_TAG_READS)) {
    throw new ConfigError(`CONSISTENT_TAG_READS must be "true" or "false", got ${JSON.stringify(env.CONSISTENT_TAG_READS)}`);
  }
  const pepper = requiredSecret(env.SECRET_PEPPER, "SECRET_PEPPER");
  if (pepper.length < 32) throw new ConfigError("SECRET_PEPPER must be at least 32 characters");
  const serviceName = env.SERVICE_NAME || "edge-registry";
  const publicUrl = env.PUBLIC_URL ? new URL(env.PUBLIC_URL).origin : undefined;
  const presignParts = [env.R2_ACCOUNT_ID, env.R2_BUCKET_NAME, env.R2_ACCESS_KEY_ID, env.R2_SECRET_ACCESS_KEY];
  const presignCount = presignParts.filter(Boolean).length;
  if (presignCount !== 0 && presignCount !== 4) {
    throw new ConfigError(
      "R2 presigned URLs need all of R2_ACCOUNT_ID, R2_BUCKET_NAME, R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY",
    );
  }
  return {
    serviceName,
    issuer: env.TOKEN_ISSUER || serviceName,
    tokenLifetimeSeconds: integerVar(
      env.TOKEN_LIFETIME_SECONDS,
      "TOKEN_LIFETIME_SECONDS",
      300,
      MIN_TOKEN_LIFETIME_SECONDS,
      MAX_TOKEN_LIFETIME_SECONDS,
    ),
    publicUrl,
    blobUrlLifetimeSeconds: integerVar(env.BLOB_URL_LIFETIME_SECONDS, "BLOB_URL_LIFETIME_SECONDS", 300, 10, 3600),
    signingKeysJson: requiredSecret(env.SIGNING_KEYS, "SIGNING_KEYS"),
    pepper,
    bootstrapAdminPassword: env.BOOTSTRAP_ADMIN_PASSWORD || undefined,
    r2Presign:
      presignCount === 4
        ? {
            accountId: env.R2_ACCOUNT_ID!,
            bucketName: env.R2_BUCKET_NAME!,
            accessKeyId: env.R2_ACCESS_KEY_ID!,
            secretAccessKey: env.R2_SECRET_ACCESS_KEY!,
          }
        : undefined,
    consistentTagReads: env.CONSISTENT_TAG_READS === "true",
    maxRequestBodyBytes: integerVar(
      env.MAX_REQUEST_BODY_BYTES,
      "MAX_REQUEST_BODY_BYTES",
      DEFAULT_MAX_REQUEST_BODY_BYTES,
      MIN_REQUEST_BODY_BYTES,
      MAX_REQUEST_BODY_BYTES,
    ),
    uploadStorage: uploadStorageConfig(env),
    lifecycle: lifecycleConfig(env),
    allowInsecureOidcIssuers: env.ALLOW_INSECURE_OIDC_ISSUERS === "true",
    allowInsecureUpstreams: env.ALLOW_INSECURE_UPSTREAMS === "true",
    importTransfer: {
      chunkBytes: integerVar(env.IMPORT_CHUNK_BYTES, "IMPORT_CHUNK_BYTES", 256 * 1024 ** 2, 1024 ** 2, 5 * 1024 ** 3),
      bytesPerRun: integerVar(env.IMPORT_BYTES_PER_RUN, "IMPORT_BYTES_PER_RUN", 2 * 1024 ** 3, 1024 ** 2, 1024 ** 4),
    },
    allowInsecureWebhooks: env.ALLOW_INSECURE_WEBHOOKS === "true",
  };
}
