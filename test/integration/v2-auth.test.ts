import { env } from "cloudflare:workers";
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import {
  SERVICE,
  basic,
  bearer,
  call,
  createNamespace,
  createServiceAccount,
  expectOciError,
  tokenFor,
} from "../helpers/registry";

const REALM = "https://registry.test/token";
let ns: string;
let reader: { username: string; secret: string };
let writer: { username: string; secret: string };

beforeAll(async () => {
  ns = (await createNamespace()).name;
  const r = await createServiceAccount(ns, "reader", [{ namespace: ns, role: "read" }]);
  const w = await createServiceAccount(ns, "writer", [{ namespace: ns, role: "write" }]);
  reader = { username: r.username, secret: r.token };
  writer = { username: w.username, secret: w.token };
});

const wwwAuthenticate = (response: Response) => response.headers.get("WWW-Authenticate");

describe("GET /v2/ challenge", () => {
  it("without a token: 401, exactly one Bearer challenge, OCI UNAUTHORIZED body, API version header", async () => {
    const response = await call("/v2/");
    expect(wwwAuthenticate(response)).toBe(`Bearer realm="${REALM}",service="${SERVICE}"`);
    expect(response.headers.get("Docker-Distribution-API-Version")).toBe("registry/2.0");
    await expectOciError(response, 401, "UNAUTHORIZED");
  });

  it("stays 401 when anonymous pulls exist (clients take challenges only from /v2/)", async () => {
    await createNamespace(undefined, true);
    expect((await call("/v2/")).status).toBe(401);
  });

  it("Basic credentials are not accepted on /v2/: a Bearer challenge is answered", async () => {
    const response = await call("/v2/", { headers: { Authorization: basic(reader.username, reader.secret) } });
    expect(response.status).toBe(401);
    expect(wwwAuthenticate(response)).toMatch(/^Bearer /);
  });

  it("any valid token, even with empty access, → 200", async () => {
    const token = await tokenFor(reader, []);
    const response = await call("/v2/", { headers: bearer(token) });
    expect(response.status).toBe(200);
    expect(response.headers.get("Docker-Distribution-API-Version")).toBe("registry/2.0");
  });
});

describe("repository routes", () => {
  it("no token: 401 naming the needed scope", async () => {
    const response = await call(`/v2/${ns}/app/manifests/latest`, { method: "HEAD" });
    expect(response.status).toBe(401);
    expect(await response.text()).toBe("");
    expect(wwwAuthenticate(response)).toBe(`Bearer realm="${REALM}",service="${SERVICE}",scope="repository:${ns}/app:pull"`);
  });

  it("a token without the scope: insufficient_scope with exactly one scope", async () => {
    const token = await tokenFor(reader, [`repository:${ns}/app:pull`]);
    const response = await call(`/v2/${ns}/app/blobs/uploads/`, { method: "POST", headers: bearer(token) });
    expect(wwwAuthenticate(response)).toBe(
      `Bearer realm="${REALM}",service="${SERVICE}",scope="repository:${ns}/app:pull,push",error="insufficient_scope"`,
    );
    await expectOciError(response, 401, "UNAUTHORIZED");
  });

  it("a mount without pull on `from` is not refused: 202 and an upload session, no challenge", async () => {
    const token = await tokenFor(writer, [`repository:${ns}/app:pull,push`]);
    const digest = `sha256:${"a".repeat(64)}`;
    const response = await call(`/v2/${ns}/app/blobs/uploads/?mount=${digest}&from=other/src`, { method: "POST", headers: bearer(token) });
    expect(response.status).toBe(202);
    expect(wwwAuthenticate(response)).toBeNull();
  });

  it("DELETE needs delete; _catalog needs registry:catalog:*", async () => {
    const token = await tokenFor(writer, [`repository:${ns}/app:*`, "registry:catalog:*"]);
    const del = await call(`/v2/${ns}/app/manifests/sha256:${"b".repeat(64)}`, { method: "DELETE", headers: bearer(token) });
    expect(wwwAuthenticate(del)).toContain(`scope="repository:${ns}/app:delete",error="insufficient_scope"`);
    const catalog = await call("/v2/_catalog", { headers: bearer(token) });
    expect(wwwAuthenticate(catalog)).toBe(`Bearer realm="${REALM}",service="${SERVICE}",scope="registry:catalog:*",error="insufficient_scope"`);
  });

  it("invalid names answer NAME_INVALID before any authorization", async () => {
    for (const path of ["/v2/Acme/app/tags/list", "/v2/acme%2Fapp/tags/list", "/v2/acme/.hidden/tags/list", "/v2/acme//app/tags/list", `/v2/a/${"b".repeat(300)}/tags/list`]) {
      await expectOciError(await call(path), 400, "NAME_INVALID");
    }
  });
});

