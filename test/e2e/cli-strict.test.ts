/**
 * The strict CLI (issue 15) against the running Worker: each mistake of the list exits 2 with a precise
 * message and the command's usage, before anything reaches the registry; the login lines the CLI prints work as
 * printed (sh -c, podman); Quay-style names; the audit log's newest first. Account names differ from cli.test.ts's
 * (which finds its accounts by name across the shared Worker).
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { adminPassword, registryHost, registryUrl, run, tempDir } from "./support";

const PROJECT = join(__dirname, "..", "..");
const CLI = join(PROJECT, "bin", "edge-registry.mjs");
const env = () => ({ ...process.env, EDGE_REGISTRY_URL: registryUrl(), EDGE_REGISTRY_PASSWORD: adminPassword() });

const cli = (args: string[], input?: string) => run("node", [CLI, ...args], { input, env: env(), timeoutMs: 60_000 });
function cliOk(args: string[], input?: string): string {
  const result = cli(args, input);
  if (result.code !== 0) throw new Error(`edge-registry ${args.join(" ")} failed (${result.code}): ${result.stderr}`);
  return result.stdout;
}
/** Exit 2, the message, and the usage of the command the mistake is in. */
function expectUsageError(args: string[], message: string | RegExp, usage: string) {
  const result = cli(args);
  expect(result.code, result.stderr).toBe(2);
  expect(result.stderr).toMatch(message);
  expect(result.stderr).toContain(`usage: edge-registry ${usage}`);
  return result;
}

const NS = `strict${Date.now().toString(36)}`;
const OTHER = `${NS}x`;
let account: { username: string; quayName: string; token: string };

beforeAll(() => {
  cliOk(["namespaces", "create", NS]);
  cliOk(["namespaces", "create", OTHER]);
  account = JSON.parse(cliOk(["service-accounts", "create", NS, "strict-reader", "--grant", `${NS}=read`, "--json"]));
  cliOk(["service-accounts", "create", OTHER, "other", "--grant", `${OTHER}=read`]);
});

const showAccount = (name: string) => JSON.parse(cliOk(["--json", "service-accounts", "show", name])) as { username: string; grants: unknown[]; rotatedAt?: string };

describe("each mistake of issue 15 exits 2 with a precise message, and changes nothing", () => {
  it("--grnat acme=write: unknown option (no account is created)", () => {
    expectUsageError(["service-accounts", "create", NS, "typo", "--grnat", `${NS}=write`], "unknown option '--grnat'", "service-accounts create NAMESPACE NAME");
    expect(cli(["service-accounts", "show", `${NS}+typo`]).code).toBe(1);
  });

  it("-o tokn / --overlap 24 / --overlap with no value: refused before the rotation", () => {
    expectUsageError(["service-accounts", "rotate", account.username, "-o", "tokn"], /--output "tokn": expected one of summary, token, login/, "service-accounts rotate ACCOUNT");
    expectUsageError(["service-accounts", "rotate", account.username, "--overlap", "24"], /--overlap "24" has no unit: use a number with a unit, e\.g\. 90s, 15m, 24h, 30d/, "service-accounts rotate ACCOUNT");
    expectUsageError(["service-accounts", "rotate", account.username, "--overlap"], "option '--overlap <value>' argument missing", "service-accounts rotate ACCOUNT");
    expect(showAccount(account.username).rotatedAt).toBeUndefined();
  });

  it("durations everywhere take a unit; times are ISO 8601 or a duration ago", () => {
    expectUsageError(["service-accounts", "create", NS, "x", "--expires-in", "90"], /--expires-in "90" has no unit/, "service-accounts create");
    expectUsageError(["gc", "--dry-run", "--grace", "24"], /--grace "24" has no unit/, "gc ");
    expectUsageError(["audit", "--since", "yesterday"], /--since "yesterday" is not a time: use ISO 8601 \(2026-05-01T12:00:00Z\) or a duration ago \(1h, 7d\)/, "audit ");
    expectUsageError(["audit", "--limit", "ten"], /--limit "ten" must be a whole number from 1 to 1000/, "audit ");
    expect(cli(["audit", "--since", "1h", "--limit", "1"]).code).toBe(0);
    expect(cli(["audit", "--since", new Date(Date.now() - 3_600_000).toISOString(), "--limit", "1"]).code).toBe(0);
  });

  it("an option the command does not have is refused (users list --namespace)", () => {
    expectUsageError(["users", "list", "--namespace", NS], "unknown option '--namespace'", "users list");
    expectUsageError(["namespaces", "create", "a", "b"], 'unexpected argument "b"', "namespaces create NAME");
    expectUsageError(["service-accounts", "rotate"], "missing ACCOUNT", "service-accounts rotate ACCOUNT");
  });

  it("users create with neither --new-password-stdin nor a terminal exits 2 at once, never waits on stdin", async () => {
    // stdin stays open (a pipe nobody writes to): the old CLI waited on it forever.
    const child = spawn("node", [CLI, "users", "create", `${NS}user`], { env: env(), stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const code = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve("still waiting after 10 s"), 10_000);
      child.on("exit", (exitCode) => {
        clearTimeout(timer);
        resolve(exitCode);
      });
    });
    child.kill("SIGKILL");
    expect(code, stderr).toBe(2);
    expect(stderr).toContain("no password for the user: pass --new-password-stdin");
    expect(cli(["users", "show", `${NS}user`]).code).toBe(1);
  });
});

