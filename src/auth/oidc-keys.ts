/**
 * Signing keys of trusted OIDC issuers: discovery (`<issuer>/.well-known/openid-configuration` →
 * `jwks_uri`, OIDC Discovery §4) and the JWK Set (RFC 7517 §5), cached with a bounded lifetime in isolate
 * memory and in the data center's Cache API (`caches.default`, platform.md §6: per data center, never
 * replicated), so a login makes no outbound call while the keys are cached, and an issuer that is down
 * leaves cached keys working until they expire. A token whose `kid` is not in the cached set makes the
 * cache refresh at most once a minute per issuer (both per isolate and, through the Cache API entry's
 * fetch time, per data center); otherwise it is refused without a fetch.
 */
import { BoundedMap } from "../storage/bounded-map";
import { sha256Hex } from "../crypto/bytes";
import { readBodyLimited } from "../http/body";
import { importJWK, type JWK } from "jose";
import type { FederationAlgorithm } from "../model/trust-policy";
import { issuerUrlProblem } from "./oidc-policy";

/** Lifetime of a cached key set: the JWKS response's `max-age` bounded to [5 min, 1 h]; 15 min without one. */
export const JWKS_MIN_LIFETIME_SECONDS = 300;
export const JWKS_MAX_LIFETIME_SECONDS = 3600;
const JWKS_DEFAULT_LIFETIME_SECONDS = 900;
/** An unknown `kid` refreshes an issuer's keys at most this often (and a failed fetch is not retried sooner). */
export const JWKS_REFRESH_INTERVAL_SECONDS = 60;
const FETCH_TIMEOUT_MS = 5000;
/** Discovery documents and key sets are small; anything larger is refused unread. */
const MAX_DOCUMENT_BYTES = 64 * 1024;
const MAX_KEYS = 50;
const MAX_ISSUERS_IN_MEMORY = 200;
/** RSA moduli under 2048 bits are refused (RFC 7518 §3.3: "2048 bits or larger MUST be used"). */
const MIN_RSA_MODULUS_BASE64URL_LENGTH = Math.ceil(2048 / 6);
/** The Cache API key space of this module (a name that resolves nowhere: RFC 6761 `.invalid`). */
const CACHE_ORIGIN = "https://oidc-keys.edge-registry.invalid";

interface KeySet {
  issuer: string;
  jwksUri: string;
  keys: JWK[];
  fetchedAt: number;
  expiresAt: number;
}

interface Entry extends KeySet {
  imported: Map<string, CryptoKey>;
}

/** Why keys could not be had, for the audit log. */
export class IssuerKeyError extends Error {
  override name = "IssuerKeyError";
}

export interface IssuerKeysOptions {
  allowInsecure: boolean;
  /** The data center's cache (`caches.default`); undefined where there is none. */
  cache?: Cache;
  fetch?: typeof fetch;
  now?: () => number;
}

export class IssuerKeys {
  private readonly memory = new BoundedMap<string, Entry>(MAX_ISSUERS_IN_MEMORY);
  /** When each issuer was last fetched from (successfully or not): the refresh throttle. */
  private readonly lastAttempt = new Map<string, number>();
  private readonly inflight = new Map<string, Promise<Entry>>();
  private readonly fetcher: typeof fetch;
  private readonly now: () => number;

  constructor(private readonly options: IssuerKeysOptions) {
    this.fetcher = options.fetch ?? ((input, init) => fetch(input, init));
    this.now = options.now ?? Date.now;
  }

