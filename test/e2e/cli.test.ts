/**
 * The admin CLI end to end against the running Worker: namespaces and service accounts created with it,
 * images pushed and pulled with the auth files it writes, rotation with an overlap, the Kubernetes
 * Secret it prints, and revocation.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { writeOciLayout } from "../../scripts/lib/oci-image.mjs";
import { TLS, adminPassword, registryHost, registryUrl, run, runOk, tempDir } from "./support";

const PROJECT = join(__dirname, "..", "..");

function cli(args: string[], input?: string) {
  const env = { ...process.env, EDGE_REGISTRY_URL: registryUrl(), EDGE_REGISTRY_PASSWORD: adminPassword() };
  const result = run("node", [join(PROJECT, "bin", "edge-registry.mjs"), ...args], { input, env });
  return result;
}

function cliOk(args: string[], input?: string) {
  const result = cli(args, input);
  if (result.code !== 0) throw new Error(`edge-registry ${args.join(" ")} failed (${result.code}): ${result.stderr}`);
  return result.stdout;
}

/** Creates or rotates with --output auth-json and writes the auth file; returns its path. */
function authFile(args: string[], name: string): string {
  const path = join(tempDir(name), "auth.json");
  writeFileSync(path, cliOk([...args, "--output", "auth-json"]));
  return path;
}

/** The username an auth file logs in as. */
function usernameIn(auth: string): string {
  const { auths } = JSON.parse(readFileSync(auth, "utf8")) as { auths: Record<string, { auth: string }> };
  return Buffer.from(auths[registryHost()]!.auth, "base64").toString().split(":")[0]!;
}

const image = (tag = "v1") => `docker://${registryHost()}/clins/app:${tag}`;

/**
 * skopeo inspect's exit code, as an assertion whose message, on failure, says why: skopeo's own account of
 * its token requests (--debug) and what the server logged meanwhile (its token requests and the tokens it
 * issued, never a secret).
 */
