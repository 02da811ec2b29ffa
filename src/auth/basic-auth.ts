/** Parses `Authorization: Basic base64(user:secret)` (RFC 7617). */
import { fromBase64 } from "../crypto/bytes";

export type BasicCredentials = { username: string; secret: string };

/**
 * Longest Authorization header accepted; real credentials are far shorter. Room for a 4 KiB username and a
 * 1 KiB secret, so that an oversized name is refused by the guarded login (throttled, audited) rather
 * than as a malformed header.
 */
export const MAX_AUTHORIZATION_LENGTH = 8192;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** undefined where there is no Basic header; "malformed" where there is one that cannot be read. */
export function parseBasicAuthorization(header: string | null): BasicCredentials | "malformed" | undefined {
  if (header === null) return undefined;
  const [scheme, encoded, ...rest] = header.trim().split(/\s+/);
  if (scheme?.toLowerCase() !== "basic") return undefined;
  if (!encoded || rest.length > 0 || header.length > MAX_AUTHORIZATION_LENGTH) return "malformed";
  let decoded: string;
  try {
    decoded = strictUtf8.decode(fromBase64(encoded));
  } catch {
    return "malformed";
  }
  const colon = decoded.indexOf(":");
  if (colon <= 0 || colon === decoded.length - 1) return "malformed";
  return { username: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}
