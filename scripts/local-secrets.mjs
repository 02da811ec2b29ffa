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

export function toDotenv(values) {
  return Object.entries(values)
    .map(([key, value]) => `${key}='${value}'`)
    .join("\n") + "\n";
}

export function parseDotenv(text) {
  const values = {};
  for (const line of text.split("\n")) {
    const match = /^([A-Z0-9_]+)='(.*)'$/.exec(line.trim());
    if (match) values[match[1]] = match[2];
  }
  return values;
}

/** Reads `path`, creating it with fresh secrets first when it does not exist. */
export async function ensureSecretsFile(path) {
  if (!existsSync(path)) writeFileSync(path, toDotenv(await generateSecrets()), { mode: 0o600 });
  return parseDotenv(readFileSync(path, "utf8"));
}
