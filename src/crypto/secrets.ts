/**
 * Secret handling: random tokens, keyed hashes under the pepper, password hashing and
 * constant-time comparison. Raw secrets are never stored or logged.
 */
import { fromBase64Url, toBase64Url, toHex } from "./bytes";

const encoder = new TextEncoder();

/** A URL-safe random secret of `bytes` random bytes (≥ 32 for credentials). */
export function randomSecret(bytes = 32): string {
  return toBase64Url(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** Compares two equal-length byte strings in constant time; unequal lengths are simply unequal. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return crypto.subtle.timingSafeEqual(a, b);
}

/** HMAC-SHA-256 keyed by a secret; used for service-account tokens, refresh tokens and URL signatures. */
export class Hmac {
  private constructor(private readonly key: CryptoKey) {}

  static async create(secret: string, purpose: string): Promise<Hmac> {
    // One pepper serves several purposes; each gets its own derived key so a MAC for one is useless for another.
    const master = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
    ]);
    const derived = await crypto.subtle.sign("HMAC", master, encoder.encode(`edge-registry:${purpose}`));
    const key = await crypto.subtle.importKey("raw", derived, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    return new Hmac(key);
  }

  async sign(message: string): Promise<Uint8Array> {
    return new Uint8Array(await crypto.subtle.sign("HMAC", this.key, encoder.encode(message)));
  }

  async signHex(message: string): Promise<string> {
    return toHex(await this.sign(message));
  }

  /** Compares HMAC(message) with a stored hex MAC in constant time. */
  async verifyHex(message: string, expectedHex: string): Promise<boolean> {
    const actual = await this.sign(message);
    const expected = hexToBytes(expectedHex);
    return expected !== undefined && constantTimeEqual(actual, expected);
  }
}

export function hexToBytes(hex: string): Uint8Array | undefined {
  if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/.test(hex)) return undefined;
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}

/**
 * Production workerd refuses PBKDF2 above 100,000 iterations ("iteration counts above 100000 are not
 * supported"); local workerd does not, so the cap is asserted here rather than discovered in production.
 */
export const MAX_PBKDF2_ITERATIONS = 100_000;
export const PASSWORD_ITERATIONS = 100_000;

export interface PasswordHash {
  algorithm: "pbkdf2-sha256";
  iterations: number;
  /** base64url. */
  salt: string;
  /** base64url, 32 bytes. */
  hash: string;
}

async function pbkdf2(password: Uint8Array, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  if (iterations > MAX_PBKDF2_ITERATIONS) throw new Error(`PBKDF2 iterations above ${MAX_PBKDF2_ITERATIONS}`);
  const key = await crypto.subtle.importKey("raw", password, "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, key, 256);
  return new Uint8Array(bits);
}

/** Password hashing: PBKDF2-SHA-256 over HMAC(pepper, password), with a per-user salt. */
export class PasswordHasher {
  constructor(private readonly pepper: Hmac) {}

  async hash(password: string, iterations = PASSWORD_ITERATIONS): Promise<PasswordHash> {
    const salt = crypto.getRandomValues(new Uint8Array(16));
    const derived = await pbkdf2(await this.pepper.sign(password), salt, iterations);
    return { algorithm: "pbkdf2-sha256", iterations, salt: toBase64Url(salt), hash: toBase64Url(derived) };
  }

  async verify(password: string, stored: PasswordHash): Promise<boolean> {
    const derived = await pbkdf2(await this.pepper.sign(password), fromBase64Url(stored.salt), stored.iterations);
    return constantTimeEqual(derived, fromBase64Url(stored.hash));
  }

  /** Spends the same time as a real check, so unknown users cannot be told from wrong passwords. */
  async burn(password: string): Promise<void> {
    await pbkdf2(await this.pepper.sign(password), new Uint8Array(16), PASSWORD_ITERATIONS);
  }
}
