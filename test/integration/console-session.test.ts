/**
 * The web console's sessions (src/auth/console-sessions.ts, src/admin/console-session.ts) and how the admin
 * and account APIs accept them (src/admin/context.ts `authenticate`): the cookie's attributes, CSRF token and
 * Origin on every state change, sign-out, revocation by disable / password change / delete, the lifetime,
 * forged cookies, and that a session is never a refresh token at the token endpoint.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { CONSOLE_SESSION_SERVICE, MAX_SESSIONS_PER_USER, SESSION_LIFETIME_SECONDS } from "../../src/auth/console-sessions";
import { Hmac } from "../../src/crypto/secrets";
import type { UserRecord } from "../../src/storage/identity-store";
import { ORIGIN, SERVICE, adminCall, call, createNamespace, createUser, identityLedger, uniqueName } from "../helpers/registry";

const PASSWORD = "a long console password 1";
const COOKIE = "__Host-edge-registry-session";

let ns: string;
beforeAll(async () => {
  ns = (await createNamespace()).name;
});

interface Signed {
  cookie: string;
  csrfToken: string;
  setCookie: string;
}

function signInRequest(username: string, password: string, headers: Record<string, string> = { Origin: ORIGIN }) {
  return call("/console/v1/session", { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify({ username, password }) });
}

async function signIn(username: string, password = PASSWORD): Promise<Signed> {
  const response = await signInRequest(username, password);
  expect(response.status).toBe(200);
  const setCookie = response.headers.get("Set-Cookie")!;
  const body = (await response.json()) as { csrfToken: string };
  return { cookie: setCookie.split(";")[0]!, csrfToken: body.csrfToken, setCookie };
}

async function newUser(registryAdmin = false): Promise<string> {
  const username = uniqueName("web");
  await createUser(username, PASSWORD, [{ namespace: ns, role: "admin" }], registryAdmin);
  return username;
}

/** A state change with the session: a service account created in `ns`. */
function createAccount(session: Signed, headers: Record<string, string | undefined>) {
  const defined = Object.fromEntries(Object.entries(headers).filter((entry): entry is [string, string] => entry[1] !== undefined));
  return call("/admin/v1/service-accounts", {
    method: "POST",
    headers: { Cookie: session.cookie, "Content-Type": "application/json", ...defined },
    body: JSON.stringify({ namespace: ns, name: uniqueName("sa") }),
  });
}

const read = (session: Signed, path = "/admin/v1/namespaces") => call(path, { headers: { Cookie: session.cookie } });

describe("signing in", () => {
  it("sets an HttpOnly, Secure, SameSite=Strict, host-only cookie that lives no longer than the session", async () => {
    const session = await signIn(await newUser(true));
    const attributes = session.setCookie.split(";").map((part) => part.trim());
    expect(attributes[0]).toMatch(new RegExp(`^${COOKIE}=[A-Za-z0-9_-]{16}\\.[A-Za-z0-9_-]{43}$`));
    expect(attributes).toEqual(expect.arrayContaining(["HttpOnly", "Secure", "SameSite=Strict", "Path=/", `Max-Age=${SESSION_LIFETIME_SECONDS}`]));
    expect(session.setCookie).not.toMatch(/Domain=/i);
    expect(session.csrfToken).toMatch(/^[0-9a-f]{64}$/);
    const current = await call("/console/v1/session", { headers: { Cookie: session.cookie } });
    expect(await current.json()).toMatchObject({ registryAdmin: true, csrfToken: session.csrfToken });
    expect((await read(session)).status).toBe(200);
  });

  it("refuses a wrong password (audited), service accounts, the bootstrap admin, and a sign-in from another origin", async () => {
    const username = await newUser();
    expect((await signInRequest(username, "not the password at all")).status).toBe(401);
    const audit = await (await adminCall("GET", `/audit?action=auth.failure&actor=${username}`)).json<{ events: { detail: string }[] }>();
    expect(audit.events.some((event) => event.detail.includes("at the console"))).toBe(true);

    const account = await (await adminCall("POST", "/service-accounts", { namespace: ns, name: uniqueName("sa") })).json<{ username: string; token: string }>();
    expect((await signInRequest(account.username, account.token)).status).toBe(401);
    expect((await signInRequest("admin", env.BOOTSTRAP_ADMIN_PASSWORD)).status).toBe(401);

    // Login CSRF: a foreign page must not sign the browser in, nor may a request that hides its Origin.
    expect((await signInRequest(username, PASSWORD, { Origin: "https://evil.example" })).status).toBe(403);
    expect((await signInRequest(username, PASSWORD, {})).status).toBe(403);
    expect((await signInRequest(username, PASSWORD, { Origin: ORIGIN, "Sec-Fetch-Site": "cross-site" })).status).toBe(403);
  });
});

