/**
 * Registry bearer tokens (distribution docs spec/auth/jwt.md): ES256 JWTs with
 * iss, sub, aud, exp, nbf, iat, jti and `access: [{type, name, actions}]`.
 */
import { BoundedMap } from "../storage/bounded-map";
import { jwtVerify, type JWTHeaderParameters } from "jose";
import { MAX_TOKEN_LIFETIME_SECONDS } from "../config/config";
import { toBase64Url } from "../crypto/bytes";
import type { AccessEntry } from "./scope";
import type { SigningKeySet } from "./signing-keys";

/** distribution verifies exp/nbf with 60 s of leeway. */
export const CLOCK_LEEWAY_SECONDS = 60;

export interface TokenSettings {
  issuer: string;
  audience: string;
  lifetimeSeconds: number;
}

export interface IssuedToken {
  token: string;
  issuedAt: number;
  expiresIn: number;
}

export interface VerifiedToken {
  subject: string;
  access: AccessEntry[];
}

/** Verified tokens kept per isolate: a client sends the same token with every request until it expires. */
const VERIFIED_CACHE_SIZE = 1024;

const utf8 = new TextEncoder();
/** ES256 (RFC 7518 §3.4): ECDSA P-256 with SHA-256; WebCrypto's signature is already the JWS r‖s form. */
const ES256_SIGN = { name: "ECDSA", hash: "SHA-256" } as const;

export class RegistryTokens {
  private readonly verified = new BoundedMap<string, { token: VerifiedToken; expiresAt: number }>(VERIFIED_CACHE_SIZE);
  /** The base64url protected header; fixed per signing key, so encoded once. */
  private readonly headerSegment: string;

  constructor(
    private readonly keys: SigningKeySet,
    private readonly settings: TokenSettings,
  ) {
    this.headerSegment = toBase64Url(utf8.encode(JSON.stringify({ alg: "ES256", typ: "JWT", kid: keys.signer.kid })));
  }

  /**
   * Signs a compact JWS (RFC 7515 §7.1) directly with WebCrypto: the header never varies and the claims
   * are ours, so a general JWT builder adds only work on the token endpoint's hot path.
   */
  async issue(subject: string, access: AccessEntry[], now = Math.floor(Date.now() / 1000)): Promise<IssuedToken> {
    const expiresIn = this.settings.lifetimeSeconds;
    const claims = {
      iss: this.settings.issuer,
      sub: subject,
      aud: this.settings.audience,
      exp: now + expiresIn,
      nbf: now,
      iat: now,
      jti: crypto.randomUUID(),
      access,
    };
    const signingInput = `${this.headerSegment}.${toBase64Url(utf8.encode(JSON.stringify(claims)))}`;
    const signature = await crypto.subtle.sign(ES256_SIGN, this.keys.signer.key, utf8.encode(signingInput));
    return { token: `${signingInput}.${toBase64Url(new Uint8Array(signature))}`, issuedAt: now, expiresIn };
  }

  /** Verifies a token; undefined for anything forged, expired, foreign or malformed. */
  async verify(token: string): Promise<VerifiedToken | undefined> {
    const now = Math.floor(Date.now() / 1000);
    const cached = this.verified.get(token);
    if (cached && now <= cached.expiresAt + CLOCK_LEEWAY_SECONDS) return cached.token;
    if (cached) this.verified.delete(token);
    const verified = await this.verifySignatureAndClaims(token, now);
    if (verified) {
      this.verified.set(token, verified);
      return verified.token;
    }
    return undefined;
  }

  private async verifySignatureAndClaims(token: string, now: number): Promise<{ token: VerifiedToken; expiresAt: number } | undefined> {
    try {
      const { payload } = await jwtVerify(
        token,
        // Keys come only from our own set by kid; jwk/jku/x5c/x5u headers are never consulted.
        (header: JWTHeaderParameters) => {
          const key = header.kid ? this.keys.verifiers.get(header.kid) : undefined;
          if (!key) throw new Error("unknown kid");
          return key.key;
        },
        {
          algorithms: ["ES256"],
          issuer: this.settings.issuer,
          audience: this.settings.audience,
          typ: "JWT",
          requiredClaims: ["exp", "iat", "nbf", "sub", "jti"],
          clockTolerance: CLOCK_LEEWAY_SECONDS,
          maxTokenAge: MAX_TOKEN_LIFETIME_SECONDS + CLOCK_LEEWAY_SECONDS,
        },
      );
      if (payload.exp! - payload.iat! > MAX_TOKEN_LIFETIME_SECONDS) return undefined;
      if (payload.iat! > now + CLOCK_LEEWAY_SECONDS) return undefined;
      const access = parseAccessClaim(payload.access);
      if (!access || typeof payload.sub !== "string") return undefined;
      return { token: { subject: payload.sub, access }, expiresAt: payload.exp! };
    } catch {
      return undefined;
    }
  }
}

function parseAccessClaim(claim: unknown): AccessEntry[] | undefined {
  if (!Array.isArray(claim)) return undefined;
  const entries: AccessEntry[] = [];
  for (const item of claim) {
    const { type, name, actions } = (item ?? {}) as Record<string, unknown>;
    if (typeof type !== "string" || typeof name !== "string" || !Array.isArray(actions)) return undefined;
    if (!actions.every((action) => typeof action === "string")) return undefined;
    entries.push({ type, name, actions: actions as string[] });
  }
  return entries;
}
