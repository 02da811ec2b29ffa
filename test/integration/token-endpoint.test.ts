import { env } from "cloudflare:workers";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { SERVICE, basic, call, createNamespace, createServiceAccount, createUser, uniqueName } from "../helpers/registry";

let ns: string;
let puller: { username: string; token: string };
let pusher: { username: string; token: string };
const USER_PASSWORD = "correct horse battery staple";
let user: string;

beforeAll(async () => {
  ns = (await createNamespace()).name;
  puller = await createServiceAccount(ns, "ci-puller", [{ namespace: ns, role: "read" }]);
  pusher = await createServiceAccount(ns, "ci-pusher", [{ namespace: ns, role: "write" }]);
  user = uniqueName("alice");
  await createUser(user, USER_PASSWORD, [{ repository: `${ns}/web`, role: "admin" }]);
});

function tokenUrl(params: Record<string, string | string[]>): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) for (const v of [value].flat()) query.append(key, v);
  return `/token?${query}`;
}

async function getToken(params: Record<string, string | string[]>, authorization?: string) {
  const response = await call(tokenUrl({ service: SERVICE, ...params }), authorization ? { headers: { Authorization: authorization } } : {});
  return { response, body: (await response.json()) as Record<string, unknown> };
}

const accessOf = (token: unknown) => (decodeJwt(String(token)) as { access: { type: string; name: string; actions: string[] }[] }).access;