describe("state changes with a session", () => {
  let session: Signed;
  beforeAll(async () => {
    session = await signIn(await newUser(true));
  });

  it("need the session's CSRF token and the registry's own Origin", async () => {
    expect((await createAccount(session, { Origin: ORIGIN })).status).toBe(403);
    expect((await createAccount(session, { Origin: ORIGIN, "X-CSRF-Token": "0".repeat(64) })).status).toBe(403);
    expect((await createAccount(session, { "X-CSRF-Token": session.csrfToken })).status).toBe(403);
    expect((await createAccount(session, { Origin: "https://evil.example", "X-CSRF-Token": session.csrfToken })).status).toBe(403);
    // Another session's token does not fit this one.
    const other = await signIn(await newUser(true));
    expect((await createAccount(session, { Origin: ORIGIN, "X-CSRF-Token": other.csrfToken })).status).toBe(403);
    expect((await createAccount(session, { Origin: ORIGIN, "X-CSRF-Token": session.csrfToken })).status).toBe(201);
  });

  it("a form-encoded body is refused before the session is looked at", async () => {
    const response = await call("/admin/v1/service-accounts", {
      method: "POST",
      headers: { Cookie: session.cookie, Origin: ORIGIN, "X-CSRF-Token": session.csrfToken, "Content-Type": "text/plain" },
      body: '{"namespace":"x"}',
    });
    expect(response.status).toBe(415);
  });

  it("authorization stays the API's: a user who is not a registry administrator gets 403 on a registry administrator's route, its own account on the account API", async () => {
    const plain = await signIn(await newUser(false));
    // The user administers `ns` (README "Roles"): users are for registry administrators only.
    expect((await read(plain, "/admin/v1/users")).status).toBe(403);
    const tokens = await read(plain, "/account/v1/refresh-tokens");
    expect(tokens.status).toBe(200);
    const listed = (await tokens.json<{ refreshTokens: { service: string }[] }>()).refreshTokens;
    expect(listed.map((token) => token.service)).toEqual([CONSOLE_SESSION_SERVICE]);
  });
});

