/**
 * Imports from a third-party registry (README "Import"): Debian's docker-registry on 127.0.0.1 with htpasswd
 * (bcrypt) auth as the source. A multi-architecture index and a 3-layer image are imported (one through the
 * API, one through `edge-registry import`), pulled with podman and compared with the source by digest; a
 * scheduled import picks up a tag moved upstream when the cron trigger runs (wrangler dev's /__scheduled).
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeOciLayout } from "../../scripts/lib/oci-image.mjs";
import { TLS, adminOk, adminPassword, adminRequest, creds, httpsRequest, productionKvTtlMs, registryHost, registryUrl, run, runOk, tempDir } from "./support";
import { startUpstreamRegistry, type UpstreamRegistryProcess } from "./upstream-registry";

const PROJECT = join(__dirname, "..", "..");
const NS = "imports";
const UPSTREAM_USER = { username: "source-user", password: "source-password-7f3a" };
const upstreamCreds = `${UPSTREAM_USER.username}:${UPSTREAM_USER.password}`;
type Account = { username: string; secret: string };
let upstream: UpstreamRegistryProcess;
let puller: Account;
/** When the scheduled import was made (its first check is due 60 s later). */
let scheduledAt = 0;

const sha256 = (text: string) => `sha256:${createHash("sha256").update(text).digest("hex")}`;

/** Pushes an OCI layout to the upstream as `repository:tag`; returns the manifest's digest there. */
async function pushUpstream(images: Parameters<typeof writeOciLayout>[1], repository: string, tag: string): Promise<string> {
  const dir = tempDir("upstream-src");
  await writeOciLayout(dir, images, tag);
  runOk("skopeo", ["copy", "--all", "--dest-tls-verify=false", "--dest-creds", upstreamCreds, `oci:${dir}:${tag}`, `docker://${upstream.host}/${repository}:${tag}`]);
  return upstreamDigest(repository, tag);
}

function upstreamDigest(repository: string, tag: string): string {
  return sha256(runOk("skopeo", ["inspect", "--raw", "--tls-verify=false", "--creds", upstreamCreds, `docker://${upstream.host}/${repository}:${tag}`]).stdout);
}

function localRaw(repository: string, tag: string): string {
  return runOk("skopeo", ["inspect", "--raw", TLS, "--creds", creds(puller), `docker://${registryHost()}/${repository}:${tag}`]).stdout;
}

function cli(args: string[], input?: string) {
  const env = { ...process.env, EDGE_REGISTRY_URL: registryUrl(), EDGE_REGISTRY_PASSWORD: adminPassword() };
  return run("node", [join(PROJECT, "bin", "edge-registry.mjs"), ...args], { input, env });
}

/** Pulls with podman; returns the digest podman recorded for the image. */
function podmanPull(repository: string, tag: string): string {
  const authfile = join(tempDir("import-auth"), "auth.json");
  runOk("podman", ["login", TLS, "--authfile", authfile, "-u", puller.username, "--password-stdin", registryHost()], { input: puller.secret });
  const image = `${registryHost()}/${repository}:${tag}`;
  runOk("podman", ["pull", TLS, "--authfile", authfile, image]);
  const digest = runOk("podman", ["image", "inspect", "--format", "{{.Digest}}", image]).stdout.trim();
  runOk("podman", ["rmi", "-f", image]);
  return digest;
}

beforeAll(async () => {
  upstream = await startUpstreamRegistry(UPSTREAM_USER);
  await adminOk("POST", "/namespaces", { name: NS });
  const created = await adminOk("POST", "/service-accounts", { namespace: NS, name: "import-puller", grants: [{ namespace: NS, role: "read" }] });
  puller = { username: created.username, secret: created.token };
  // The scheduled import first, so that its interval (60 s, the shortest) passes while the other tests run.
  await pushUpstream([{ seed: 301, layerSizes: [64 * 1024] }], "team/moving", "stable");
  const scheduled = await adminOk("POST", `/repositories/${NS}/moving/imports`, {
    source: `http://${upstream.host}/team/moving:stable`,
    scheduled: true,
    everySeconds: 60,
    ...UPSTREAM_USER,
  });
  expect(scheduled.state, scheduled.lastError).toBe("complete");
  scheduledAt = Date.now();
});