describe("GET /token", () => {
  it("service-account login without scope (podman login) → 200 with an empty-access token", async () => {
    const { response, body } = await getToken({ account: puller.username, client_id: "containers/image" }, basic(puller.username, puller.token));
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toMatch(/^application\/json/);
    expect(body.token).toBe(body.access_token);
    expect(accessOf(body.token)).toEqual([]);
    const claims = decodeJwt(String(body.token));
    expect(body.expires_in).toBe(claims.exp! - claims.iat!);
    expect(body.expires_in).toBeGreaterThanOrEqual(60);
    expect(new Date(String(body.issued_at)).toISOString()).toBe(body.issued_at);
    expect(claims).toMatchObject({ iss: SERVICE, aud: SERVICE, sub: puller.username });
    expect(typeof claims.jti).toBe("string");
    expect(claims.nbf).toBe(claims.iat);
  });

  it("signs ES256 with typ JWT and an RFC 7638 kid published at the JWKS endpoint", async () => {
    const { body } = await getToken({}, basic(puller.username, puller.token));
    const header = decodeProtectedHeader(String(body.token));
    expect(header.alg).toBe("ES256");
    expect(header.typ).toBe("JWT");
    const jwks = (await (await call("/.well-known/jwks.json")).json()) as { keys: { kid: string; d?: string }[] };
    expect(jwks.keys.map((key) => key.kid)).toContain(header.kid);
    expect(jwks.keys.every((key) => key.d === undefined)).toBe(true);
  });

  it("web user login works too, and the default lifetime is 5 minutes", async () => {
    const { response, body } = await getToken({ account: user }, basic(user, USER_PASSWORD));
    expect(response.status).toBe(200);
    expect(body.expires_in).toBe(300);
  });

  it.each([
    ["wrong service-account token", () => basic(puller.username, `${puller.token}x`)],
    ["unknown service account", () => basic("99999999|nobody", puller.token)],
    ["wrong password", () => basic(user, "not the password")],
    ["unknown user", () => basic("mallory", "whatever-password")],
    ["bootstrap admin with a wrong password", () => basic("admin", "nope")],
  ])("%s → 401 JSON, never an anonymous token", async (_label, authorization) => {
    for (const scope of [[], [`repository:${ns}/app:pull`]]) {
      const { response, body } = await getToken({ scope }, authorization());
      expect(response.status).toBe(401);
      expect(body.error).toBeTypeOf("string");
      expect(body.token).toBeUndefined();
    }
  });

  it("malformed Authorization → 401", async () => {
    for (const header of ["Basic !!!", "Basic " + btoa("nocolon"), "Digest abc"]) {
      const { response } = await getToken({}, header);
      expect(response.status).toBe(401);
    }
  });

  it("account that contradicts the Basic user → 400", async () => {
    const { response, body } = await getToken({ account: "someone-else" }, basic(puller.username, puller.token));
    expect(response.status).toBe(400);
    expect(body.error).toBe("invalid_request");
  });

  it("unknown service → 400; the audience never comes from the request", async () => {
    const response = await call(`/token?service=evil`, { headers: { Authorization: basic(puller.username, puller.token) } });
    expect(response.status).toBe(400);
  });

  it("grants the intersection of requested and held actions, per scope, repeated or space-joined", async () => {
    const auth = basic(puller.username, puller.token);
    const repeated = await getToken({ scope: [`repository:${ns}/app:pull,push`, `repository:other/app:pull`] }, auth);
    const joined = await getToken({ scope: `repository:${ns}/app:pull,push repository:other/app:pull` }, auth);
    const expected = [
      { type: "repository", name: `${ns}/app`, actions: ["pull"] },
      { type: "repository", name: "other/app", actions: [] },
    ];
    expect(accessOf(repeated.body.token)).toEqual(expected);
    expect(accessOf(joined.body.token)).toEqual(expected);
  });

  it("`*`, unknown actions, the plugin class, duplicates and bad names never escalate", async () => {
    const { body } = await getToken(
      {
        scope: [
          `repository:${ns}/app:*`,
          `repository(plugin):${ns}/app:push,delete`,
          `repository:${ns}/app:admin,frob`,
          `repository:${ns}/app:pull`,
          `repository:${ns.toUpperCase()}/app:pull`,
          `repository:127.0.0.1:5000/${ns}/app:pull`,
          `repository:${ns}/../x:pull`,
          "registry:catalog:*",
        ],
      },
      basic(puller.username, puller.token),
    );
    expect(accessOf(body.token)).toEqual([
      { type: "repository", name: `${ns}/app`, actions: ["pull"] },
      { type: "registry", name: "catalog", actions: [] },
    ]);
  });

  it("a repository admin asking `*` gets concrete actions (skopeo delete)", async () => {
    const { body } = await getToken({ scope: `repository:${ns}/web:*` }, basic(user, USER_PASSWORD));
    expect(accessOf(body.token)).toEqual([{ type: "repository", name: `${ns}/web`, actions: ["delete", "pull", "push"] }]);
  });

  it("anonymous: no scope → 401; a scope → a token with pull on public repositories only", async () => {
    expect((await getToken({})).response.status).toBe(401);
    const publicNs = (await createNamespace(uniqueName("pub"), true)).name;
    const { body } = await getToken({ scope: [`repository:${publicNs}/app:pull,push`, `repository:${ns}/app:pull`] });
    expect(decodeJwt(String(body.token)).sub).toBe("");
    expect(accessOf(body.token)).toEqual([
      { type: "repository", name: `${publicNs}/app`, actions: ["pull"] },
      { type: "repository", name: `${ns}/app`, actions: [] },
    ]);
  });

  it("a disabled service account cannot log in; a deleted user cannot either", async () => {
    const temp = await createServiceAccount(ns, uniqueName("tmp"), []);
    expect((await getToken({}, basic(temp.username, temp.token))).response.status).toBe(200);
    const { adminCall } = await import("../helpers/registry");
    await adminCall("PATCH", `/service-accounts/${encodeURIComponent(temp.username)}`, { disabled: true });
    expect((await getToken({}, basic(temp.username, temp.token))).response.status).toBe(401);
    const other = uniqueName("bob");
    await createUser(other, USER_PASSWORD);
    await adminCall("DELETE", `/users/${other}`);
    expect((await getToken({}, basic(other, USER_PASSWORD))).response.status).toBe(401);
  });

  it("service accounts do not depend on any user", async () => {
    const owner = uniqueName("owner");
    await createUser(owner, USER_PASSWORD, [{ namespace: ns, role: "admin" }]);
    const { adminCall } = await import("../helpers/registry");
    await adminCall("DELETE", `/users/${owner}`);
    expect((await getToken({ scope: `repository:${ns}/app:pull` }, basic(puller.username, puller.token))).response.status).toBe(200);
  });
});