describe("session ends", () => {
  it("on sign-out (CSRF-checked), and the cookie is cleared", async () => {
    const session = await signIn(await newUser(true));
    const signOut = (headers: Record<string, string>) => call("/console/v1/session", { method: "DELETE", headers: { Cookie: session.cookie, ...headers } });
    expect((await signOut({ Origin: ORIGIN })).status).toBe(403);
    const done = await signOut({ Origin: ORIGIN, "X-CSRF-Token": session.csrfToken });
    expect(done.status).toBe(204);
    expect(done.headers.get("Set-Cookie")).toMatch(new RegExp(`^${COOKIE}=; Max-Age=0;`));
    expect((await read(session)).status).toBe(401);
  });

  it("when the user is disabled, changes password or is deleted", async () => {
    const disabled = await newUser(true);
    const a = await signIn(disabled);
    expect((await adminCall("PATCH", `/users/${disabled}`, { disabled: true })).status).toBe(200);
    expect((await read(a)).status).toBe(401);
    // Re-enabling does not bring the session back.
    expect((await adminCall("PATCH", `/users/${disabled}`, { disabled: false })).status).toBe(200);
    expect((await read(a)).status).toBe(401);

    const changer = await newUser(true);
    const b = await signIn(changer);
    const change = await call("/account/v1/password", {
      method: "PUT",
      headers: { Cookie: b.cookie, Origin: ORIGIN, "X-CSRF-Token": b.csrfToken, "Content-Type": "application/json" },
      body: JSON.stringify({ password: "another long password 2" }),
    });
    expect(change.status).toBe(204);
    expect((await read(b)).status).toBe(401);

    const deleted = await newUser(true);
    const c = await signIn(deleted);
    expect((await adminCall("DELETE", `/users/${deleted}`)).status).toBe(204);
    expect((await read(c)).status).toBe(401);
  });

  it("after its lifetime", async () => {
    const username = await newUser(true);
    const user = (await identityLedger().getPrincipal(`user/${username}`)) as UserRecord;
    const hmac = await Hmac.create(env.SECRET_PEPPER, "refresh-token");
    const issue = async (id: string, ageSeconds: number) => {
      const secret = "s".repeat(43);
      const createdAt = new Date(Date.now() - ageSeconds * 1000).toISOString();
      const record = { id, username, service: CONSOLE_SESSION_SERVICE, clientId: "console", secretHash: await hmac.signHex(secret), createdAt };
      expect((await identityLedger().issueRefreshToken(record, user.password)).ok).toBe(true);
      return { cookie: `${COOKIE}=${id}.${secret}`, csrfToken: "", setCookie: "" };
    };
    expect((await read(await issue("fresh-session-id", 60))).status).toBe(200);
    expect((await read(await issue("stale-session-id", SESSION_LIFETIME_SECONDS + 1))).status).toBe(401);
  });

  it("beyond the sessions a user may hold: the oldest ends", async () => {
    const username = await newUser(true);
    const first = await signIn(username);
    for (let index = 1; index < MAX_SESSIONS_PER_USER; index++) await signIn(username);
    expect((await read(first)).status).toBe(200);
    await signIn(username);
    expect((await read(first)).status).toBe(401);
    const tokens = (await identityLedger().listRefreshTokens(username)).filter((token) => token.service === CONSOLE_SESSION_SERVICE);
    expect(tokens.length).toBe(MAX_SESSIONS_PER_USER);
  });
});

describe("forged and misused cookies", () => {
  it("a made-up or altered cookie is refused", async () => {
    const session = await signIn(await newUser(true));
    const [id] = session.cookie.slice(COOKIE.length + 1).split(".");
    for (const value of [`${id}.${"A".repeat(43)}`, `${"B".repeat(16)}.${"C".repeat(43)}`, "garbage", `${id}`, ""]) {
      const response = await call("/admin/v1/namespaces", { headers: { Cookie: `${COOKIE}=${value}` } });
      expect(response.status).toBe(401);
      expect((await call("/console/v1/session", { headers: { Cookie: `${COOKIE}=${value}` } })).status).toBe(401);
    }
  });

  it("a session is not a refresh token at the token endpoint", async () => {
    const session = await signIn(await newUser(true));
    const response = await call("/token", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: session.cookie.slice(COOKIE.length + 1), service: SERVICE, client_id: "x" }),
    });
    expect(response.status).toBe(401);
  });

  it("Basic credentials win over a cookie: a session never upgrades a request that names another user", async () => {
    const session = await signIn(await newUser(true));
    const response = await call("/admin/v1/namespaces", { headers: { Cookie: session.cookie, Authorization: `Basic ${btoa("nobody-here:wrong password 123")}` } });
    expect(response.status).toBe(401);
  });
});