describe("forged and stale tokens → 401 invalid_token", () => {
  const now = () => Math.floor(Date.now() / 1000);
  let registryKey: CryptoKey;
  let registryKid: string;
  let publicJwk: JWK;

  beforeAll(async () => {
    const { keys } = JSON.parse(env.SIGNING_KEYS) as { keys: JWK[] };
    const jwk = keys[0]!;
    publicJwk = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
    registryKid = await calculateJwkThumbprint(publicJwk);
    registryKey = (await importJWK(jwk, "ES256")) as CryptoKey;
  });

  const claims = (overrides: Record<string, unknown> = {}) => ({
    iss: SERVICE,
    aud: SERVICE,
    sub: "forger",
    iat: now(),
    nbf: now(),
    exp: now() + 300,
    jti: crypto.randomUUID(),
    access: [{ type: "repository", name: `${ns}/app`, actions: ["pull", "push", "delete"] }],
    ...overrides,
  });

  const b64url = (value: unknown) => btoa(JSON.stringify(value)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

  async function signWithRegistryKey(payload: Record<string, unknown>, header: Record<string, unknown> = {}) {
    return new SignJWT(payload).setProtectedHeader({ alg: "ES256", typ: "JWT", kid: registryKid, ...header }).sign(registryKey);
  }

  const forgeries: [string, () => Promise<string>][] = [
    ["alg none", async () => `${b64url({ alg: "none", typ: "JWT", kid: registryKid })}.${b64url(claims())}.`],
    [
      "HS256 keyed with the public key",
      async () =>
        new SignJWT(claims())
          .setProtectedHeader({ alg: "HS256", typ: "JWT", kid: registryKid })
          .sign(new TextEncoder().encode(JSON.stringify(publicJwk))),
    ],
    [
      "unknown kid",
      async () => {
        const { privateKey } = await generateKeyPair("ES256");
        return new SignJWT(claims()).setProtectedHeader({ alg: "ES256", typ: "JWT", kid: "attacker" }).sign(privateKey);
      },
    ],
    [
      "embedded jwk with the registry's kid",
      async () => {
        const { privateKey, publicKey } = await generateKeyPair("ES256");
        return new SignJWT(claims())
          .setProtectedHeader({ alg: "ES256", typ: "JWT", kid: registryKid, jwk: await exportJWK(publicKey) })
          .sign(privateKey);
      },
    ],
    ["expired past the 60 s leeway", () => signWithRegistryKey(claims({ iat: now() - 400, nbf: now() - 400, exp: now() - 61 }))],
    ["not yet valid past the leeway", () => signWithRegistryKey(claims({ nbf: now() + 120 }))],
    ["issued in the future", () => signWithRegistryKey(claims({ iat: now() + 600, nbf: now(), exp: now() + 900 }))],
    ["lifetime over the maximum", () => signWithRegistryKey(claims({ exp: now() + 86_400 }))],
    ["wrong issuer", () => signWithRegistryKey(claims({ iss: "someone-else" }))],
    ["wrong audience (a token minted for another service)", () => signWithRegistryKey(claims({ aud: "other-registry" }))],
    ["missing jti", () => signWithRegistryKey(claims({ jti: undefined }))],
    ["malformed access claim", () => signWithRegistryKey(claims({ access: "everything" }))],
    ["wrong typ", () => signWithRegistryKey(claims(), { typ: "at+jwt" })],
    [
      "tampered payload",
      async () => {
        const real = await tokenFor(reader, [`repository:${ns}/app:pull`]);
        const [header, , signature] = real.split(".");
        return `${header}.${b64url(claims({ sub: reader.username }))}.${signature}`;
      },
    ],
    [
      "swapped signature",
      async () => {
        const a = await tokenFor(reader, [`repository:${ns}/app:pull`]);
        const b = await tokenFor(writer, [`repository:${ns}/app:pull,push`]);
        return `${b.split(".").slice(0, 2).join(".")}.${a.split(".")[2]}`;
      },
    ],
    ["garbage", async () => "not-a-jwt"],
  ];

  it.each(forgeries)("%s", async (_label, forge) => {
    const token = await forge();
    for (const path of ["/v2/", `/v2/${ns}/app/tags/list`]) {
      const response = await call(path, { headers: bearer(token) });
      expect(response.status).toBe(401);
      expect(wwwAuthenticate(response)).toContain('error="invalid_token"');
      expect((await response.json()) as unknown).toMatchObject({ errors: [{ code: "UNAUTHORIZED" }] });
    }
  });

  it("a token signed by the registry's key with valid claims is accepted (the forgeries fail for their flaw alone)", async () => {
    const token = await signWithRegistryKey(claims());
    expect((await call("/v2/", { headers: bearer(token) })).status).toBe(200);
  });

  it("a token within the leeway is still accepted", async () => {
    const token = await signWithRegistryKey(claims({ iat: now() - 330, nbf: now() - 330, exp: now() - 30 }));
    expect((await call("/v2/", { headers: bearer(token) })).status).toBe(200);
  });
});
