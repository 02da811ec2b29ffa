/** Cookies (RFC 6265): reading one by name, and the console's session cookie. */

/**
 * The console's session cookie. The `__Host-` prefix makes browsers accept it only with `Secure`, `Path=/`
 * and no `Domain` (RFC 6265bis §4.1.3.2), so no subdomain can set or shadow it.
 */
export const SESSION_COOKIE = "__Host-edge-registry-session";

/** The value of the first cookie named `name` in a Cookie header, or undefined. */
export function readCookie(header: string | null, name: string): string | undefined {
  if (header === null || header.length > 8192) return undefined;
  for (const part of header.split(";")) {
    const separator = part.indexOf("=");
    if (separator < 0) continue;
    if (part.slice(0, separator).trim() === name) return part.slice(separator + 1).trim();
  }
  return undefined;
}

/**
 * `HttpOnly` (no script reads it), `Secure`, `SameSite=Strict` (no cross-site request carries it), `Path=/`,
 * and a `Max-Age` no longer than the session; `maxAgeSeconds` 0 clears it.
 */
export function sessionCookie(value: string, maxAgeSeconds: number): string {
  return `${SESSION_COOKIE}=${value}; Max-Age=${maxAgeSeconds}; Path=/; Secure; HttpOnly; SameSite=Strict`;
}
