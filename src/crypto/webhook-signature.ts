/**
 * Webhook signatures as the Standard Webhooks specification defines them
 * (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md "Signature scheme"):
 * the secret is `whsec_` + base64 of 24 to 64 random bytes; the signature is HMAC-SHA-256, keyed by those
 * bytes, over `<webhook-id>.<webhook-timestamp>.<raw body>`, sent as `webhook-signature: v1,<base64>`.
 */
import { fromBase64 } from "./bytes";
import { constantTimeEqual } from "./secrets";

export const WEBHOOK_SECRET_PREFIX = "whsec_";
const MIN_KEY_BYTES = 24;
const MAX_KEY_BYTES = 64;

/** A fresh secret: 32 random bytes. */
export function generateWebhookSecret(): string {
  return WEBHOOK_SECRET_PREFIX + crypto.getRandomValues(new Uint8Array(32)).toBase64();
}

/** The key bytes of a `whsec_…` secret, or null when it is not one (24–64 bytes, standard base64). */
export function webhookSecretKey(secret: string): Uint8Array | null {
  if (!secret.startsWith(WEBHOOK_SECRET_PREFIX)) return null;
  const encoded = secret.slice(WEBHOOK_SECRET_PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) return null;
  try {
    const key = fromBase64(encoded);
    return key.length >= MIN_KEY_BYTES && key.length <= MAX_KEY_BYTES ? key : null;
  } catch {
    return null;
  }
}

async function hmac(key: Uint8Array, message: string): Promise<Uint8Array> {
  const cryptoKey = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", cryptoKey, new TextEncoder().encode(message)));
}

/** The `webhook-signature` header value for one delivery. */
export async function signWebhook(secret: string, id: string, timestampSeconds: number, body: string): Promise<string> {
  const key = webhookSecretKey(secret);
  if (!key) throw new Error("not a webhook secret");
  return `v1,${(await hmac(key, `${id}.${timestampSeconds}.${body}`)).toBase64()}`;
}

/**
 * The receiver's check (README "Notifications" has the same recipe for Node): a `v1,` signature among the
 * space-separated ones matches, and the timestamp is within `toleranceSeconds` of now (replay protection).
 */
export async function verifyWebhook(
  secret: string,
  headers: { id: string; timestamp: string; signature: string },
  body: string,
  nowSeconds = Math.floor(Date.now() / 1000),
  toleranceSeconds = 300,
): Promise<boolean> {
  const key = webhookSecretKey(secret);
  const timestamp = Number(headers.timestamp);
  if (!key || !Number.isInteger(timestamp) || Math.abs(nowSeconds - timestamp) > toleranceSeconds) return false;
  const expected = await hmac(key, `${headers.id}.${headers.timestamp}.${body}`);
  return headers.signature.split(" ").some((part) => {
    if (!part.startsWith("v1,")) return false;
    try {
      return constantTimeEqual(fromBase64(part.slice(3)), expected);
    } catch {
      return false;
    }
  });
}