describe("POST /token (OAuth2 password grant)", () => {
  function form(fields: [string, string][]): RequestInit {
    return {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded; charset=utf-8" },
      body: new URLSearchParams(fields).toString(),
    };
  }

  it("containerd form: charset, one space-joined scope → 200 with access_token, scope, expires_in, issued_at", async () => {
    const response = await call(
      "/token",
      form([
        ["grant_type", "password"],
        ["username", pusher.username],
        ["password", pusher.token],
        ["service", SERVICE],
        ["client_id", "containerd-client"],
        ["access_type", "offline"],
        ["scope", `repository:${ns}/app:pull,push repository:other/x:pull`],
      ]),
    );
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body.scope).toBe(`repository:${ns}/app:pull,push`);
    expect(body.expires_in).toBe(300);
    expect(typeof body.issued_at).toBe("string");
    expect(accessOf(body.access_token)).toEqual([
      { type: "repository", name: `${ns}/app`, actions: ["pull", "push"] },
      { type: "repository", name: "other/x", actions: [] },
    ]);
    expect(body.refresh_token).toBeUndefined();
  });

  it("containers/image form: repeated scope fields", async () => {
    const response = await call(
      "/token",
      form([
        ["grant_type", "password"],
        ["username", user],
        ["password", USER_PASSWORD],
        ["service", SERVICE],
        ["client_id", "containers/image"],
        ["scope", `repository:${ns}/web:pull`],
        ["scope", `repository:${ns}/web:push`],
      ]),
    );
    const body = (await response.json()) as Record<string, unknown>;
    expect(accessOf(body.access_token)).toEqual([{ type: "repository", name: `${ns}/web`, actions: ["pull", "push"] }]);
  });

  it.each([
    ["wrong password", [["grant_type", "password"], ["username", user], ["password", "nope"], ["service", SERVICE]], 401, "invalid_grant"],
    ["unsupported grant", [["grant_type", "client_credentials"], ["service", SERVICE]], 400, "unsupported_grant_type"],
    ["missing password", [["grant_type", "password"], ["username", user], ["service", SERVICE]], 400, "invalid_request"],
    ["unknown service", [["grant_type", "password"], ["username", user], ["password", USER_PASSWORD], ["service", "x"]], 400, "invalid_request"],
  ] as const)("%s → %i JSON", async (_label, fields, status, error) => {
    const response = await call("/token", form(fields.map(([k, v]) => [k, v === "" ? "" : v])));
    expect(response.status).toBe(status);
    expect(response.headers.get("Content-Type")).toMatch(/^application\/json/);
    expect(((await response.json()) as { error: string }).error).toBe(error);
  });

  it("wrong content type and oversized bodies are refused with JSON", async () => {
    const json = await call("/token", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    expect(json.status).toBe(400);
    const huge = await call("/token", form([["grant_type", "password"], ["scope", "x".repeat(20_000)]]));
    expect(huge.status).toBe(413);
    const put = await call("/token", { method: "PUT" });
    expect(put.status).toBe(405);
    expect(((await put.json()) as { error: string }).error).toBe("method_not_allowed");
  });

  it("password hashes are PBKDF2-SHA-256 at no more than production workerd's 100,000 iterations", async () => {
    const record = await env.REGISTRY_KV.get<{ password: { algorithm: string; iterations: number; salt: string } }>(`user:${user}`, "json");
    expect(record!.password.algorithm).toBe("pbkdf2-sha256");
    expect(record!.password.iterations).toBeLessThanOrEqual(100_000);
    expect(record!.password.iterations).toBeGreaterThanOrEqual(100_000);
    expect(JSON.stringify(record)).not.toContain(USER_PASSWORD);
  });

  it("service-account tokens are stored only as an HMAC", async () => {
    const record = await env.REGISTRY_KV.get<{ tokenHash: string }>(`sa:${puller.username}`, "json");
    expect(record!.tokenHash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(record)).not.toContain(puller.token);
    expect(puller.username).toMatch(/^[0-9]{8}\|ci-puller$/);
    expect(puller.token.length).toBeGreaterThanOrEqual(43);
  });
});

// Issue 10, defect 13: the work of a token request is bounded by what the caller holds.
describe("visibility lookups per token request", () => {
  const scopesFor = (names: string[]) => names.map((name) => `repository:${name}:pull`);

  it("an anonymous request naming more than 16 repositories is refused with invalid_scope", async () => {
    const names = Array.from({ length: 17 }, (_, i) => `${ns}/r${i}`);
    const { response, body } = await getToken({ scope: scopesFor(names) });
    expect(response.status).toBe(400);
    expect(body.error).toBe("invalid_scope");
  });

  it("64 scopes of one repository are one lookup, and 16 repositories are served", async () => {
    const same = await getToken({ scope: Array.from({ length: 64 }, () => `repository:${ns}/app:pull`) });
    expect(same.response.status).toBe(200);
    const sixteen = await getToken({ scope: scopesFor(Array.from({ length: 16 }, (_, i) => `${ns}/r${i}`)) });
    expect(sixteen.response.status).toBe(200);
    expect(accessOf(sixteen.body.token).every((entry) => entry.actions.length === 0)).toBe(true);
  });

  it("repositories the caller holds pull on need no lookup and do not count", async () => {
    const names = Array.from({ length: 40 }, (_, i) => `${ns}/held${i}`);
    const { response, body } = await getToken({ scope: scopesFor(names) }, basic(puller.username, puller.token));
    expect(response.status).toBe(200);
    expect(accessOf(body.token).every((entry) => entry.actions.join() === "pull")).toBe(true);
  });

  it("a public namespace makes all its repositories pullable with one lookup per namespace", async () => {
    const open = (await createNamespace(uniqueName("pub"), true)).name;
    const { body } = await getToken({ scope: scopesFor(Array.from({ length: 10 }, (_, i) => `${open}/r${i}`)) });
    expect(accessOf(body.token).map((entry) => entry.actions.join())).toEqual(Array(10).fill("pull"));
  });
});
