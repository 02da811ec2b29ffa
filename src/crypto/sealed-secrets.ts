/**
 * Secrets the registry must use again (a webhook's signing secret), stored encrypted: AES-256-GCM under a key
 * derived from SECRET_PEPPER with HKDF-SHA-256 (RFC 5869), one key per purpose. The additional data binds a
 * sealed value to the record that holds it, so a sealed value copied into another record does not open.
 * Sealed form: base64url(12-byte IV ‖ ciphertext ‖ 16-byte tag).
 */
import { fromBase64Url, toBase64Url } from "./bytes";

const encoder = new TextEncoder();
const IV_BYTES = 12;

export class SecretSealer {
  private constructor(private readonly key: CryptoKey) {}

  static async create(pepper: string, purpose: string): Promise<SecretSealer> {
    const material = await crypto.subtle.importKey("raw", encoder.encode(pepper), "HKDF", false, ["deriveKey"]);
    const key = await crypto.subtle.deriveKey(
      { name: "HKDF", hash: "SHA-256", salt: encoder.encode("edge-registry sealed secrets"), info: encoder.encode(`edge-registry:${purpose}`) },
      material,
      { name: "AES-GCM", length: 256 },
      false,
      ["encrypt", "decrypt"],
    );
    return new SecretSealer(key);
  }

  async seal(plaintext: string, boundTo: string): Promise<string> {
    const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
    const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: encoder.encode(boundTo) }, this.key, encoder.encode(plaintext));
    const out = new Uint8Array(IV_BYTES + sealed.byteLength);
    out.set(iv);
    out.set(new Uint8Array(sealed), IV_BYTES);
    return toBase64Url(out);
  }

  /** Throws when the value was not sealed by this key for `boundTo` (or was changed). */
  async open(sealed: string, boundTo: string): Promise<string> {
    const bytes = fromBase64Url(sealed);
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: bytes.slice(0, IV_BYTES), additionalData: encoder.encode(boundTo) },
      this.key,
      bytes.slice(IV_BYTES),
    );
    return new TextDecoder().decode(plain);
  }
}
