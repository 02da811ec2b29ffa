import { decodeProtectedHeader, exportJWK, generateKeyPair } from "jose";
import { describe, expect, it } from "vitest";
import { RegistryTokens } from "../../src/auth/registry-token";
import { loadSigningKeys } from "../../src/auth/signing-keys";

async function privateJwk() {
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  return exportJWK(privateKey);
}

const settings = { issuer: "edge-registry", audience: "edge-registry", lifetimeSeconds: 300 };

describe("signing-key rotation", () => {
  it("the first key signs; a retired key still verifies its tokens; both are published", async () => {
    const [oldKey, newKey] = [await privateJwk(), await privateJwk()];
    const before = new RegistryTokens(await loadSigningKeys(JSON.stringify({ keys: [oldKey] })), settings);
    const issuedBefore = (await before.issue("sa", [])).token;

    const rotated = await loadSigningKeys(JSON.stringify({ keys: [newKey, oldKey] }));
    const after = new RegistryTokens(rotated, settings);
    expect(await after.verify(issuedBefore)).toMatchObject({ subject: "sa" });
    const issuedAfter = (await after.issue("sa", [])).token;
    expect(decodeProtectedHeader(issuedAfter).kid).toBe(rotated.signer.kid);
    expect(decodeProtectedHeader(issuedAfter).kid).not.toBe(decodeProtectedHeader(issuedBefore).kid);
    expect(rotated.jwks.keys).toHaveLength(2);
    expect(rotated.jwks.keys.every((key) => key.d === undefined && key.alg === "ES256" && key.use === "sig")).toBe(true);

    const retiredRemoved = new RegistryTokens(await loadSigningKeys(JSON.stringify({ keys: [newKey] })), settings);
    expect(await retiredRemoved.verify(issuedBefore)).toBeUndefined();
    expect(await retiredRemoved.verify(issuedAfter)).toBeDefined();
  });

  it.each([
    ["not JSON", "nope"],
    ["no keys", '{"keys":[]}'],
    ["a public key only", async () => JSON.stringify({ keys: [{ ...(await privateJwk()), d: undefined }] })],
    ["an RSA key", '{"keys":[{"kty":"RSA","n":"x","e":"AQAB","d":"y"}]}'],
  ])("refuses %s", async (_label, value) => {
    const json = typeof value === "function" ? await value() : value;
    await expect(loadSigningKeys(json)).rejects.toThrow();
  });
});
