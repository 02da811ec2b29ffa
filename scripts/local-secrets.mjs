// Generates the secrets local development needs, in dotenv form (used by `npm start` and the e2e tests).
import { webcrypto, randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";

export async function generateSecrets() {
  const { privateKey } = await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const jwk = await webcrypto.subtle.exportKey("jwk", privateKey);
  return {
    SIGNING_KEYS: JSON.stringify({ keys: [{ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, d: jwk.d }] }),
    SECRET_PEPPER: randomBytes(32).toString("base64url"),
    BOOTSTRAP_ADMIN_PASSWORD: randomBytes(18).toString("base64url"),
  };
}

/** @param {Record<string, string>} values */
export function toDotenv(values) {
  return Object.entries(values)
    .map(([key, value]) => `${key}='${value}'`)
    .join("\n") + "\n";
}

/** @param {string} text @returns {Record<string, string>} */
export function parseDotenv(text) {
  /** @type {Record<string, string>} */
  const values = {};
  for (const line of text.split("\n")) {
    const match = /^([A-Z0-9_]+)='(.*)'$/.exec(line.trim());
    if (match) values[/** @type {string} */ (match[1])] = /** @type {string} */ (match[2]);
  }
  return values;
}

/** Reads `path`, creating it with fresh secrets first when it does not exist. @param {string} path */
export async function ensureSecretsFile(path) {
  if (!existsSync(path)) writeFileSync(path, toDotenv(await generateSecrets()), { mode: 0o600 });
  return parseDotenv(readFileSync(path, "utf8"));
}
