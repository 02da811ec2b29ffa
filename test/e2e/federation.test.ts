/**
 * Workload identity federation with a real client: `podman login -u '<org|name>' -p <OIDC token>` then
 * `podman push`, as a GitHub Actions job would (README "Workload identity federation"). The OIDC issuer runs
 * in this process on 127.0.0.1 (test/support/oidc-issuer.mjs); the registry is a `wrangler dev` of this
 * file's own, started with ALLOW_INSECURE_OIDC_ISSUERS=true so that a policy may name that loopback issuer
 * (the suite's shared server runs with production's configuration, which refuses it).
 */
import { mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureSecretsFile } from "../../scripts/local-secrets.mjs";
import { startWranglerDev } from "../../scripts/wrangler-dev.mjs";
import { writeOciLayout } from "../../scripts/lib/oci-image.mjs";
import { startOidcIssuer } from "../support/oidc-issuer.mjs";
import { TLS, adminRequest, runAsync, runOk } from "./support";

const AUDIENCE = "https://registry.example.com";

let workDir: string;
let server: { url: string; stop: () => void };
let issuerServer: { url: string; close: () => Promise<void> };
let issuer: string;
let adminPassword: string;
let signingKey: CryptoKey;
let kid: string;
let account: string;
const NS = "fed";

function admin(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  return adminRequest(method, path, body, { url: server.url, password: adminPassword });
}

async function adminOk(method: string, path: string, body?: unknown): Promise<any> {
  const response = await admin(method, path, body);
  if (response.status >= 300) throw new Error(`${method} ${path} → ${response.status}: ${JSON.stringify(response.json)}`);
  return response.json;
}

/** A GitHub Actions-shaped ID token (what `ACTIONS_ID_TOKEN_REQUEST_URL` hands a job), for `ref`. */
function githubToken(ref = "refs/heads/main"): Promise<string> {
  const iat = Math.floor(Date.now() / 1000);
  return new SignJWT({
    jti: crypto.randomUUID(),
    sub: `repo:octo-org/octo-repo:ref:${ref}`,
    aud: AUDIENCE,
    ref,
    repository: "octo-org/octo-repo",
    repository_owner: "octo-org",
    event_name: "push",
    ref_type: "branch",
    workflow_ref: `octo-org/octo-repo/.github/workflows/release.yml@${ref}`,
    runner_environment: "github-hosted",
    iss: issuer,
    nbf: iat - 600,
    iat,
    exp: iat + 300,
  })
    .setProtectedHeader({ alg: "RS256", typ: "JWT", kid })
    .sign(signingKey);
}