afterAll(async () => {
  await upstream?.stop();
});

describe("import", () => {
  it("imports a multi-architecture index with its source's digest; podman pulls it", async () => {
    const digest = await pushUpstream(
      [
        { seed: 311, layerSizes: [128 * 1024], architecture: "amd64" },
        { seed: 312, layerSizes: [128 * 1024], architecture: "arm64" },
      ],
      "library/multi",
      "v1",
    );
    const status = await adminOk("POST", `/repositories/${NS}/multi/imports`, { source: `http://${upstream.host}/library/multi:v1`, ...UPSTREAM_USER });
    expect(status.state, status.lastError).toBe("complete");
    expect(status.tags.v1.digest).toBe(digest);
    // The password is stored sealed and never answered.
    expect(JSON.stringify(status)).not.toContain(UPSTREAM_USER.password);
    expect(status.credentials).toEqual({ username: UPSTREAM_USER.username });
    const stored = localRaw(`${NS}/multi`, "v1");
    expect(sha256(stored)).toBe(digest);
    expect(JSON.parse(stored).manifests).toHaveLength(2);
    // podman pulls the amd64 image of the index; its digest is the index's, as at the source.
    expect(podmanPull(`${NS}/multi`, "v1")).toBe(digest);
    // The repository records its source; the status is readable.
    const read = await adminOk("GET", `/repositories/${NS}/multi/imports`);
    expect(read.source).toMatchObject({ registry: `http://${upstream.host}`, repository: "library/multi", tag: "v1" });
    expect(JSON.stringify(read)).not.toContain(UPSTREAM_USER.password);
  });

  it("imports a 3-layer image with `edge-registry import`; podman pulls it and the digests match", async () => {
    const digest = await pushUpstream([{ seed: 321, layerSizes: [256 * 1024, 1024 * 1024, 64 * 1024], gzip: true }], "library/three", "1.0");
    const result = cli(["import", `http://${upstream.host}/library/three:1.0`, `${NS}/three:stable`, "--username", UPSTREAM_USER.username, "--upstream-password-stdin"], UPSTREAM_USER.password);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("complete");
    const stored = localRaw(`${NS}/three`, "stable");
    expect(sha256(stored)).toBe(digest);
    expect(JSON.parse(stored).layers).toHaveLength(3);
    expect(podmanPull(`${NS}/three`, "stable")).toBe(digest);
    const status = cli(["import", "status", `${NS}/three`]);
    expect(status.stdout).toContain(digest);
  });

  it("imports one platform of an index with --platform, under the platform's own digest", async () => {
    const result = cli(["import", `http://${upstream.host}/library/multi:v1`, `${NS}/arm:v1`, "--platform", "linux/arm64", "--username", UPSTREAM_USER.username, "--upstream-password-stdin"], UPSTREAM_USER.password);
    expect(result.code, result.stderr).toBe(0);
    const index = JSON.parse(localRaw(`${NS}/multi`, "v1"));
    const arm = index.manifests.find((entry: { platform: { architecture: string } }) => entry.platform.architecture === "arm64");
    expect(sha256(localRaw(`${NS}/arm`, "v1"))).toBe(arm.digest);
  });

  it("imports a layer larger than one invocation moves in ranges, resumed by the next cron run", async () => {
    const MiB = 1024 * 1024;
    // IMPORT_CHUNK_BYTES 6 MiB, IMPORT_BYTES_PER_RUN 12 MiB (test/e2e/global-setup.ts): 20 MiB takes two runs.
    const digest = await pushUpstream([{ seed: 331, layerSizes: [20 * MiB] }], "library/large", "v1");
    const first = await adminOk("POST", `/repositories/${NS}/large/imports`, { source: `http://${upstream.host}/library/large:v1`, ...UPSTREAM_USER });
    expect(first.state, first.lastError).toBe("pending");
    expect(first.pendingTags).toEqual(["v1"]);
    expect(Object.keys(first.blobSessions)).toHaveLength(1);
    const cron = await httpsRequest(`${registryUrl()}/__scheduled?cron=${encodeURIComponent("23 * * * *")}`);
    expect(cron.status).toBe(200);
    const second = await adminOk("GET", `/repositories/${NS}/large/imports`);
    expect(second.state, second.lastError).toBe("complete");
    expect(second.blobSessions).toEqual({});
    const stored = localRaw(`${NS}/large`, "v1");
    expect(sha256(stored)).toBe(digest);
    // skopeo verifies every blob's digest as it downloads.
    runOk("skopeo", ["copy", "--src-tls-verify=false", "--src-creds", creds(puller), `docker://${registryHost()}/${NS}/large:v1`, `oci:${tempDir("large-pulled")}:v1`]);
  });

  it("reports wrong source credentials as a failed import, storing nothing", async () => {
    const response = await adminRequest("POST", `/repositories/${NS}/refused/imports`, {
      source: `http://${upstream.host}/library/three:1.0`,
      username: UPSTREAM_USER.username,
      password: "wrong-password",
    });
    expect(response.status).toBe(201);
    expect(response.json.state).toBe("failed");
    expect(response.json.lastError).toMatch(/401|credentials/);
    expect(run("skopeo", ["inspect", "--raw", TLS, "--creds", creds(puller), `docker://${registryHost()}/${NS}/refused:1.0`]).code).not.toBe(0);
  });

  it("refuses plain-HTTP sources that are not on loopback and malformed ones", async () => {
    for (const source of ["http://registry.example.com/a/b:1", "not a source", `http://${upstream.host}/UPPER:1`]) {
      const response = await adminRequest("POST", `/repositories/${NS}/bad/imports`, { source });
      expect(response.status, source).toBe(400);
    }
  });

  it("a scheduled import picks up a tag moved upstream when the cron trigger runs", async () => {
    const before = upstreamDigest("team/moving", "stable");
    expect(sha256(localRaw(`${NS}/moving`, "stable"))).toBe(before);
    const moved = await pushUpstream([{ seed: 302, layerSizes: [32 * 1024, 16 * 1024] }], "team/moving", "stable");
    expect(moved).not.toBe(before);
    // The import's next check is due 60 s after its last run (the import, or a cron run of an earlier test).
    const { nextRunAt } = await adminOk("GET", `/repositories/${NS}/moving/imports`);
    const wait = Math.max(scheduledAt + 61_000, Date.parse(nextRunAt) + 1_000) - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const cron = await httpsRequest(`${registryUrl()}/__scheduled?cron=${encodeURIComponent("23 * * * *")}`);
    expect(cron.status).toBe(200);
    const status = await adminOk("GET", `/repositories/${NS}/moving/imports`);
    expect(status.tags.stable.digest).toBe(moved);
    // Pulls by tag read KV at the edge: the move reaches them within KV's cache time (docs/storage-schema.md "Consistency").
    await expect.poll(() => sha256(localRaw(`${NS}/moving`, "stable")), { timeout: productionKvTtlMs() + 5_000, interval: 1000 }).toBe(moved);
    // The move is in the tag history, made by the import.
    const history = await adminOk("GET", `/repositories/${NS}/moving/tags/history?tag=stable`);
    const moves = history.moves ?? history.history ?? history;
    expect(JSON.stringify(moves)).toContain(moved);
    expect(JSON.stringify(moves)).toContain("import:admin");
    expect(podmanPull(`${NS}/moving`, "stable")).toBe(moved);
  }, 300_000);
});
