/** Builds every dependency once per isolate from validated configuration; env itself is never changed. */
import { CredentialVerifier } from "./auth/credentials";
import { FederationVerifier } from "./auth/federation";
import { IssuerKeys } from "./auth/oidc-keys";
import { ReplayGuard } from "./auth/oidc-replay";
import { RegistryAccess } from "./auth/registry-access";
import { RegistryTokens } from "./auth/registry-token";
import { loadSigningKeys, type SigningKeySet } from "./auth/signing-keys";
import { TokenEndpoint } from "./auth/token-endpoint";
import { Visibility } from "./auth/visibility";
import { parseConfig, type Config } from "./config/config";
import type { Env } from "./config/env";
import { Hmac, PasswordHasher } from "./crypto/secrets";
import type { RegistryContext } from "./registry/context";
import { R2PresignedUrls, WorkerSignedUrls } from "./storage/blob-urls";
import { adminRefusal } from "./http/api-errors";
import { IdentityStore } from "./storage/identity-store";
import { RepositoryStore } from "./storage/repository-store";
import { BlobObjects } from "./storage/blob-objects";
import { BlobUploads } from "./storage/blob-uploads";
import { RecentWrites } from "./storage/recent-writes";
import type { AdminServices } from "./admin/context";
import { GuardedLogin } from "./auth/guarded-login";
import { LastUsedTracker } from "./auth/last-used";
import { LoginThrottle } from "./auth/login-throttle";
import { RefreshTokens } from "./auth/refresh-tokens";
import { ConsoleSessions } from "./auth/console-sessions";
import { AuditLog } from "./storage/audit-log";
import { LoginDeviceStore } from "./storage/login-device-store";
import { SealedBox } from "./crypto/sealed-box";
import { BlobIngest } from "./storage/blob-ingest";
import { UpstreamSources } from "./storage/upstream-sources";
import { ImageCopier } from "./registry/image-copy";
import { ImportRunner } from "./registry/import-runner";
import { PullThroughMirror } from "./registry/mirror";
import { WEBHOOK_SECRET_PURPOSE } from "./storage/notification-hub";

export interface Services {
  config: Config;
  keys: SigningKeySet;
  registry: RegistryContext;
  access: RegistryAccess;
  tokenEndpoint: TokenEndpoint;
  admin: AdminServices;
  workerUrls: WorkerSignedUrls;
  /** Imports from other registries and the pull-through mirror (README "Import", "Mirror"). */
  imports: ImportRunner;
  mirror: PullThroughMirror;
}

/** What the runtime provides besides env: the data center's cache (Cache API, platform.md §6). */
export interface Platform {
  /** Per location, shared by its isolates; the test entry gives each modelled location its own. */
  locationCache: Cache;
}

/** The platform as Workers provide it. */
export function workersPlatform(): Platform {
  return { locationCache: caches.default };
}

