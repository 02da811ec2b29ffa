import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import type { RefreshTokenRecord } from "../../src/storage/refresh-token-store";
import { SERVICE, adminCall, basic, callAt, createNamespace, createUser, uniqueName, untilIdentityPublished } from "../helpers/registry";

const PASSWORD = "a long web password 1";
let ns: string;

beforeAll(async () => {
  ns = (await createNamespace()).name;
});

async function newUser(): Promise<string> {
  const username = uniqueName("web");
  await createUser(username, PASSWORD, [{ namespace: ns, role: "write" }]);
  return username;
}

/** Requests at location A unless another is named (test/helpers/registry.ts `callAt`). */
const call = (path: string, init?: RequestInit, location = "a") => callAt(location, path, init);


/** The token's record as the ledger publishes it to KV (`refresh:<id>`), once published. */
async function untilPublishedRecord(id: string): Promise<RefreshTokenRecord> {
  await untilIdentityPublished(async () => (await env.REGISTRY_KV.get(`refresh:${id}`)) !== null);
  return (await env.REGISTRY_KV.get<RefreshTokenRecord>(`refresh:${id}`, "json"))!;
}

/** docker login: GET with offline_token=true and client_id=docker. */
async function dockerLogin(username: string, password = PASSWORD, location = "a") {
  const response = await call(`/token?service=${SERVICE}&offline_token=true&client_id=docker&account=${username}`, {
    headers: { Authorization: basic(username, password) },
  }, location);
  return { status: response.status, body: (await response.json()) as Record<string, string> };
}

function refresh(refreshToken: string, extra: [string, string][] = [], location = "a") {
  return call("/token", {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams([
      ["grant_type", "refresh_token"],
      ["refresh_token", refreshToken],
      ["service", SERVICE],
      ["client_id", "containerd-client"],
      ["scope", `repository:${ns}/app:pull,push`],
      ...extra,
    ]).toString(),
  }, location);
}

