import { beforeAll, describe, expect, it } from "vitest";
import { SERVICE, adminCall, basic, callAt, createNamespace, uniqueName } from "../helpers/registry";

let ns: string;

beforeAll(async () => {
  ns = (await createNamespace()).name;
});

type Created = { username: string; token: string; state: string; createdBy: string; expiresAt?: string };

async function create(extra: Record<string, unknown> = {}): Promise<Created> {
  const response = await adminCall("POST", "/service-accounts", { namespace: ns, name: uniqueName("sa"), grants: [{ namespace: ns, role: "read" }], ...extra });
  expect(response.status, await response.clone().text()).toBe(201);
  return response.json();
}

const path = (username: string) => `/service-accounts/${encodeURIComponent(username)}`;

/** A token request's status at location A, or another (test/helpers/registry.ts `callAt`). */
async function loginStatus(username: string, token: string, location = "a"): Promise<number> {
  return (await callAt(location, `/token?service=${SERVICE}&scope=repository:${ns}/app:pull`, { headers: { Authorization: basic(username, token) } })).status;
}

async function show(username: string): Promise<Record<string, unknown>> {
  return (await adminCall("GET", path(username))).json();
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Audit events and last-use times are written to KV directly (one fresh key per event; `lastused:` at most
 * once per 15 min per isolate), and KV reads and lists are eventually consistent: production may serve a
 * cached read or list page for 60 s (platform.md §1), the production-KV model of the tests for its TTL (5 s,
 * vitest.config.ts). Where the behaviour under test is "eventually visible", poll for at most the model's
 * TTL + 2 s.
 */
const EVENTUALLY = { timeout: 7_000, interval: 250 };
/** A test that polls once for EVENTUALLY needs more than vitest's default 5 s. */
const POLLING_TEST_TIMEOUT_MS = 20_000;

async function auditActions(target: string): Promise<string[]> {
  const response = await adminCall("GET", `/audit?since=${encodeURIComponent(new Date(Date.now() - 600_000).toISOString())}&limit=1000`);
  const { events } = (await response.json()) as { events: { action: string; target?: string }[] };
  // The API answers newest first; these assertions read oldest first.
  return events.filter((event) => event.target === target).map((event) => event.action).reverse();
}

describe("service-account lifecycle", () => {
  it("create: active, created by the admin, never a secret in show; the token logs in", { timeout: POLLING_TEST_TIMEOUT_MS }, async () => {
    const account = await create({ description: "CI pulls" });
    expect(account).toMatchObject({ state: "active", createdBy: "admin" });
    expect(await loginStatus(account.username, account.token)).toBe(200);
    const shown = await show(account.username);
    expect(JSON.stringify(shown)).not.toContain(account.token);
    expect(shown).not.toHaveProperty("tokenHash");
    await expect.poll(() => auditActions(account.username), EVENTUALLY).toEqual(["service-account.create"]);
  });

  it("last use is recorded (throttled) after a token request", { timeout: POLLING_TEST_TIMEOUT_MS }, async () => {
    const account = await create();
    expect((await show(account.username)).lastUsedAt).toBeNull();
    const before = Date.now();
    expect(await loginStatus(account.username, account.token)).toBe(200);
    // Written in the background to KV, and read from KV: eventually visible.
    await expect.poll(async () => (await show(account.username)).lastUsedAt, EVENTUALLY).toBeTypeOf("string");
    const lastUsedAt = Date.parse((await show(account.username)).lastUsedAt as string);
    expect(lastUsedAt).toBeGreaterThanOrEqual(before - 1000);
    expect(lastUsedAt).toBeLessThanOrEqual(Date.now());
  });

  it("rotation with an overlap: both tokens work, then only the new one", { timeout: POLLING_TEST_TIMEOUT_MS }, async () => {
    const account = await create();
    const rotated = await adminCall("POST", `${path(account.username)}/rotate`, { overlapSeconds: 2 });
    expect(rotated.status).toBe(200);
    const body = (await rotated.json()) as { token: string; previousTokenValidUntil: string; credentials: { podmanLogin: string } };
    expect(body.token).not.toBe(account.token);
    expect(body.credentials.podmanLogin).toContain(body.token);
    expect(typeof body.previousTokenValidUntil).toBe("string");
    expect(await loginStatus(account.username, account.token)).toBe(200);
    expect(await loginStatus(account.username, body.token)).toBe(200);
    await sleep(2_200);
    expect(await loginStatus(account.username, account.token)).toBe(401);
    expect(await loginStatus(account.username, body.token)).toBe(200);
    expect((await show(account.username)).previousTokenValidUntil).toBeUndefined();
    await expect.poll(() => auditActions(account.username), EVENTUALLY).toEqual(["service-account.create", "service-account.rotate"]);
  });

  it("rotation without overlap stops the old token at once; a second rotation drops the first token", async () => {
    const account = await create();
    const first = (await (await adminCall("POST", `${path(account.username)}/rotate`, { overlapSeconds: 3600 })).json()) as { token: string };
    const second = (await (await adminCall("POST", `${path(account.username)}/rotate`, {})).json()) as { token: string };
    expect(await loginStatus(account.username, account.token)).toBe(401);
    expect(await loginStatus(account.username, first.token)).toBe(401);
    expect(await loginStatus(account.username, second.token)).toBe(200);
  });

  it("disable and enable", { timeout: POLLING_TEST_TIMEOUT_MS }, async () => {
    const account = await create();
    // Location B has the enabled record cached (KV and its login cache).
    expect(await loginStatus(account.username, account.token, "b")).toBe(200);
    expect((await adminCall("PATCH", path(account.username), { disabled: true })).status).toBe(200);
    expect((await show(account.username)).state).toBe("disabled");
    expect(await loginStatus(account.username, account.token)).toBe(401);
    // B may hold the disabled record now (KV, or its login cache): re-enabling works there at once all the same.
    expect(await loginStatus(account.username, account.token, "b")).toBeOneOf([200, 401]);
    expect((await adminCall("PATCH", path(account.username), { disabled: false })).status).toBe(200);
    expect(await loginStatus(account.username, account.token)).toBe(200);
    expect(await loginStatus(account.username, account.token, "b")).toBe(200);
    await expect
      .poll(() => auditActions(account.username), EVENTUALLY)
      .toEqual(["service-account.create", "service-account.update", "service-account.update"]);
  });

  it("expiry: refused once expiresAt passes; expiry can be set and cleared; a past expiry is refused", async () => {
    const account = await create({ expiresAt: new Date(Date.now() + 1500).toISOString() });
    expect(await loginStatus(account.username, account.token)).toBe(200);
    await sleep(1_700);
    expect(await loginStatus(account.username, account.token)).toBe(401);
    expect((await show(account.username)).state).toBe("expired");
    expect((await adminCall("PATCH", path(account.username), { expiresAt: null })).status).toBe(200);
    expect(await loginStatus(account.username, account.token)).toBe(200);
    const past = await adminCall("POST", "/service-accounts", { namespace: ns, name: uniqueName("late"), expiresAt: "2000-01-01T00:00:00Z" });
    expect(past.status).toBe(400);
  });

  it("delete: the token stops, and the failure is audited without the secret", { timeout: POLLING_TEST_TIMEOUT_MS }, async () => {
    const account = await create();
    expect((await adminCall("DELETE", path(account.username))).status).toBe(204);
    expect(await loginStatus(account.username, account.token)).toBe(401);
    // Failed logins are kept apart from admin changes: asked for with action=auth.failure (a KV list: eventually visible).
    const failures = async () => {
      const response = await adminCall("GET", `/audit?actor=${encodeURIComponent(account.username)}&action=auth.failure`);
      return ((await response.json()) as { events: { action: string; detail: string }[] }).events;
    };
    await expect.poll(async () => (await failures()).map((event) => event.action), EVENTUALLY).toContain("auth.failure");
    const events = await failures();
    expect(events.find((event) => event.action === "auth.failure")!.detail).toContain("unknown-account");
    expect(JSON.stringify(events)).not.toContain(account.token);
  });

  it("rotation input is validated", async () => {
    const account = await create();
    for (const overlapSeconds of [-1, 1.5, 8 * 24 * 3600, "60"]) {
      expect((await adminCall("POST", `${path(account.username)}/rotate`, { overlapSeconds })).status).toBe(400);
    }
    expect((await adminCall("POST", `${path(account.username)}/rotate`, { kubernetesNamespace: "Bad_NS" })).status).toBe(400);
    expect((await adminCall("POST", `/service-accounts/${encodeURIComponent("99999999|ghost")}/rotate`, {})).status).toBe(404);
  });
});

describe("audit queries", () => {
  it("filter by actor and time range, and reject bad ranges", { timeout: POLLING_TEST_TIMEOUT_MS }, async () => {
    const since = new Date(Date.now() - 1000).toISOString();
    await create();
    const byAdmin = async () => (await (await adminCall("GET", `/audit?since=${encodeURIComponent(since)}&actor=admin`)).json()) as { events: { actor: string }[] };
    await expect.poll(async () => (await byAdmin()).events.length, EVENTUALLY).toBeGreaterThan(0);
    const mine = await byAdmin();
    expect(mine.events.every((event) => event.actor === "admin")).toBe(true);
    const future = (await (await adminCall("GET", `/audit?since=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}&until=${encodeURIComponent(new Date(Date.now() + 7_200_000).toISOString())}`)).json()) as { events: unknown[] };
    expect(future.events).toEqual([]);
    expect((await adminCall("GET", "/audit?since=yesterday")).status).toBe(400);
    expect((await adminCall("GET", `/audit?since=${encodeURIComponent(new Date().toISOString())}&until=2000-01-01T00:00:00Z`)).status).toBe(400);
    expect((await adminCall("GET", "/audit?limit=0")).status).toBe(400);
  });
});
