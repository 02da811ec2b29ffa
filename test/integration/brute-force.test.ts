import { beforeAll, describe, expect, it } from "vitest";
import { SERVICE, adminCall, basic, call, createNamespace, createServiceAccount, createUser, uniqueName } from "../helpers/registry";

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
