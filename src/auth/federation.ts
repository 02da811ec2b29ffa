/**
 * Workload identity federation at the token endpoint (SECURITY.md "Workload identity federation"): an OIDC
 * ID token (GitHub Actions, GitLab CI, a Kubernetes projected service-account token…) stands in for a
 * service account's token when one of the account's trust policies accepts it. Every refusal carries the
 * rule that failed, for the audit log only; callers get the ordinary invalid-credentials answer.
 */
import { sha256Hex } from "../crypto/bytes";
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from "jose";
import { IssuerKeyError, type IssuerKeys } from "./oidc-keys";
import { FEDERATION_ALGORITHMS, type FederationAlgorithm, type TrustPolicy } from "../model/trust-policy";
import { issuerUrlProblem, policyMismatch } from "./oidc-policy";
import type { ReplayGuard } from "./oidc-replay";

/** Clock skew allowed on `exp`, `nbf` and `iat` (RFC 7519 §4.1.4: "some small leeway"; the registry's own tokens use the same). */
export const FEDERATION_LEEWAY_SECONDS = 60;
/**
 * Longest token accepted. Real ones are 1–2 KB (GitHub's carry the most claims); the Basic header allows
 * 8 KiB (basic-auth.ts), so any longer one could not arrive that way anyway.
 */
export const MAX_FEDERATED_TOKEN_LENGTH = 6144;

const BASE64URL_PART = /^[A-Za-z0-9_-]*$/;

/**
 * Whether a secret has the shape of a JWS compact serialization (RFC 7515 §7.1): three base64url parts
 * whose first decodes to a JSON object with `alg`. A service-account token (43 base64url characters, no
 * dots) never does, so only JWT-shaped secrets presented for accounts with trust policies take this path.
 */
export function looksLikeJwt(secret: string): boolean {
  if (secret.length > MAX_FEDERATED_TOKEN_LENGTH * 2) return false;
  const parts = secret.split(".");
  if (parts.length !== 3 || !parts[0] || !parts[1] || !parts.every((part) => BASE64URL_PART.test(part))) return false;
  try {
    return typeof decodeProtectedHeader(secret).alg === "string";
  } catch {
    return false;
  }
}

export type FederationResult = { ok: true; policy: TrustPolicy; issuer: string; subject: string } | { ok: false; reason: string };

export interface FederationVerifierOptions {
  keys: IssuerKeys;
  replay: ReplayGuard;
  /** ALLOW_INSECURE_OIDC_ISSUERS, checked again at login: a policy stored while it was on stops working when it is off. */
  allowInsecure: boolean;
  now?: () => number;
}

/** Audit details quote caller-chosen claims; cut them (the audit log also cleans and bounds every field). */
const quote = (value: unknown) => JSON.stringify(String(value).slice(0, 100));

export class FederationVerifier {
  private readonly now: () => number;

  constructor(private readonly options: FederationVerifierOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Verifies `token` against `policies` (one account's); `background` runs the replay record's writes. */
  async verify(policies: readonly TrustPolicy[], token: string, background: (work: Promise<unknown>) => void): Promise<FederationResult> {
    if (token.length > MAX_FEDERATED_TOKEN_LENGTH) return refuse("token too long");
    let header: ReturnType<typeof decodeProtectedHeader>;
    let unverified: JWTPayload;
    try {
      header = decodeProtectedHeader(token);
      unverified = decodeJwt(token);
    } catch {
      return refuse("malformed JWT");
    }
    // RFC 8725 §3.1 / §3.2: the algorithm is pinned, never taken from the token: no `none`, no HMAC keyed with public material.
    const alg = header.alg;
    if (!(FEDERATION_ALGORITHMS as readonly unknown[]).includes(alg)) return refuse(`algorithm ${quote(alg)} refused`);
    // OIDC Core §10.1: `kid` selects the key, and only in the issuer's own JWKS (never `jwk`/`jku`/`x5u`/`x5c` headers).
    if (typeof header.kid !== "string" || header.kid.length === 0) return refuse("no kid in the header");
    const issuer = unverified.iss;
    if (typeof issuer !== "string") return refuse("no iss claim");
    const candidates = policies.filter((policy) => policy.issuer === issuer);
    if (candidates.length === 0) return refuse(`no trust policy for issuer ${quote(issuer)}`);
    if (issuerUrlProblem(issuer, this.options.allowInsecure)) return refuse(`issuer ${quote(issuer)} not allowed by the configuration`);

    let key: CryptoKey;
    try {
      key = await this.options.keys.key(issuer, header.kid, alg as FederationAlgorithm);
    } catch (error) {
      if (error instanceof IssuerKeyError) return refuse(`${error.message}: issuer ${quote(issuer)}`);
      throw error;
    }
    const now = this.now();
    let claims: JWTPayload;
    try {
      // RFC 7519 §4.1: iss and exp checked by jose (with `nbf` when present), with bounded leeway; aud, sub, iat required here.
      ({ payload: claims } = await jwtVerify(token, key, {
        algorithms: [alg as string],
        issuer,
        clockTolerance: FEDERATION_LEEWAY_SECONDS,
        currentDate: new Date(now),
        requiredClaims: ["exp", "iat", "sub", "aud"],
      }));
    } catch (error) {
      return refuse(joseReason(error));
    }
    const nowSeconds = Math.floor(now / 1000);
    if (typeof claims.iat !== "number" || claims.iat > nowSeconds + FEDERATION_LEEWAY_SECONDS) return refuse("issued in the future (iat)");

    const mismatches: string[] = [];
    let matched: TrustPolicy | undefined;
    for (const policy of candidates) {
      const mismatch = policyMismatch(policy, claims as Record<string, unknown>, alg as string, nowSeconds);
      if (!mismatch) {
        matched = policy;
        break;
      }
      mismatches.push(`policy ${policy.id}: ${mismatch}`);
    }
    if (!matched) return refuse(`${mismatches.join("; ")} (sub ${quote(claims.sub)})`);

    // Replay: the first use opens the policy's window; a later use past it is refused (and past exp, jose refused above).
    const id = await tokenId(issuer, typeof claims.jti === "string" && claims.jti ? claims.jti : undefined, token);
    const use = await this.options.replay.firstUse(id, claims.exp! * 1000 + FEDERATION_LEEWAY_SECONDS * 1000, now, background);
    if (!use.fresh && now - use.firstUsedAt >= matched.replayWindowSeconds * 1000) {
      return refuse(`replayed ${Math.round((now - use.firstUsedAt) / 1000)} s after first use (window ${matched.replayWindowSeconds} s)`);
    }
    return { ok: true, policy: matched, issuer, subject: claims.sub! };
  }
}

function refuse(reason: string): FederationResult {
  return { ok: false, reason };
}

/** The audit reason for a jose verification error (its messages name the claim, never the token). */
function joseReason(error: unknown): string {
  if (error instanceof errors.JWTExpired) return error.claim === "exp" ? "expired (exp)" : `token too old (${error.claim})`;
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === "nbf") return "not yet valid (nbf)";
    return `claim ${error.claim} invalid (${error.reason})`;
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return "signature invalid";
  if (error instanceof errors.JOSEAlgNotAllowed) return "algorithm not allowed";
  if (error instanceof errors.JOSEError) return `invalid token (${error.code})`;
  return "invalid token";
}

/** SHA-256 of the issuer and `jti` (or of the whole token when it has none), hex: the replay record's name. */
async function tokenId(issuer: string, jti: string | undefined, token: string): Promise<string> {
  const text = jti === undefined ? `token\n${token}` : `jti\n${issuer}\n${jti}`;
  return sha256Hex(text);
}