  /** The issuer's public key `kid` for `alg`; throws IssuerKeyError saying why there is none. */
  async key(issuer: string, kid: string, alg: FederationAlgorithm): Promise<CryptoKey> {
    let entry = await this.current(issuer);
    let jwk = findKey(entry, kid, alg);
    if (!jwk) {
      // RFC 7517 §4.5 / OIDC Core §10.1.1: a new `kid` is how issuers announce a rotation; look again, rarely.
      const newer = await this.fromCache(issuer);
      if (newer && newer.fetchedAt > entry.fetchedAt) entry = this.remember(newer);
      jwk = findKey(entry, kid, alg);
      if (!jwk && this.mayRefresh(issuer, entry)) {
        entry = await this.refresh(issuer);
        jwk = findKey(entry, kid, alg);
      }
      if (!jwk) throw new IssuerKeyError("unknown kid (not in the issuer's key set)");
    }
    const cacheKey = `${alg}:${kid}`;
    let key = entry.imported.get(cacheKey);
    if (!key) {
      key = (await importJWK(jwk, alg)) as CryptoKey;
      entry.imported.set(cacheKey, key);
    }
    return key;
  }

  /** An unexpired key set: memory, then the data center's cache, then the issuer. */
  private async current(issuer: string): Promise<Entry> {
    const now = this.now();
    const held = this.memory.get(issuer);
    if (held && held.expiresAt > now) return held;
    const cached = await this.fromCache(issuer);
    if (cached) return this.remember(cached);
    // A failed fetch is not retried within the refresh interval: a down issuer is not asked on every login.
    if (!this.mayRefresh(issuer, undefined)) throw new IssuerKeyError("issuer keys unavailable (last fetch failed; retried at most once a minute)");
    return this.refresh(issuer);
  }

  private mayRefresh(issuer: string, entry: KeySet | undefined): boolean {
    const now = this.now();
    const interval = JWKS_REFRESH_INTERVAL_SECONDS * 1000;
    const attempted = this.lastAttempt.get(issuer);
    return (attempted === undefined || now - attempted >= interval) && (!entry || now - entry.fetchedAt >= interval);
  }

  /** One fetch per issuer at a time in this isolate; concurrent logins share it. */
  private refresh(issuer: string): Promise<Entry> {
    let pending = this.inflight.get(issuer);
    if (!pending) {
      this.lastAttempt.set(issuer, this.now());
      pending = this.fetchKeySet(issuer)
        .then(async (set) => {
          await this.toCache(set);
          return this.remember(set);
        })
        .finally(() => this.inflight.delete(issuer));
      this.inflight.set(issuer, pending);
    }
    return pending;
  }

  private remember(set: KeySet): Entry {
    const entry: Entry = { ...set, imported: new Map() };
    this.memory.delete(set.issuer);
    this.memory.set(set.issuer, entry);
    return entry;
  }

  private async fetchKeySet(issuer: string): Promise<KeySet> {
    // OIDC Discovery §4: the configuration is at the issuer plus /.well-known/openid-configuration.
    const discovery = await this.fetchJson(`${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`, "discovery");
    // OIDC Discovery §4.3: the document's `issuer` MUST be identical to the issuer it was fetched for.
    if (discovery.body.issuer !== issuer) throw new IssuerKeyError("discovery document names another issuer");
    const jwksUri = discovery.body.jwks_uri;
    if (typeof jwksUri !== "string") throw new IssuerKeyError("discovery document has no jwks_uri");
    const problem = issuerUrlProblem(jwksUri, this.options.allowInsecure);
    if (problem) throw new IssuerKeyError(`jwks_uri ${problem}`);
    const jwks = await this.fetchJson(jwksUri, "JWKS");
    if (!Array.isArray(jwks.body.keys)) throw new IssuerKeyError("JWKS has no keys array");
    const keys = (jwks.body.keys as unknown[]).filter(usableKey).slice(0, MAX_KEYS);
    const lifetime = Math.min(JWKS_MAX_LIFETIME_SECONDS, Math.max(JWKS_MIN_LIFETIME_SECONDS, jwks.maxAge ?? JWKS_DEFAULT_LIFETIME_SECONDS));
    const fetchedAt = this.now();
    return { issuer, jwksUri, keys, fetchedAt, expiresAt: fetchedAt + lifetime * 1000 };
  }

