/**
 * A namespace administrator (a web user holding the `admin` role on a namespace, README "Roles") drives the
 * admin CLI with their own credentials: creates a service account and grants in their namespace, pushes with
 * the account's auth file, reads their namespace's audit; and gets a clear refusal (exit 1, the registry's
 * message) for another namespace, for a grant leaving the account's namespace, and for registry-wide commands.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { writeOciLayout } from "../../scripts/lib/oci-image.mjs";
import { TLS, adminOk, productionKvTtlMs, registryHost, registryUrl, run, runOk, tempDir } from "./support";

const PROJECT = join(__dirname, "..", "..");
const PASSWORD = "delegated admin password";
const suffix = Date.now().toString(36);
const own = `delns${suffix}`;
const other = `othns${suffix}`;
const alice = `alice${suffix}`;
const bob = `bob${suffix}`;

/** The CLI as alice, with her own password (never the bootstrap administrator's). */
function asAlice(args: string[]) {
  const env = { ...process.env, EDGE_REGISTRY_URL: registryUrl(), EDGE_REGISTRY_USER: alice, EDGE_REGISTRY_PASSWORD: PASSWORD };
  return run("node", [join(PROJECT, "bin", "edge-registry.mjs"), ...args], { env });
}

function asAliceOk(args: string[]): string {
  const result = asAlice(args);
  if (result.code !== 0) throw new Error(`edge-registry ${args.join(" ")} failed (${result.code}): ${result.stderr}`);
  return result.stdout;
}

/** A refusal: exit 1 and the registry's error on stderr. */
function expectRefused(args: string[], message: string) {
  const result = asAlice(args);
  expect(result.code, result.stdout).toBe(1);
  expect(result.stderr).toContain(message);
}

let source: string;

beforeAll(async () => {
  source = tempDir("delegation-image");
  await writeOciLayout(source, [{ seed: 151, layerSizes: [64 * 1024] }], "v1");
  await adminOk("POST", "/namespaces", { name: own });
  await adminOk("POST", "/namespaces", { name: other });
  await adminOk("POST", "/users", { username: alice, password: PASSWORD });
  await adminOk("PUT", `/users/${alice}/grants`, { namespace: own, role: "admin" });
  await adminOk("POST", "/users", { username: bob, password: PASSWORD });
  await adminOk("POST", "/service-accounts", { namespace: other, name: "theirs", grants: [{ namespace: other, role: "read" }] });
});

describe("edge-registry CLI as a namespace administrator", () => {
  it("creates a service account in its namespace whose auth file pushes there", () => {
    const auth = join(tempDir("delegation-auth"), "auth.json");
    writeFileSync(auth, asAliceOk(["service-accounts", "create", own, "ci", "--grant", `${own}=write`, "--output", "auth-json"]));
    runOk("skopeo", ["copy", "--dest-tls-verify=false", "--dest-authfile", auth, `oci:${source}:v1`, `docker://${registryHost()}/${own}/app:v1`]);
    // Another namespace is not the account's to push to.
    const denied = run("skopeo", ["copy", "--dest-tls-verify=false", "--dest-authfile", auth, `oci:${source}:v1`, `docker://${registryHost()}/${other}/app:v1`]);
    expect(denied.code).not.toBe(0);

    const listed = JSON.parse(asAliceOk(["--json", "service-accounts", "list"])) as { username: string; namespace: string; createdBy: string }[];
    expect(listed.map((account) => account.namespace)).toEqual([own]);
    expect(listed[0]!.createdBy).toBe(alice);
  });

  it("grants roles within its namespace, to its service accounts and to users", () => {
    const [account] = JSON.parse(asAliceOk(["--json", "service-accounts", "list"])) as { username: string }[];
    asAliceOk(["grants", "add", "service-accounts", account!.username, "--repository", `${own}/app`, "--role", "admin"]);
    asAliceOk(["grants", "add", "users", bob, "--namespace", own, "--role", "read"]);
    expect(asAliceOk(["grants", "list", "users", bob])).toMatch(new RegExp(`namespace\\s+${own}\\s+read`));
  });

  it("gets a clear refusal for another namespace, for a grant outside the account's namespace, and for registry-wide commands", () => {
    expectRefused(["service-accounts", "create", other, "intruder", "--grant", `${other}=read`], `forbidden: this needs the admin role on namespace "${other}"`);
    expectRefused(["grants", "add", "users", bob, "--namespace", other, "--role", "read"], `forbidden: this needs the admin role on namespace "${other}"`);
    expectRefused(["service-accounts", "create", own, "leaky", "--grant", `${other}=read`], "invalid_request: a service account's grants stay inside its namespace");
    expectRefused(["namespaces", "create", `new${suffix}`], "forbidden: this needs a registry administrator");
    expectRefused(["users", "list"], "forbidden: this needs a registry administrator");
  });

  it("reads its namespace's audit (--namespace), not the whole log", async () => {
    type AuditEvent = { actor: string; action: string; target?: string };
    const read = () => JSON.parse(asAliceOk(["--json", "audit", "--namespace", own, "--limit", "100"])) as AuditEvent[];
    const created = (events: AuditEvent[]) => events.some((event) => event.actor === alice && event.action === "service-account.create" && event.target?.endsWith("|ci"));
    // The audit log is read through KV lists, which a location may serve from its cache for up to the
    // staleness bound (platform.md §1; the production-KV model caches them): read again until the event shows.
    const deadline = Date.now() + productionKvTtlMs() + 10_000;
    let events = read();
    while (!created(events) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5_000));
      events = read();
    }
    expect(created(events)).toBe(true);
    expect(events.every((event) => event.target === undefined || !event.target.includes(other))).toBe(true);
    expectRefused(["audit"], "forbidden: this needs a registry administrator to read the whole audit log");
  });

  it("a user granted a role by the namespace administrator pulls with podman", () => {
    const login = join(tempDir("delegation-bob"), "auth.json");
    runOk("podman", ["login", TLS, "--authfile", login, "-u", bob, "--password-stdin", registryHost()], { input: PASSWORD });
    runOk("podman", ["pull", TLS, "--authfile", login, `${registryHost()}/${own}/app:v1`]);
    runOk("podman", ["rmi", "-f", `${registryHost()}/${own}/app:v1`]);
  });
});
