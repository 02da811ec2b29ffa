/**
 * Issue 10, defects 4 and 13: audit queries are newest first, paginated by cursor, filtered by actor and
 * action from their own streams, and a flood of failed logins cannot bury admin changes.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { SERVICE, adminCall, basic, call, createNamespace, uniqueName } from "../helpers/registry";

type Event = { time: string; actor: string; action: string; target?: string; detail?: string };
type Page = { events: Event[]; cursor: string | null };

async function audit(query: Record<string, string>): Promise<Page> {
  const response = await adminCall("GET", `/audit?${new URLSearchParams(query)}`);
  expect(response.status, await response.clone().text()).toBe(200);
  return response.json();
}

const since = new Date(Date.now() - 60_000).toISOString();
let namespaces: string[];

beforeAll(async () => {
  namespaces = [];
  for (let i = 0; i < 5; i++) namespaces.push((await createNamespace(uniqueName("aud"))).name);
  // A flood of failed logins after the admin changes (the old query, oldest first, returned only these).
  await Promise.all(
    Array.from({ length: 150 }, (_, i) => call(`/token?service=${SERVICE}`, { headers: { Authorization: basic(`flood${i}`, "wrong") } })),
  );
}, 60_000);

describe("audit queries", () => {
  it("admin changes by default, newest first, not buried by failed logins", async () => {
    const page = await audit({ since, limit: "3" });
    expect(page.events.map((event) => event.action)).toEqual(["namespace.create", "namespace.create", "namespace.create"]);
    expect(page.events.map((event) => event.target)).toEqual([namespaces[4], namespaces[3], namespaces[2]]);
    expect(page.cursor).toBeTypeOf("string");
  });

  it("a cursor walks every page once, in order, and ends", async () => {
    const seen: Event[] = [];
    let cursor: string | null = null;
    do {
      const page: Page = await audit({ since, limit: "2", action: "namespace.create", ...(cursor ? { cursor } : {}) });
      expect(page.events.length).toBeLessThanOrEqual(2);
      seen.push(...page.events);
      cursor = page.cursor;
    } while (cursor);
    expect(seen.map((event) => event.target)).toEqual([...namespaces].reverse());
    const times = seen.map((event) => event.time);
    expect([...times].sort().reverse()).toEqual(times);
  });

  it("failed logins have their own stream, filterable by the name tried", async () => {
    const failures = await audit({ since, action: "auth.failure", limit: "1000" });
    expect(failures.events.length).toBe(150);
    expect(failures.events.every((event) => event.action === "auth.failure")).toBe(true);
    const one = await audit({ since, action: "auth.failure", actor: "flood3", limit: "1000" });
    expect(one.events.length).toBe(1);
    expect(one.events.every((event) => event.actor === "flood3")).toBe(true);
    // An actor's changes do not include failures under the same name.
    expect((await audit({ since, actor: "flood3" })).events).toEqual([]);
  });

  it("filters by actor and by action, and the time range bounds the answer", async () => {
    const byAdmin = await audit({ since, actor: "admin", limit: "1000" });
    expect(byAdmin.events.length).toBe(5);
    const until = byAdmin.events[2]!.time;
    const older = await audit({ since, until, actor: "admin" });
    expect(older.events.map((event) => event.target)).toEqual([namespaces[2], namespaces[1], namespaces[0]]);
  });

  it.each([
    ["a foreign cursor", { cursor: "eyJzIjoiYXV0aCIsImQiOjF9" }],
    ["a garbage cursor", { cursor: "!!!" }],
    ["an invalid action", { action: "DROP TABLE" }],
    ["an unknown parameter", { actr: "admin" }],
    ["an empty actor", { actor: "" }],
  ])("%s → 400", async (_label, query) => {
    const response = await adminCall("GET", `/audit?${new URLSearchParams(query)}`);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("invalid_request");
  });
});
