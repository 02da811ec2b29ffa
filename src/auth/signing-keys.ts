/**
 * The registry's own ES256 key set, from the SIGNING_KEYS secret: `{"keys":[<private JWK>, …]}`.
 * The first key signs; every key verifies and is published at the JWKS endpoint, so a retired key
 * stays accepted until its last token expires, and a next key can be published before it signs.
 * Each key's `kid` is its RFC 7638 thumbprint.
 */
import { calculateJwkThumbprint, importJWK, type CryptoKey, type JWK } from "jose";
import { ConfigError } from "../config/config";

export interface VerificationKey {
  kid: string;
  key: CryptoKey;
  publicJwk: JWK;
}

export interface SigningKeySet {
  signer: { kid: string; key: CryptoKey };
  verifiers: Map<string, VerificationKey>;
  /** `{"keys":[…]}` with public parts only. */
  jwks: { keys: JWK[] };
}

function publicPart(jwk: JWK): JWK {
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
}

export async function loadSigningKeys(json: string): Promise<SigningKeySet> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new ConfigError('SIGNING_KEYS is not JSON: expected {"keys":[<EC P-256 private JWK>, …]}');
  }
  const keys = (parsed as { keys?: unknown }).keys;
  if (!Array.isArray(keys) || keys.length === 0) throw new ConfigError("SIGNING_KEYS holds no keys");
  const verifiers = new Map<string, VerificationKey>();
  let signer: SigningKeySet["signer"] | undefined;
  for (const jwk of keys as JWK[]) {
    if (jwk.kty !== "EC" || jwk.crv !== "P-256" || !jwk.d) {
      throw new ConfigError("every SIGNING_KEYS entry must be an EC P-256 private JWK (ES256)");
    }
    const publicJwk = publicPart(jwk);
    const kid = await calculateJwkThumbprint(publicJwk, "sha256");
    verifiers.set(kid, {
      kid,
      key: (await importJWK(publicJwk, "ES256")) as CryptoKey,
      publicJwk: { ...publicJwk, kid, alg: "ES256", use: "sig" },
    });
    signer ??= { kid, key: (await importJWK(jwk, "ES256")) as CryptoKey };
  }
  return { signer: signer!, verifiers, jwks: { keys: [...verifiers.values()].map((v) => v.publicJwk) } };
}