describe("refresh tokens (identity tokens)", () => {
  it("a web user's docker login returns a reusable refresh token that grants the user's access", async () => {
    const username = await newUser();
    const login = await dockerLogin(username);
    expect(login.status).toBe(200);
    expect(login.body.refresh_token).toMatch(/^[\w-]+\.[\w-]+$/);
    for (let i = 0; i < 2; i++) {
      const response = await refresh(login.body.refresh_token!);
      expect(response.status).toBe(200);
      const body = (await response.json()) as { scope: string; refresh_token?: string };
      expect(body.scope).toBe(`repository:${ns}/app:pull,push`);
      expect(body.refresh_token).toBeUndefined();
    }
    const offline = (await (await refresh(login.body.refresh_token!, [["access_type", "offline"]])).json()) as { refresh_token: string };
    expect(offline.refresh_token).toBe(login.body.refresh_token);
  });

  it("POST password grant with access_type=offline issues one too; service accounts never get one", async () => {
    const username = await newUser();
    const form = (user: string, password: string) =>
      call("/token", {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "password", username: user, password, service: SERVICE, client_id: "docker", access_type: "offline" }).toString(),
      });
    expect(((await (await form(username, PASSWORD)).json()) as { refresh_token?: string }).refresh_token).toBeTruthy();
    const sa = (await (await adminCall("POST", "/service-accounts", { namespace: ns, name: uniqueName("robot") })).json()) as { username: string; token: string };
    expect(((await (await form(sa.username, sa.token)).json()) as { refresh_token?: string }).refresh_token).toBeUndefined();
    const get = await call(`/token?service=${SERVICE}&offline_token=true`, { headers: { Authorization: basic(sa.username, sa.token) } });
    expect(((await get.json()) as { refresh_token?: string }).refresh_token).toBeUndefined();
  });

  it("users list and revoke their own tokens; admins can too; revoked tokens fail", async () => {
    const username = await newUser();
    const first = (await dockerLogin(username)).body.refresh_token!;
    const second = (await dockerLogin(username)).body.refresh_token!;
    const own = await call("/account/v1/refresh-tokens", { headers: { Authorization: basic(username, PASSWORD) } });
    const listed = (await own.json()) as { refreshTokens: { id: string; clientId: string; secretHash?: string }[] };
    expect(listed.refreshTokens.map((token) => token.id).sort()).toEqual([first.split(".")[0], second.split(".")[0]].sort());
    expect(JSON.stringify(listed)).not.toContain(first.split(".")[1]);
    expect(listed.refreshTokens[0]!.secretHash).toBeUndefined();
    const revoke = await call(`/account/v1/refresh-tokens/${first.split(".")[0]}`, { method: "DELETE", headers: { Authorization: basic(username, PASSWORD) } });
    expect(revoke.status).toBe(204);
    expect((await refresh(first)).status).toBe(401);
    expect((await refresh(second)).status).toBe(200);
    expect((await adminCall("DELETE", `/users/${username}/refresh-tokens/${second.split(".")[0]}`)).status).toBe(204);
    expect((await refresh(second)).status).toBe(401);
  });

  it("another user cannot revoke or list my tokens", async () => {
    const owner = await newUser();
    const other = await newUser();
    const token = (await dockerLogin(owner)).body.refresh_token!;
    const attempt = await call(`/account/v1/refresh-tokens/${token.split(".")[0]}`, { method: "DELETE", headers: { Authorization: basic(other, PASSWORD) } });
    expect(attempt.status).toBe(404);
    expect((await refresh(token)).status).toBe(200);
  });

  it("changing the password (self or admin reset), disabling or deleting the user ends refresh tokens", async () => {
    const username = await newUser();
    const token = (await dockerLogin(username)).body.refresh_token!;
    const change = await call("/account/v1/password", {
      method: "PUT",
      headers: { Authorization: basic(username, PASSWORD), "Content-Type": "application/json" },
      body: JSON.stringify({ password: "my brand new password" }),
    });
    expect(change.status).toBe(204);
    expect((await refresh(token)).status).toBe(401);
    expect((await dockerLogin(username)).status).toBe(401);
    const again = (await dockerLogin(username, "my brand new password")).body.refresh_token!;
    await adminCall("PATCH", `/users/${username}`, { disabled: true });
    expect((await refresh(again)).status).toBe(401);
    // Issue 10, defect 7: re-enabling the user does not bring a token back; a new login issues a new one.
    await adminCall("PATCH", `/users/${username}`, { disabled: false });
    expect((await refresh(again)).status).toBe(401);
    const afterEnable = (await dockerLogin(username, "my brand new password")).body.refresh_token!;
    expect((await refresh(afterEnable)).status).toBe(200);
    await adminCall("DELETE", `/users/${username}`);
    expect((await refresh(afterEnable)).status).toBe(401);
    // A new user of the same name inherits none of the old user's tokens.
    await createUser(username, PASSWORD, [{ namespace: ns, role: "write" }]);
    expect((await refresh(afterEnable)).status).toBe(401);
  });

  it("a token record KV still serves after a disable and re-enable stays ended (the user's epoch, not the record, ends it)", async () => {
    const username = await newUser();
    const token = (await dockerLogin(username)).body.refresh_token!;
    const id = token.split(".")[0]!;
    expect((await refresh(token)).status).toBe(200);
    const published = await untilPublishedRecord(id);
    expect(published).toMatchObject({ id, username, service: SERVICE });
    await adminCall("PATCH", `/users/${username}`, { disabled: true });
    await adminCall("PATCH", `/users/${username}`, { disabled: false });
    // The ledger deleted the token with the disable, in the same transaction.
    const listed = (await (await adminCall("GET", `/users/${username}/refresh-tokens`)).json()) as { refreshTokens: unknown[] };
    expect(listed.refreshTokens).toEqual([]);
    // A location whose KV copy of the token's record is stale still serves it (platform.md §1): put it back.
    await env.REGISTRY_KV.put(`refresh:${id}`, JSON.stringify(published));
    expect((await refresh(token)).status).toBe(401);
    // Elsewhere too, once the user's record with its new epoch is published (before that, the documented
    // revocation window applies: SECURITY.md).
    await untilIdentityPublished(async () => {
      const user = await env.REGISTRY_KV.get<{ disabled: boolean; refreshEpoch?: string }>(`user:${username}`, "json");
      return user !== null && !user.disabled && user.refreshEpoch !== published.epoch;
    });
    await env.REGISTRY_KV.put(`refresh:${id}`, JSON.stringify(published));
    expect((await refresh(token, [], "b")).status).toBe(401);
  });

  it("a token issued at one location redeems at another at once, and is listed at once", async () => {
    const username = await newUser();
    // Location B looks the user up first (KV caches what it read, misses included).
    expect((await refresh(`${"A".repeat(16)}.${"B".repeat(43)}`, [], "b")).status).toBe(401);
    const token = (await dockerLogin(username)).body.refresh_token!;
    expect((await refresh(token, [], "b")).status).toBe(200);
    const own = await callAt("b", "/account/v1/refresh-tokens", { headers: { Authorization: basic(username, PASSWORD) } });
    expect(((await own.json()) as { refreshTokens: { id: string }[] }).refreshTokens.map((entry) => entry.id)).toEqual([token.split(".")[0]]);
  });

  it("a login that raced a disable gets no refresh token; after the re-enable a login anywhere gets one that works at once", async () => {
    const username = await newUser();
    // Location B has the user's enabled record cached (KV and its login cache).
    expect((await dockerLogin(username, PASSWORD, "b")).status).toBe(200);
    expect((await adminCall("PATCH", `/users/${username}`, { disabled: true })).status).toBe(200);
    // B may still accept the password within the revocation window, but the ledger issues no token.
    const raced = await dockerLogin(username, PASSWORD, "b");
    expect([200, 401]).toContain(raced.status);
    expect(raced.body.refresh_token).toBeUndefined();
    expect((await adminCall("PATCH", `/users/${username}`, { disabled: false })).status).toBe(200);
    const login = await dockerLogin(username, PASSWORD, "b");
    expect(login.status).toBe(200);
    expect((await refresh(login.body.refresh_token!, [], "b")).status).toBe(200);
    expect((await refresh(login.body.refresh_token!)).status).toBe(200);
  });

  it.each([["garbage"], ["a.b.c"], ["x".repeat(300)], [""]])("malformed refresh token %j → 400/401 JSON", async (token) => {
    const response = await refresh(token);
    expect([400, 401]).toContain(response.status);
    expect(response.headers.get("Content-Type")).toMatch(/^application\/json/);
  });

  it("a refresh token is bound to its service", async () => {
    const username = await newUser();
    const token = (await dockerLogin(username)).body.refresh_token!;
    const response = await call("/token", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: token, service: "other-registry" }).toString(),
    });
    expect(response.status).toBe(400);
  });

  it("the account API is for web users with their own credentials", async () => {
    const sa = (await (await adminCall("POST", "/service-accounts", { namespace: ns, name: uniqueName("bot") })).json()) as { username: string; token: string };
    expect((await call("/account/v1/refresh-tokens", { headers: { Authorization: basic(sa.username, sa.token) } })).status).toBe(403);
    expect((await call("/account/v1/refresh-tokens")).status).toBe(401);
  });
});
