/**
 * Secrets the Worker must use again, not only check (an upstream registry's password, a webhook's signing
 * secret): AES-256-GCM under a key derived from the pepper with HKDF-SHA-256 (RFC 5869; info names the
 * purpose), a fresh 96-bit IV per seal, and associated data binding each sealed value to what it belongs to
 * (a sealed value moved to another record does not open). The plaintext is never stored, logged or returned.
 */
import { fromBase64Url, toBase64Url } from "./bytes";

const encoder = new TextEncoder();

export class SealedBox {
  private constructor(private readonly key: CryptoKey) {}

  static async create(pepper: string, purpose: string): Promise<SealedBox> {
    const material = await crypto.subtle.importKey("raw", encoder.encode(pepper), "HKDF", false, ["deriveKey"]);
    const key = await crypto.subtle.deriveKey(
      { name: "HKDF", hash: "SHA-256", salt: encoder.encode("edge-registry:sealed-box"), info: encoder.encode(`edge-registry:${purpose}`) },
      material,
      { name: "AES-GCM", length: 256 },
      false,
      ["encrypt", "decrypt"],
    );
    return new SealedBox(key);
  }

  /** `v1.<iv>.<ciphertext>` (base64url). */
  async seal(plaintext: string, boundTo: string): Promise<string> {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: encoder.encode(boundTo) }, this.key, encoder.encode(plaintext));
    return `v1.${toBase64Url(iv)}.${toBase64Url(new Uint8Array(sealed))}`;
  }

  /** The plaintext, or null when the value is malformed, was sealed for something else or under another pepper. */
  async open(sealed: string, boundTo: string): Promise<string | null> {
    const [version, iv, data] = sealed.split(".");
    if (version !== "v1" || !iv || !data) return null;
    try {
      const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: fromBase64Url(iv), additionalData: encoder.encode(boundTo) }, this.key, fromBase64Url(data));
      return new TextDecoder().decode(plain);
    } catch {
      return null;
    }
  }
}