function inspectWith(auth: string) {
  const logBefore = readFileSync(inject("serverLog"), "utf8").length;
  const result = run("skopeo", ["--debug", "inspect", TLS, "--authfile", auth, image()]);
  const server = readFileSync(inject("serverLog"), "utf8").slice(logBefore).split("\n").filter((line) => /token|identity|\/v2\//i.test(line));
  const client = result.stderr.split("\n").filter((line) => /token|auth|status|error|fata/i.test(line));
  return expect(result.code, `skopeo: ${client.slice(-12).join(" | ")}\nserver: ${server.slice(-12).join(" | ")}`);
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let source: string;

beforeAll(async () => {
  source = tempDir("cli-image");
  await writeOciLayout(source, [{ seed: 81, layerSizes: [256 * 1024] }], "v1");
});

describe("edge-registry CLI", () => {
  let pullAuth: string;
  let pushAuth: string;
  let pullUser: string;

  it("creates a namespace and two service accounts, printing auth files", () => {
    expect(cliOk(["namespaces", "create", "clins"])).toMatch(/clins\s+\d{8}\s+false/);
    pullAuth = authFile(["service-accounts", "create", "clins", "puller", "--grant", "clins=read", "--description", "cluster pulls"], "pull-auth");
    pushAuth = authFile(["service-accounts", "create", "clins", "pusher", "--grant", "clins=write"], "push-auth");
    // The account is named by its own auth file: other files of the suite make accounts called `puller` too.
    pullUser = usernameIn(pullAuth);
    const listed = JSON.parse(cliOk(["--json", "service-accounts", "list"])) as { username: string; state: string }[];
    expect(listed.filter((sa) => sa.username.startsWith(pullUser.split("|")[0]!)).map((sa) => sa.state)).toEqual(["active", "active"]);
    expect(cliOk(["service-accounts", "list"])).toMatch(/USERNAME\s+STATE/);
  });

  it("pushes with one account's auth file and pulls with the other's (podman pull --authfile)", () => {
    runOk("skopeo", ["copy", "--dest-tls-verify=false", "--dest-authfile", pushAuth, `oci:${source}:v1`, image()]);
    runOk("podman", ["pull", TLS, "--authfile", pullAuth, `${registryHost()}/clins/app:v1`]);
    runOk("podman", ["rmi", "-f", `${registryHost()}/clins/app:v1`]);
    const denied = run("skopeo", ["copy", "--dest-tls-verify=false", "--dest-authfile", pullAuth, `oci:${source}:v1`, image("v2")]);
    expect(denied.code).not.toBe(0);
  });

  it("rotates with an overlap: the old auth file works until the overlap ends, the new one after", async () => {
    const rotatedAuth = authFile(["service-accounts", "rotate", pullUser, "--overlap", "3s"], "rotated-auth");
    const inspect = (auth: string) => inspectWith(auth);
    inspect(pullAuth).toBe(0);
    inspect(rotatedAuth).toBe(0);
    expect(cliOk(["service-accounts", "show", pullUser])).toContain("PREVIOUSTOKENVALIDUNTIL");
    await sleep(3_500);
    inspect(pullAuth).not.toBe(0);
    inspect(rotatedAuth).toBe(0);
    pullAuth = rotatedAuth;
  });

  it("prints a Kubernetes Secret whose .dockerconfigjson logs in", () => {
    const secret = cliOk(["service-accounts", "create", "clins", "k8s-puller", "--grant", "clins=read", "--k8s-namespace", "apps", "--secret-name", "clins-pull", "--output", "k8s-secret"]);
    expect(secret).toContain("type: kubernetes.io/dockerconfigjson");
    expect(secret).toContain("namespace: apps");
    const config = JSON.parse(Buffer.from(/\.dockerconfigjson: (\S+)/.exec(secret)![1]!, "base64").toString()) as { auths: Record<string, { auth: string }> };
    const [user, ...rest] = Buffer.from(config.auths[registryHost()]!.auth, "base64").toString().split(":");
    const login = run("podman", ["login", TLS, "--authfile", join(tempDir("k8s-login"), "auth.json"), "-u", user!, "--password-stdin", registryHost()], { input: rest.join(":") });
    expect(login.code, login.stderr).toBe(0);
    expect(cliOk(["service-accounts", "create", "clins", "cmd", "--output", "kubectl"])).toMatch(/^kubectl create secret docker-registry cmd-pull-secret /);
  });

  it("disables, enables and deletes (revokes); the audit log shows each change", () => {
    const inspect = () => inspectWith(pullAuth);
    cliOk(["service-accounts", "disable", pullUser]);
    inspect().not.toBe(0);
    cliOk(["service-accounts", "enable", pullUser]);
    inspect().toBe(0);
    expect(cliOk(["service-accounts", "delete", pullUser])).toContain("deleted");
    inspect().not.toBe(0);
    const audit = JSON.parse(cliOk(["--json", "audit", "--actor", "admin", "--limit", "1000"])) as { action: string; target?: string }[];
    // The audit log answers newest first.
    const actions = audit.filter((event) => event.target === pullUser).map((event) => event.action).reverse();
    expect(actions).toEqual(["service-account.create", "service-account.rotate", "service-account.update", "service-account.update", "service-account.delete"]);
  });

  it("reports errors with exit codes: 1 refused, 2 usage, 3 unreachable", () => {
    const conflict = cli(["namespaces", "create", "clins"]);
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toContain("conflict");
    expect(cli(["frobnicate"]).code).toBe(2);
    expect(cli(["service-accounts", "rotate"]).code).toBe(2);
    const wrongPassword = run("node", [join(PROJECT, "bin", "edge-registry.mjs"), "namespaces", "list"], {
      env: { ...process.env, EDGE_REGISTRY_URL: registryUrl(), EDGE_REGISTRY_PASSWORD: "wrong" },
    });
    expect(wrongPassword.code).toBe(1);
    expect(wrongPassword.stderr).toContain("unauthorized");
    const unreachable = run("node", [join(PROJECT, "bin", "edge-registry.mjs"), "namespaces", "list"], {
      env: { ...process.env, EDGE_REGISTRY_URL: "https://127.0.0.1:9", EDGE_REGISTRY_PASSWORD: "x" },
    });
    expect(unreachable.code).toBe(3);
  });
});
