import { createExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { ORIGIN, adminCall, basic, call, createNamespace, createServiceAccount, createUser, tokenFor, uniqueName } from "../helpers/registry";

async function expectAdminError(response: Response, status: number, code: string) {
  expect(response.status).toBe(status);
  expect(response.headers.get("Content-Type")).toMatch(/^application\/json/);
  expect(((await response.json()) as { error: { code: string } }).error.code).toBe(code);
}

describe("admin authentication", () => {
  it("requires Basic credentials of a registry administrator", async () => {
    await expectAdminError(await call("/admin/v1/namespaces"), 401, "unauthorized");
    await expectAdminError(await call("/admin/v1/namespaces", { headers: { Authorization: basic("admin", "wrong") } }), 401, "unauthorized");
    const user = uniqueName("plain");
    await createUser(user, "a long enough password");
    await expectAdminError(await call("/admin/v1/namespaces", { headers: { Authorization: basic(user, "a long enough password") } }), 403, "forbidden");
    const adminUser = uniqueName("root");
    await createUser(adminUser, "a long enough password", [], true);
    expect((await call("/admin/v1/namespaces", { headers: { Authorization: basic(adminUser, "a long enough password") } })).status).toBe(200);
  });
});

describe("namespaces", () => {
  it("create, get, list, make public, delete; duplicates and bad names refused", async () => {
    const name = uniqueName("org");
    const created = await createNamespace(name);
    expect(created.organizationId).toMatch(/^[0-9]{8}$/);
    await expectAdminError(await adminCall("POST", "/namespaces", { name }), 409, "conflict");
    for (const bad of ["Bad", "a/b", "", "x".repeat(65), 7]) await expectAdminError(await adminCall("POST", "/namespaces", { name: bad }), 400, "invalid_request");
    expect(((await (await adminCall("GET", `/namespaces/${name}`)).json()) as { public: boolean }).public).toBe(false);
    expect(((await (await adminCall("PATCH", `/namespaces/${name}`, { public: true })).json()) as { public: boolean }).public).toBe(true);
    const list = (await (await adminCall("GET", "/namespaces")).json()) as { namespaces: { name: string }[] };
    expect(list.namespaces.map((n) => n.name)).toContain(name);
    expect((await adminCall("DELETE", `/namespaces/${name}`)).status).toBe(204);
    await expectAdminError(await adminCall("GET", `/namespaces/${name}`), 404, "not_found");
  });

  it("a single repository can be made public for anonymous pull", async () => {
    const ns = (await createNamespace()).name;
    const anon = async () => tokenFor(undefined, [`repository:${ns}/pub:pull`, `repository:${ns}/priv:pull`]);
    const { decodeJwt } = await import("jose");
    const before = decodeJwt(await anon()).access as { actions: string[] }[];
    expect(before.map((entry) => entry.actions)).toEqual([[], []]);
    expect((await adminCall("PATCH", `/repositories/${ns}/pub`, { public: true })).status).toBe(200);
    const after = decodeJwt(await anon()).access as { actions: string[] }[];
    expect(after.map((entry) => entry.actions)).toEqual([["pull"], []]);
  });
});

describe("users", () => {
  it("create (never showing the hash), list, disable, set password, delete", async () => {
    const username = uniqueName("carol");
    const created = await adminCall("POST", "/users", { username, password: "first password 123" });
    expect(created.status).toBe(201);
    const body = (await created.json()) as Record<string, unknown>;
    expect(body.password).toBeUndefined();
    expect(JSON.stringify(await (await adminCall("GET", "/users")).json())).not.toContain("hash");
    expect((await adminCall("PUT", `/users/${username}/password`, { password: "second password 456" })).status).toBe(204);
    await expect(tokenFor({ username, secret: "first password 123" }, [])).rejects.toThrow(/401/);
    await tokenFor({ username, secret: "second password 456" }, []);
    await adminCall("PATCH", `/users/${username}`, { disabled: true });
    await expect(tokenFor({ username, secret: "second password 456" }, [])).rejects.toThrow(/401/);
    expect((await adminCall("DELETE", `/users/${username}`)).status).toBe(204);
    await expectAdminError(await adminCall("GET", `/users/${username}`), 404, "not_found");
  });

  it.each([
    [{ username: "admin", password: "long enough password" }],
    [{ username: "UPPER", password: "long enough password" }],
    [{ username: "ok-name", password: "short" }],
    [{ username: "a:b", password: "long enough password" }],
    [{ password: "long enough password" }],
  ])("refuses %j", async (input) => {
    await expectAdminError(await adminCall("POST", "/users", input), 400, "invalid_request");
  });
});

describe("service accounts and grants", () => {
  it("create returns the token once with a login line; list and get never show it", async () => {
    const ns = (await createNamespace()).name;
    const response = await adminCall("POST", "/service-accounts", { namespace: ns, name: "deployer", description: "CD", grants: [{ namespace: ns, role: "write" }] });
    expect(response.status).toBe(201);
    const body = (await response.json()) as { username: string; token: string; credentials: { podmanLogin: string }; tokenHash?: string };
    expect(body.tokenHash).toBeUndefined();
    expect(body.credentials.podmanLogin).toBe(`printf '%s\\n' '${body.token}' | podman login --password-stdin -u '${body.username}' registry.test`);
    const listed = JSON.stringify(await (await adminCall("GET", "/service-accounts")).json());
    expect(listed).toContain(body.username);
    expect(listed).not.toContain(body.token);
    expect(listed).not.toContain("tokenHash");
    const got = (await (await adminCall("GET", `/service-accounts/${encodeURIComponent(body.username)}`)).json()) as Record<string, unknown>;
    expect(got).toMatchObject({ username: body.username, namespace: ns, description: "CD", disabled: false });
    await expectAdminError(await adminCall("POST", "/service-accounts", { namespace: ns, name: "deployer" }), 409, "conflict");
    await expectAdminError(await adminCall("POST", "/service-accounts", { namespace: "nope-missing", name: "x" }), 404, "not_found");
  });

  it("grant, list, revoke on users and service accounts; revocation applies to the next token", async () => {
    const ns = (await createNamespace()).name;
    const account = await createServiceAccount(ns, "flex", []);
    const path = `/service-accounts/${encodeURIComponent(account.username)}/grants`;
    const { decodeJwt } = await import("jose");
    const actions = async () =>
      (decodeJwt(await tokenFor({ username: account.username, secret: account.token }, [`repository:${ns}/app:pull,push,delete`])).access as { actions: string[] }[])[0]!.actions;
    expect(await actions()).toEqual([]);
    expect((await adminCall("PUT", path, { repository: `${ns}/app`, role: "admin" })).status).toBe(200);
    expect(await actions()).toEqual(["delete", "pull", "push"]);
    expect(((await (await adminCall("GET", path)).json()) as { grants: unknown[] }).grants).toEqual([
      { target: { kind: "repository", name: `${ns}/app` }, role: "admin" },
    ]);
    expect((await adminCall("DELETE", path, { repository: `${ns}/app` })).status).toBe(204);
    expect(await actions()).toEqual([]);
    await expectAdminError(await adminCall("DELETE", path, { repository: `${ns}/app` }), 404, "not_found");
    for (const bad of [{ namespace: ns, role: "owner" }, { namespace: ns, repository: `${ns}/a`, role: "read" }, { repository: "noslash", role: "read" }, {}]) {
      await expectAdminError(await adminCall("PUT", path, bad), 400, "invalid_request");
    }
    // A service account's grants stay inside its namespace (admin/admin-access.ts); a user's may name any existing one.
    await expectAdminError(await adminCall("PUT", path, { namespace: "missing-ns", role: "read" }), 400, "invalid_request");
    const user = uniqueName("granted");
    await createUser(user, "a long enough password");
    await expectAdminError(await adminCall("PUT", `/users/${user}/grants`, { namespace: "missing-ns", role: "read" }), 404, "not_found");
  });

  it("deleting a service account revokes it", async () => {
    const ns = (await createNamespace()).name;
    const account = await createServiceAccount(ns, "gone", [{ namespace: ns, role: "read" }]);
    expect((await adminCall("DELETE", `/service-accounts/${encodeURIComponent(account.username)}`)).status).toBe(204);
    await expect(tokenFor({ username: account.username, secret: account.token }, [])).rejects.toThrow(/401/);
  });

  it("bad JSON, unknown routes and oversized bodies get JSON errors", async () => {
    const response = await call("/admin/v1/users", {
      method: "POST",
      headers: { Authorization: basic("admin", env.BOOTSTRAP_ADMIN_PASSWORD), "Content-Type": "application/json" },
      body: "{",
    });
    await expectAdminError(response, 400, "invalid_request");
    await expectAdminError(await adminCall("GET", "/nothing"), 404, "not_found");
    await expectAdminError(await adminCall("POST", "/namespaces", { name: "x".repeat(70_000) }), 413, "invalid_request");
  });
});

describe("configuration", () => {
  it("refuses to serve (503) when a required secret is missing or malformed", async () => {
    for (const broken of [{ SIGNING_KEYS: undefined }, { SECRET_PEPPER: undefined }, { SECRET_PEPPER: "short" }, { SIGNING_KEYS: "{}" }, { TOKEN_LIFETIME_SECONDS: "5" }]) {
      const response = await worker.fetch(new Request(`${ORIGIN}/v2/`), { ...env, ...broken } as never, createExecutionContext());
      expect(response.status).toBe(503);
      expect(await response.text()).not.toMatch(/SIGNING|PEPPER/);
    }
    expect((await exports.default.fetch(new Request(`${ORIGIN}/v2/`))).status).toBe(401);
  });
});

// Issue 10, defect 2: what a hostile page can make an administrator's browser send.
describe("cross-site requests to the admin and account APIs", () => {
  const admin = () => basic("admin", env.BOOTSTRAP_ADMIN_PASSWORD);
  const createUserRequest = (username: string, headers: Record<string, string>) =>
    call("/admin/v1/users", {
      method: "POST",
      headers: { Authorization: admin(), ...headers },
      body: JSON.stringify({ username, password: "attacker chosen password", registryAdmin: true }),
    });

  it.each<[string, Record<string, string>, number, string]>([
    ["an HTML form's text/plain body from another site", { "Content-Type": "text/plain", Origin: "https://evil.example" }, 403, "forbidden"],
    ["text/plain with no Origin (older browsers)", { "Content-Type": "text/plain" }, 415, "unsupported_media_type"],
    ["a form-encoded body", { "Content-Type": "application/x-www-form-urlencoded" }, 415, "unsupported_media_type"],
    ["no Content-Type", {}, 415, "unsupported_media_type"],
    ["JSON marked cross-site by the browser", { "Content-Type": "application/json", "Sec-Fetch-Site": "cross-site" }, 403, "forbidden"],
    ["JSON from a sibling site", { "Content-Type": "application/json", "Sec-Fetch-Site": "same-site" }, 403, "forbidden"],
    ["JSON from another origin", { "Content-Type": "application/json", Origin: "https://evil.example" }, 403, "forbidden"],
    ["JSON from an opaque origin", { "Content-Type": "application/json", Origin: "null" }, 403, "forbidden"],
    ["JSON from the registry's origin on another port", { "Content-Type": "application/json", Origin: `${ORIGIN}:8443` }, 403, "forbidden"],
  ])("%s → refused, and no administrator is created", async (_label, headers, status, code) => {
    const username = uniqueName("csrf");
    await expectAdminError(await createUserRequest(username, headers), status, code);
    await expectAdminError(await adminCall("GET", `/users/${username}`), 404, "not_found");
  });

  // Only a request with a body needs a Content-Type: the CLI deletes without either.
  const deleteUserRequest = (username: string, init: RequestInit & { headers?: Record<string, string> }) =>
    call(`/admin/v1/users/${username}`, { ...init, method: "DELETE", headers: { Authorization: admin(), ...init.headers } });
  const emptyStream = () => new ReadableStream<Uint8Array>({ start: (controller) => controller.close() });
  const textStream = () => new ReadableStream<Uint8Array>({ start: (controller) => (controller.enqueue(new TextEncoder().encode("{}")), controller.close()) });

  it.each<[string, () => RequestInit & { headers?: Record<string, string> }, number]>([
    ["a DELETE without a body or Content-Type (the CLI's)", () => ({}), 204],
    ["a DELETE with Content-Length: 0 and no Content-Type", () => ({ headers: { "Content-Length": "0" }, body: "" }), 204],
    ["a DELETE with an empty body of unknown length (a proxy's) and no Content-Type", () => ({ body: emptyStream(), duplex: "half" } as RequestInit), 204],
    ["a DELETE with a text/plain body", () => ({ headers: { "Content-Type": "text/plain" }, body: "{}" }), 415],
    ["a DELETE with a body of unknown length and no Content-Type", () => ({ body: textStream(), duplex: "half" } as RequestInit), 415],
    ["a DELETE with a JSON body", () => ({ headers: { "Content-Type": "application/json" }, body: "{}" }), 204],
  ])("%s → %i", async (_label, init, status) => {
    const username = uniqueName("del");
    await createUser(username, "a long enough password");
    const response = await deleteUserRequest(username, init());
    if (status === 415) await expectAdminError(response, 415, "unsupported_media_type");
    else expect(response.status, await response.text()).toBe(status);
    // A refused request changed nothing.
    expect((await adminCall("GET", `/users/${username}`)).status).toBe(status === 204 ? 404 : 200);
  });

  it("a POST without a body needs no Content-Type: it is refused for the missing object (400), not 415", async () => {
    await expectAdminError(await call("/admin/v1/users", { method: "POST", headers: { Authorization: admin() } }), 400, "invalid_request");
  });

  it("same-origin browser requests and non-browser clients work", async () => {
    for (const headers of <Record<string, string>[]>[
      { "Content-Type": "application/json", Origin: ORIGIN, "Sec-Fetch-Site": "same-origin" },
      { "Content-Type": "application/json; charset=utf-8", "Sec-Fetch-Site": "none" },
      { "Content-Type": "application/json" },
    ]) {
      expect((await createUserRequest(uniqueName("ok"), headers)).status).toBe(201);
    }
  });

  it("the account API refuses cross-site requests too", async () => {
    const user = uniqueName("acct");
    await createUser(user, "a long enough password");
    const response = await call("/account/v1/password", {
      method: "PUT",
      headers: { Authorization: basic(user, "a long enough password"), "Content-Type": "text/plain", Origin: "https://evil.example" },
      body: JSON.stringify({ password: "attacker chosen password" }),
    });
    await expectAdminError(response, 403, "forbidden");
    expect((await tokenFor({ username: user, secret: "a long enough password" }, [])).length).toBeGreaterThan(0);
  });

  it.each([
    ["admin API", "/admin/v1/namespaces"],
    ["account API", "/account/v1/refresh-tokens"],
  ])("the %s's 401 never asks a browser for Basic credentials", async (_label, path) => {
    for (const init of [{}, { headers: { Authorization: basic("admin", "wrong") } }]) {
      const response = await call(path, init);
      expect(response.status).toBe(401);
      const challenge = response.headers.get("WWW-Authenticate") ?? "";
      // RFC 9110: a challenge is sent, but of a scheme no browser implements (no prompt, nothing cached).
      expect(challenge).not.toBe("");
      expect(challenge.split(",").map((part) => part.trim().split(/\s+/)[0]!.toLowerCase())).not.toContain("basic");
    }
  });
});

// Issue 10, defect 4: unknown fields are refused, so nothing unbounded reaches a change or its record.
describe("admin bodies hold known fields only, and every change is audited", () => {
  const junk = "\u0001".repeat(290);
  const newUser = async () => {
    const user = uniqueName("target");
    await createUser(user, "a long enough password");
    return user;
  };

  it("the issue's PATCH (registryAdmin plus a 290 × U+0001 field) is refused: no promotion, no 500", async () => {
    const user = uniqueName("promo");
    await createUser(user, "a long enough password");
    await expectAdminError(await adminCall("PATCH", `/users/${user}`, { registryAdmin: true, [junk]: 1 }), 400, "invalid_request");
    expect(((await (await adminCall("GET", `/users/${user}`)).json()) as { registryAdmin: boolean }).registryAdmin).toBe(false);
  });

  it.each<[string, string, () => Promise<[string, Record<string, unknown>]>]>([
    ["POST /users", "POST", async () => ["/users", { username: uniqueName("x"), password: "a long enough password", role: "admin" }]],
    ["POST /namespaces", "POST", async () => ["/namespaces", { name: uniqueName("x"), owner: "me" }]],
    ["PATCH /namespaces/<ns>", "PATCH", async () => [`/namespaces/${(await createNamespace()).name}`, { public: true, [junk]: 1 }]],
    ["PATCH /service-accounts/<sa>", "PATCH", async () => {
      const ns = (await createNamespace()).name;
      return [`/service-accounts/${encodeURIComponent((await createServiceAccount(ns, "patched", [])).username)}`, { disabled: true, [junk]: 1 }];
    }],
    ["POST /service-accounts, a grant with an unknown field", "POST", async () => {
      const ns = (await createNamespace()).name;
      return ["/service-accounts", { namespace: ns, name: "y", grants: [{ namespace: ns, role: "read", expires: 1 }] }];
    }],
    ["POST /service-accounts, a grant that is not an object", "POST", async () => {
      const ns = (await createNamespace()).name;
      return ["/service-accounts", { namespace: ns, name: "z", grants: ["read"] }];
    }],
    ["PUT …/grants", "PUT", async () => [`/users/${await newUser()}/grants`, { namespace: "x", role: "read", scope: "all" }]],
    ["PUT /users/<u>/password", "PUT", async () => [`/users/${await newUser()}/password`, { password: "a long enough password", old: "x" }]],
  ])("%s → 400", async (_label, method, request) => {
    const [path, body] = await request();
    await expectAdminError(await adminCall(method, path, body), 400, "invalid_request");
  });

  it("a change with the longest allowed values is audited, its record bounded", { timeout: 20_000 }, async () => {
    const ns = (await createNamespace()).name;
    const account = await createServiceAccount(ns, "longdesc", []);
    const path = `/service-accounts/${encodeURIComponent(account.username)}`;
    const response = await adminCall("PATCH", path, { description: "\u0001\"😀".repeat(120), disabled: true });
    expect(response.status).toBe(200);
    // The audit log is a KV list: eventually visible (platform.md §1; the production-KV model caches a list
    // page for its TTL of 5 s), so poll for at most the TTL + 2 s.
    const detail = async () => {
      const { events } = (await (await adminCall("GET", `/audit?action=service-account.update&limit=10`)).json()) as { events: { target: string; detail: string }[] };
      return events.find((item) => item.target === account.username)?.detail;
    };
    await expect.poll(detail, { timeout: 7_000, interval: 250 }).toBe("disabled=true, description changed");
  });
});