export async function buildServices(env: Env, platform: Platform): Promise<Services> {
  const config = parseConfig(env);
  const keys = await loadSigningKeys(config.signingKeysJson);
  const tokenHmac = await Hmac.create(config.pepper, "credential-token");
  const passwords = new PasswordHasher(await Hmac.create(config.pepper, "password"));
  const workerUrls = new WorkerSignedUrls(await Hmac.create(config.pepper, "blob-url"), config.blobUrlLifetimeSeconds);
  // Admin reads and writes go to the identity ledger (refusals answered in the admin format); the token
  // endpoint reads the ledger's KV publication first (`forEdge`), sharing the per-isolate login caches.
  // Changes are marked in the location's cache so every isolate of the location where the admin API
  // acknowledged one honours it at once.
  const dataCenterCache = platform.locationCache;
  const identities = new IdentityStore(env.REGISTRY_KV, env.IDENTITY_LEDGER, {
    refusal: adminRefusal,
    locationCache: dataCenterCache,
  });
  const edgeIdentities = identities.forEdge();
  const repositories = new RepositoryStore(env.REGISTRY_KV, env.REPOSITORY_LEDGER, {
    consistentTagReads: config.consistentTagReads,
    blobIndex: env.BLOB_INDEX,
    gcGraceMs: config.lifecycle.gcGraceMs,
  });
  const visibility = new Visibility(edgeIdentities, repositories);
  const tokens = new RegistryTokens(keys, {
    issuer: config.issuer,
    audience: config.serviceName,
    lifetimeSeconds: config.tokenLifetimeSeconds,
  });
  // Workload identity federation: issuer keys and first uses cached in isolate memory and the data center's
  // Cache API, first uses also in KV (src/auth/oidc-replay.ts).
  const federation = new FederationVerifier({
    keys: new IssuerKeys({ allowInsecure: config.allowInsecureOidcIssuers, cache: dataCenterCache }),
    replay: new ReplayGuard(env.REGISTRY_KV, dataCenterCache),
    allowInsecure: config.allowInsecureOidcIssuers,
  });
  const credentials = new CredentialVerifier(edgeIdentities, tokenHmac, passwords, config.bootstrapAdminPassword, federation);
  const audit = new AuditLog(env.REGISTRY_KV);
  const devices = new LoginDeviceStore(env.REGISTRY_KV, await Hmac.create(config.pepper, "login-device"));
  const login = new GuardedLogin(credentials, new LoginThrottle(env.LOGIN_ACCOUNT_LIMITER, env.LOGIN_CLIENT_LIMITER), audit, devices);
  // Refresh tokens are kept by the identity ledger too (issued, revoked, listed there; redeemed from KV).
  const refreshTokenStore = identities.refreshTokens();
  const refreshHmac = await Hmac.create(config.pepper, "refresh-token");
  const refreshTokens = new RefreshTokens(refreshTokenStore, edgeIdentities, credentials, refreshHmac);
  const sessions = new ConsoleSessions(login, refreshTokens, refreshTokenStore, await Hmac.create(config.pepper, "console-csrf"));
  const uploads = new BlobUploads(env.REGISTRY_BUCKET, env.REPOSITORY_LEDGER, env.BLOB_INDEX, config.uploadStorage);
  // Content from other registries goes through the same upload and ledger interfaces as a push.
  const upstreamSources = new UpstreamSources(env.REGISTRY_BUCKET);
  const upstreamCredentials = await SealedBox.create(config.pepper, "upstream-credentials");
  const copier = new ImageCopier(repositories, new BlobIngest(uploads, env.REPOSITORY_LEDGER, env.BLOB_INDEX));
  const imports = new ImportRunner(upstreamSources, upstreamCredentials, copier, config.allowInsecureUpstreams, config.importTransfer);
  const upstream = { sources: upstreamSources, credentials: upstreamCredentials, allowInsecure: config.allowInsecureUpstreams, imports };
  return {
    config,
    keys,
    registry: {
      repositories,
      uploads,
      objects: new BlobObjects(env.REGISTRY_BUCKET),
      recentWrites: new RecentWrites(dataCenterCache),
      blobUrls: config.r2Presign ? new R2PresignedUrls(config.r2Presign, config.blobUrlLifetimeSeconds) : workerUrls,
      maxRequestBodyBytes: config.maxRequestBodyBytes,
    },
    access: new RegistryAccess(tokens, config.serviceName),
    tokenEndpoint: new TokenEndpoint({
      serviceName: config.serviceName,
      login,
      tokens,
      visibility,
      refreshTokens,
      lastUsed: new LastUsedTracker(edgeIdentities),
    }),
    admin: {
      identities,
      repositories,
      visibility,
      login,
      passwords,
      tokenHmac,
      audit,
      refreshTokens: refreshTokenStore,
      sessions,
      allowInsecureOidcIssuers: config.allowInsecureOidcIssuers,
      upstream,
      webhooks: { hubs: env.NOTIFICATION_HUB, sealer: await SealedBox.create(config.pepper, WEBHOOK_SECRET_PURPOSE), allowInsecure: config.allowInsecureWebhooks },
    },
    workerUrls,
    imports,
    mirror: new PullThroughMirror(upstreamSources, repositories, upstreamCredentials, copier, config.allowInsecureUpstreams),
  };
}

/**
 * Built services per env object: production has one per isolate; the test entries build one per modelled
 * location and isolate (one platform per env object).
 */
const built = new WeakMap<Env, Promise<Services>>();

/** Services for this env, built on first use; a failed build is retried on the next request. */
export function servicesFor(env: Env, platform: Platform): Promise<Services> {
  let services = built.get(env);
  if (!services) {
    services = buildServices(env, platform);
    built.set(env, services);
    const attempt = services;
    attempt.catch(() => {
      if (built.get(env) === attempt) built.delete(env);
    });
  }
  return services;
}
