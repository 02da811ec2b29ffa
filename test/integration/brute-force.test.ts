import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { SERVICE, adminCall, basic, call, createNamespace, createServiceAccount, createUser, uniqueName, withinOneRateWindow } from "../helpers/registry";

const PASSWORD = "the right password";
let ns: string;

beforeAll(async () => {
  ns = (await createNamespace()).name;
});

function token(username: string, secret: string, client?: string) {
  const headers: Record<string, string> = { Authorization: basic(username, secret) };
  if (client) headers["CF-Connecting-IP"] = client;
  return call(`/token?service=${SERVICE}`, { headers });
}

describe("failed-login throttling", () => {
  it("per account: after 10 failures the account answers 429 + Retry-After, even to the right password; others are unaffected", async () => {
    await withinOneRateWindow();
    const victim = uniqueName("victim");
    const bystander = uniqueName("bystander");
    await createUser(victim, PASSWORD);
    await createUser(bystander, PASSWORD);
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await token(victim, `guess-${i}`)).status);
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401));
    expect(statuses.slice(10)).toEqual([429, 429]);
    const locked = await token(victim, PASSWORD);
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect(((await locked.json()) as { error: string }).error).toBe("too_many_requests");
    expect((await token(bystander, PASSWORD)).status).toBe(200);
  });

  it("successful logins never count: a busy CI account is not throttled", async () => {
    const robot = await createServiceAccount(ns, uniqueName("ci"), [{ namespace: ns, role: "read" }]);
    for (let i = 0; i < 25; i++) expect((await token(robot.username, robot.token)).status).toBe(200);
  });

  it("per client address: 30 failures across accounts lock that address only", async () => {
    await withinOneRateWindow();
    const attacker = "203.0.113.7";
    const statuses: number[] = [];
    for (let i = 0; i < 32; i++) statuses.push((await token(uniqueName("spray"), "guess", attacker)).status);
    expect(statuses.slice(0, 30).every((status) => status === 401)).toBe(true);
    expect(statuses.slice(30)).toEqual([429, 429]);
    const user = uniqueName("innocent");
    await createUser(user, PASSWORD);
    expect((await token(user, PASSWORD, attacker)).status).toBe(429);
    expect((await token(user, PASSWORD, "198.51.100.9")).status).toBe(200);
  });

  it("the admin API is throttled the same way, with a JSON 429", async () => {
    await withinOneRateWindow();
    const target = uniqueName("adm");
    await createUser(target, PASSWORD, [], true);
    let last: Response | undefined;
    for (let i = 0; i < 11; i++) last = await call("/admin/v1/namespaces", { headers: { Authorization: basic(target, `nope-${i}`) } });
    expect(last!.status).toBe(429);
    expect(last!.headers.get("Retry-After")).toBeTruthy();
    expect(((await last!.json()) as { error: { code: string } }).error.code).toBe("too_many_requests");
    expect((await adminCall("GET", "/namespaces")).status).toBe(200);
  });
});

/** Sends failures until one answers 429 (counters use fixed windows: at most twice the limit); returns the count. */
async function failUntilLocked(attempt: () => Promise<Response>, max = 25): Promise<number> {
  for (let i = 1; i <= max; i++) {
    const status = (await attempt()).status;
    if (status === 429) return i;
    expect(status).toBe(401);
  }
  throw new Error(`not locked after ${max} failures`);
}

function refreshForm(refreshToken: string, client: string) {
  return call("/token", {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", "CF-Connecting-IP": client },
    body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken, service: SERVICE }).toString(),
  });
}

// Issue 10, defect 8: no client can switch off another client's correct credential.
describe("lockout policy", () => {
  it("a service account's correct token is never refused because of other clients' failures", async () => {
    await withinOneRateWindow();
    const robot = await createServiceAccount(ns, uniqueName("ci"), [{ namespace: ns, role: "read" }]);
    // Many more failures than the per-account limit (10), from one address and from none.
    for (let i = 0; i < 15; i++) expect((await token(robot.username, `wrong-${i}`, "203.0.113.40")).status).toBe(401);
    for (let i = 0; i < 15; i++) expect((await token(robot.username, `wrong-${i}`)).status).toBe(401);
    expect((await token(robot.username, robot.token, "198.51.100.40")).status).toBe(200);
    expect((await token(robot.username, robot.token)).status).toBe(200);
  });

  it("service-account failures still lock the address that makes them", async () => {
    await withinOneRateWindow();
    const robot = await createServiceAccount(ns, uniqueName("ci"), [{ namespace: ns, role: "read" }]);
    const attacker = "203.0.113.41";
    await failUntilLocked(() => token(robot.username, "guess", attacker), 65);
    expect((await token(robot.username, robot.token, attacker)).status).toBe(429);
    expect((await token(robot.username, robot.token, "198.51.100.41")).status).toBe(200);
  });

  it("a locked password account still admits the addresses that signed in as it before, and only them", async () => {
    await withinOneRateWindow();
    const user = uniqueName("dev");
    await createUser(user, PASSWORD);
    const laptop = "198.51.100.42";
    expect((await token(user, PASSWORD, laptop)).status).toBe(200);
    await failUntilLocked(() => token(user, "guess", "203.0.113.42"));
    expect((await token(user, PASSWORD, laptop)).status).toBe(200);
    expect((await token(user, PASSWORD, "203.0.113.42")).status).toBe(429);
    expect((await token(user, PASSWORD, "192.0.2.42")).status).toBe(429);
    expect((await token(user, PASSWORD)).status).toBe(429);
    // The known address is stored as a keyed hash only, never in clear.
    const keys = (await env.REGISTRY_KV.list({ prefix: `login-device:user/${user}:` })).keys.map((key) => key.name);
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(/^login-device:user\/[^:]+:[0-9a-f]{32}$/);
    expect(keys[0]).not.toContain(laptop);
  });
});