describe("what the strict CLI does right", () => {
  it("users create --new-password-stdin: the password from stdin, never echoed; the user logs in", () => {
    const password = `pw-${Date.now()}-Secret!`;
    const created = cliOk(["users", "create", `${NS}user2`, "--new-password-stdin"], `${password}\n`);
    expect(created).not.toContain(password);
    const login = run("podman", ["login", "--tls-verify=false", "--authfile", join(tempDir("user-login"), "auth.json"), "-u", `${NS}user2`, "--password-stdin", registryHost()], { input: password });
    expect(login.code, login.stderr).toBe(0);
  });

  it("service-accounts list --namespace lists that namespace's accounts only", () => {
    const listed = JSON.parse(cliOk(["--json", "service-accounts", "list", "--namespace", NS])) as { username: string; namespace: string }[];
    expect(listed.map((sa) => sa.username)).toEqual([account.username]);
  });

  it("rotate -o token prints the new token alone, and it logs in as printed by -o login (sh -c, podman)", () => {
    const token = cliOk(["service-accounts", "rotate", account.quayName, "-o", "token"]).trim();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const line = cliOk(["service-accounts", "rotate", account.username, "--overlap", "1h", "-o", "login"]).trim();
    // A loopback registry: --tls-verify=false; the token goes through stdin, not podman's arguments.
    expect(line).toMatch(new RegExp(`^printf '%s\\\\n' '[A-Za-z0-9_-]{43}' \\| podman login --tls-verify=false --password-stdin -u '${account.username.replace("|", "\\|")}' ${registryHost().replace(/\./g, "\\.")}$`));
    const authfile = join(tempDir("printed-login"), "auth.json");
    const result = run("sh", ["-c", `${line} --authfile '${authfile}'`]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("Login Succeeded");
  });

  it("Quay-style names: podman logs in as namespace+name; the CLI shows and changes the account by either name", () => {
    const token = cliOk(["service-accounts", "rotate", `${NS}+strict-reader`, "-o", "token"]).trim();
    const login = run("podman", ["login", "--tls-verify=false", "--authfile", join(tempDir("quay-login"), "auth.json"), "-u", `${NS}+strict-reader`, "--password-stdin", registryHost()], { input: token });
    expect(login.code, login.stderr).toBe(0);
    expect(showAccount(`${NS}+strict-reader`).username).toBe(account.username);
    cliOk(["grants", "add", "service-accounts", `${NS}+strict-reader`, "--repository", `${NS}/app`, "--role", "write"]);
    expect(cliOk(["grants", "list", "service-accounts", account.username])).toMatch(new RegExp(`repository\\s+${NS}/app\\s+write`));
  });

  it("audit: newest first, --limit N is the newest N", async () => {
    const names = [1, 2, 3].map((n) => `${NS}a${n}`);
    for (const name of names) cliOk(["namespaces", "create", name]);
    const newest = () =>
      (JSON.parse(cliOk(["--json", "audit", "--action", "namespace.create", "--since", "10m", "--limit", "2"])) as { target: string }[]).map((event) => event.target);
    // Audit events are KV keys: a list may lag a write by the production-KV model's TTL.
    await expect.poll(newest, { timeout: 15_000, interval: 500 }).toEqual([names[2], names[1]]);
    const table = cliOk(["audit", "--action", "namespace.create", "--since", "10m", "--limit", "3"]).split("\n");
    expect(table[0]).toMatch(/^TIME\s+ACTOR\s+ACTION\s+TARGET/);
    expect(table.slice(1, 4).map((row) => row.split(/\s+/)[3])).toEqual([names[2], names[1], names[0]]);
  });
});