beforeAll(async () => {
  // Lowercase only: podman names an image pulled from `oci:<dir>` after the directory's path.
  workDir = join(tmpdir(), `edge-registry-federation-${crypto.randomUUID()}`);
  mkdirSync(workDir);
  issuerServer = await startOidcIssuer();
  issuer = (await (await fetch(`${issuerServer.url}/issuers`, { method: "POST" })).json()).issuer;
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  signingKey = privateKey;
  kid = `gh-${crypto.randomUUID().slice(0, 8)}`;
  await fetch(`${issuer}/_control`, { method: "PUT", body: JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" }] }) });

  const secrets = (await ensureSecretsFile(join(workDir, "dev.vars"))) as Record<string, string>;
  adminPassword = secrets.BOOTSTRAP_ADMIN_PASSWORD!;
  const port = 20000 + Math.floor(Math.random() * 20000);
  server = await startWranglerDev({
    port,
    persistTo: join(workDir, "state"),
    envFile: join(workDir, "dev.vars"),
    logFile: join(workDir, "server.log"),
    vars: { ALLOW_INSECURE_OIDC_ISSUERS: "true" },
  });
  await adminOk("POST", "/namespaces", { name: NS });
  account = (await adminOk("POST", "/service-accounts", { namespace: NS, name: "release", grants: [{ namespace: NS, role: "write" }] })).username;
  await adminOk("PUT", `/service-accounts/${encodeURIComponent(account)}/trust-policies`, {
    issuer,
    audiences: [AUDIENCE],
    subject: "repo:octo-org/octo-repo:ref:refs/heads/main",
    claims: { workflow_ref: "octo-org/octo-repo/.github/workflows/release.yml@refs/heads/main" },
  });
});

afterAll(async () => {
  server?.stop();
  await issuerServer?.close();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

describe("podman with an OIDC token as the password", () => {
  it("podman login -u '<org|name>' -p <GitHub Actions token>, then podman push and pull", async () => {
    const host = new URL(server.url).host;
    const source = join(workDir, "layout");
    await writeOciLayout(source, [{ seed: 17, layerSizes: [256 * 1024, 64 * 1024] }], "v1");
    const authfile = join(workDir, "auth.json");
    const idToken = await githubToken();
    // Never spawnSync here: the issuer answers from this process's event loop while the registry asks it.
    const login = await runAsync("podman", ["login", TLS, "--authfile", authfile, "-u", account, "-p", idToken, host]);
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toContain("Login Succeeded");
    const image = `${host}/${NS}/app:v1`;
    // podman pull prints the stored image's id last.
    const id = runOk("podman", ["pull", `oci:${source}:v1`]).stdout.trim().split("\n").at(-1)!;
    runOk("podman", ["tag", id, image]);
    // podman push sends the stored password (the ID token) again, within the policy's replay window.
    const push = await runAsync("podman", ["push", TLS, "--authfile", authfile, image]);
    expect(push.code, push.stderr).toBe(0);
    runOk("podman", ["rmi", "-f", image, id]);
    const pull = await runAsync("podman", ["pull", TLS, "--authfile", authfile, image]);
    expect(pull.code, pull.stderr).toBe(0);
    runOk("podman", ["rmi", "-f", image]);
  });

  it("the admin CLI adds, lists and removes trust policies", async () => {
    const cli = (...args: string[]) => runOk("node", ["bin/edge-registry.mjs", ...args, "--registry", server.url, "--password-stdin"], { input: adminPassword });
    const added = JSON.parse(
      cli("service-accounts", "trust", "add", account, "--issuer", issuer, "--audience", AUDIENCE, "--subject", "system:serviceaccount:apps:pusher",
        "--claim", "kubernetes.io/namespace=apps", "--algorithm", "ES256", "--max-token-age", "1h", "--replay-window", "1h", "--json").stdout,
    );
    expect(added).toMatchObject({ issuer, audiences: [AUDIENCE], claims: { "kubernetes.io/namespace": "apps" }, algorithms: ["ES256"], maxTokenAgeSeconds: 3600, replayWindowSeconds: 3600 });
    const listed = JSON.parse(cli("service-accounts", "trust", "list", account, "--json").stdout) as { id: string }[];
    expect(listed.map((policy) => policy.id)).toContain(added.id);
    expect(cli("service-accounts", "trust", "list", account).stdout).toContain("system:serviceaccount:apps:pusher");
    cli("service-accounts", "trust", "remove", account, added.id);
    expect((JSON.parse(cli("service-accounts", "trust", "list", account, "--json").stdout) as { id: string }[]).map((policy) => policy.id)).not.toContain(added.id);
  });

  it("refuses a token for another branch: podman login fails, and the audit log says why", async () => {
    const host = new URL(server.url).host;
    const authfile = join(workDir, "auth-refused.json");
    const login = await runAsync("podman", ["login", TLS, "--authfile", authfile, "-u", account, "-p", await githubToken("refs/heads/feature"), host]);
    expect(login.code).not.toBe(0);
    const audit = await adminOk("GET", `/audit?action=auth.failure&actor=${encodeURIComponent(account)}`);
    expect(audit.events.map((event: { detail: string }) => event.detail).join("\n")).toMatch(/subject does not match/);
  });
});