// Issue 10, defect 6: a bad refresh token is a failed credential like a wrong password.
describe("failed refresh-token redemptions", () => {
  it("count against the client address: the address is then locked for passwords too", async () => {
    await withinOneRateWindow();
    const user = uniqueName("victim");
    await createUser(user, PASSWORD);
    const attacker = "203.0.113.43";
    const bogus = `${"A".repeat(16)}.${"B".repeat(43)}`;
    const locked = await failUntilLocked(() => refreshForm(bogus, attacker), 65);
    expect(locked).toBeGreaterThan(1);
    const refused = await refreshForm(bogus, attacker);
    expect(refused.status).toBe(429);
    expect(refused.headers.get("Retry-After")).toBeTruthy();
    expect((await token(user, PASSWORD, attacker)).status).toBe(429);
    expect((await token(user, PASSWORD, "198.51.100.43")).status).toBe(200);
  });
});

// Issue 10, defect 5: usernames beyond both identity grammars (and KV's 512-byte keys).
describe("oversized usernames", () => {
  const names: [string, string][] = [
    ["508 bytes", "u".repeat(508)],
    ["4,096 bytes", "v".repeat(4096)],
    ["4,096 bytes of multibyte and control characters", "é\u0001€".repeat(683).slice(0, 2048)],
    ["a service-account-like name with a long tail", `12345678|${"w".repeat(600)}`],
  ];
  const surfaces: [string, (username: string, client: string) => Promise<Response>, (body: any) => string][] = [
    ["token GET", (username, client) => token(username, "secret", client), (body) => body.error],
    [
      "token POST",
      (username, client) =>
        call("/token", {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded", "CF-Connecting-IP": client },
          body: new URLSearchParams({ grant_type: "password", username, password: "secret", service: SERVICE }).toString(),
        }),
      (body) => body.error,
    ],
    ["admin API", (username, client) => call("/admin/v1/namespaces", { headers: { Authorization: basic(username, "secret"), "CF-Connecting-IP": client } }), (body) => body.error.code],
    ["account API", (username, client) => call("/account/v1/refresh-tokens", { headers: { Authorization: basic(username, "secret"), "CF-Connecting-IP": client } }), (body) => body.error.code],
  ];
  let address = 0;

  for (const [surface, send, codeOf] of surfaces) {
    it.each(names)(`${surface}: %s → 401 in the surface's format, audited with the name cut`, async (_label, username) => {
      const client = `192.0.2.${++address}`;
      const response = await send(username, client);
      expect(response.status).toBe(401);
      expect(codeOf(await response.json())).toBe(surface.startsWith("token") ? "invalid_grant" : "unauthorized");
      const mine = async () => {
        const failures = (await (await adminCall("GET", `/audit?action=auth.failure&actor=${encodeURIComponent(username)}&limit=1000`)).json()) as {
          events: { actor: string; detail: string }[];
        };
        return failures.events.filter((event) => event.detail.includes(`client ${client}`));
      };
      // The audit log is a KV list, eventually consistent (platform.md §1: up to 60 s in production, the
      // model's TTL of 5 s here; every surface's failure under one name lands in the same stream): poll for
      // at most the TTL + 2 s. Exactly one event per failure, never more.
      await expect.poll(async () => (await mine()).length, { timeout: 7_000, interval: 250 }).toBe(1);
      const [event] = await mine();
      expect(new TextEncoder().encode(event!.actor).length).toBeLessThanOrEqual(160);
    }, 20_000);
  }

  it("are throttled like any failure", async () => {
    await withinOneRateWindow();
    const client = "203.0.113.44";
    await failUntilLocked(() => token("x".repeat(3000), "secret", client), 65);
    expect((await token("x".repeat(3000), "secret", client)).status).toBe(429);
  });
});