  private async fetchJson(url: string, what: string): Promise<{ body: Record<string, unknown>; maxAge: number | undefined }> {
    let response: Response;
    try {
      // No redirects: the locations are the ones validated above (https, or loopback in development).
      response = await this.fetcher(url, { headers: { Accept: "application/json" }, redirect: "manual", signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    } catch {
      throw new IssuerKeyError(`${what} fetch failed (unreachable or timed out)`);
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new IssuerKeyError(`${what} fetch answered ${response.status}`);
    }
    const bytes = await readBodyLimited(response, MAX_DOCUMENT_BYTES);
    if (!bytes) throw new IssuerKeyError(`${what} document larger than ${MAX_DOCUMENT_BYTES} bytes`);
    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      throw new IssuerKeyError(`${what} document is not JSON`);
    }
    if (typeof body !== "object" || body === null || Array.isArray(body)) throw new IssuerKeyError(`${what} document is not a JSON object`);
    const maxAge = /(?:^|,)\s*max-age=(\d{1,9})\s*(?:,|$)/i.exec(response.headers.get("Cache-Control") ?? "")?.[1];
    return { body: body as Record<string, unknown>, maxAge: maxAge === undefined ? undefined : Number(maxAge) };
  }

  private async cacheKey(issuer: string): Promise<Request> {
    return new Request(`${CACHE_ORIGIN}/jwks/${await sha256Hex(issuer)}`);
  }

  private async fromCache(issuer: string): Promise<KeySet | undefined> {
    if (!this.options.cache) return undefined;
    try {
      const response = await this.options.cache.match(await this.cacheKey(issuer));
      if (!response) return undefined;
      const set = (await response.json()) as KeySet;
      // The entry names its issuer (no trust in the hash alone) and its own expiry (the cache may keep it longer).
      if (set.issuer !== issuer || !Array.isArray(set.keys) || !(set.expiresAt > this.now())) return undefined;
      return { issuer, jwksUri: set.jwksUri, keys: set.keys.filter(usableKey), fetchedAt: set.fetchedAt, expiresAt: set.expiresAt };
    } catch {
      return undefined;
    }
  }

  private async toCache(set: KeySet): Promise<void> {
    if (!this.options.cache) return;
    const maxAge = Math.max(1, Math.floor((set.expiresAt - this.now()) / 1000));
    try {
      await this.options.cache.put(
        await this.cacheKey(set.issuer),
        new Response(JSON.stringify(set), { headers: { "Content-Type": "application/json", "Cache-Control": `max-age=${maxAge}` } }),
      );
    } catch {
      // A cache that refuses the entry costs a fetch per isolate, nothing else.
    }
  }
}

/** Keys that can verify RS256 or ES256 signatures; anything else (symmetric, private, encryption) is dropped. */
function usableKey(value: unknown): value is JWK {
  if (typeof value !== "object" || value === null) return false;
  const key = value as Record<string, unknown>;
  if (typeof key.kid !== "string" || key.kid.length === 0 || key.kid.length > 256) return false;
  if (key.use !== undefined && key.use !== "sig") return false;
  // A private key in a public set is an issuer's mistake; never import private material.
  if (key.d !== undefined || key.k !== undefined) return false;
  if (key.kty === "RSA") {
    return (key.alg === undefined || key.alg === "RS256") && typeof key.n === "string" && key.n.length >= MIN_RSA_MODULUS_BASE64URL_LENGTH && typeof key.e === "string";
  }
  if (key.kty === "EC") return (key.alg === undefined || key.alg === "ES256") && key.crv === "P-256" && typeof key.x === "string" && typeof key.y === "string";
  return false;
}

/** The key named `kid` whose type fits `alg` (RFC 7518 §3.1: RS256 ↔ RSA, ES256 ↔ EC P-256). */
function findKey(set: KeySet, kid: string, alg: FederationAlgorithm): JWK | undefined {
  const kty = alg === "RS256" ? "RSA" : "EC";
  return set.keys.find((key) => key.kid === kid && key.kty === kty);
}

