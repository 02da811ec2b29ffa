/**
 * Image lifecycle with real clients (issue 14, docs/lifecycle.md): tag history of skopeo and podman pushes,
 * `tags restore` bringing a previous image back for podman, an immutable tag refusing `skopeo copy` over it,
 * and `repositories delete`, all through the admin CLI. Checks of a tag right after it changed read the
 * ledger (a token that may push: storage/repository-store.ts), since pull-only reads go through the
 * production-KV model, where a location may serve its cached copy for up to 60 s.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { writeOciLayout } from "../../scripts/lib/oci-image.mjs";
import { TLS, adminOk, adminPassword, creds, httpsRequest, registryHost, registryHostB, registryUrl, run, runAsync, runOk, tempDir } from "./support";

const PROJECT = join(__dirname, "..", "..");
const NS = "lifens";
const REPO = `${NS}/app`;
type Account = { username: string; secret: string };
let pusher: Account;
let sourceA: string;
let sourceB: string;
/** Image A's manifest digest as pushed (skopeo may rewrite the layout's manifest; the same way every time). */
let digestA: string;

function cli(args: string[]) {
  const env = { ...process.env, EDGE_REGISTRY_URL: registryUrl(), EDGE_REGISTRY_PASSWORD: adminPassword() };
  return run("node", [join(PROJECT, "bin", "edge-registry.mjs"), ...args], { env });
}

function cliOk(args: string[]): string {
  const result = cli(args);
  if (result.code !== 0) throw new Error(`edge-registry ${args.join(" ")} failed (${result.code}): ${result.stderr}`);
  return result.stdout;
}

const ref = (tag: string, host = registryHost()) => `docker://${host}/${REPO}:${tag}`;

/** The digest a tag points at, read from the ledger (a token that may push reads it, never KV). */
async function ledgerTag(tag: string, repository = REPO): Promise<string | null> {
  const basic = Buffer.from(`${pusher.username}:${pusher.secret}`).toString("base64");
  const tokenResponse = await httpsRequest(`${registryUrl()}/token?service=edge-registry&scope=repository:${repository}:pull,push`, { headers: { Authorization: `Basic ${basic}` } });
  const token = JSON.parse(tokenResponse.body.toString()).token as string;
  const response = await httpsRequest(`${registryUrl()}/v2/${repository}/manifests/${tag}`, {
    method: "HEAD",
    headers: { Authorization: `Bearer ${token}`, Accept: "application/vnd.oci.image.manifest.v1+json" },
  });
  if (response.status === 404) return null;
  expect(response.status).toBe(200);
  return response.headers["docker-content-digest"] as string;
}

/** skopeo copy without recompression, so pushing the same layout again gives the same manifest digest. */
function copyIn(source: string, tag: string) {
  return run("skopeo", ["copy", "--dest-tls-verify=false", "--dest-compress=false", "--dest-creds", creds(pusher), `oci:${source}:v1`, ref(tag)]);
}

beforeAll(async () => {
  await adminOk("POST", "/namespaces", { name: NS });
  const created = await adminOk("POST", "/service-accounts", { namespace: NS, name: "life-pusher", grants: [{ namespace: NS, role: "admin" }] });
  pusher = { username: created.username, secret: created.token };
  sourceA = tempDir("life-a");
  sourceB = tempDir("life-b");
  await writeOciLayout(sourceA, [{ seed: 141, layerSizes: [64 * 1024] }], "v1");
  await writeOciLayout(sourceB, [{ seed: 142, layerSizes: [48 * 1024] }], "v1");
});

/** The identity and repository ledgers publish a key to KV at most once a second (platform.md §1), plus a margin. */
const TAG_PUBLICATION_SPACING_MS = 1_500;

describe("tag history, restore, immutable tags, repository deletion", () => {
  it("history shows skopeo and podman pushes; restore brings the previous image back and podman pulls it", async () => {
    expect(copyIn(sourceA, "v1").code).toBe(0);
    digestA = (await ledgerTag("v1"))!;
    expect(digestA).toMatch(/^sha256:/);
    // podman moves the tag: image B (pushed under another tag by skopeo) is pulled and pushed over v1.
    expect(copyIn(sourceB, "staging").code).toBe(0);
    runOk("podman", ["pull", TLS, "--creds", creds(pusher), `${registryHost()}/${REPO}:staging`]);
    const digestFile = join(tempDir("life-podman"), "digest");
    runOk("podman", ["push", TLS, "--creds", creds(pusher), "--digestfile", digestFile, `${registryHost()}/${REPO}:staging`, `${registryHost()}/${REPO}:v1`]);
    const podmanDigest = readFileSync(digestFile, "utf8").trim();
    expect(podmanDigest).not.toBe(digestA);
    expect(await ledgerTag("v1")).toBe(podmanDigest);

    const history = JSON.parse(cliOk(["--json", "tags", "history", `${REPO}:v1`])) as { from: string | null; to: string; actor: string }[];
    expect(history.map((move) => [move.from, move.to])).toEqual([
      [digestA, podmanDigest],
      [null, digestA],
    ]);
    expect(history.every((move) => move.actor === pusher.username)).toBe(true);
    expect(cliOk(["tags", "history", `${REPO}:v1`])).toMatch(/TIME\s+TAG\s+FROM\s+TO\s+ACTOR/);

    expect(cliOk(["tags", "restore", `${REPO}:v1`, "--to", digestA])).toContain(`restored to ${digestA}`);
    expect(await ledgerTag("v1")).toBe(digestA);
    // Location B never read v1 before, so it reads what KV holds: the restore is published at most a second
    // after podman's move of the tag (one write per second per key, docs/storage-schema.md "Consistency").
    await new Promise((resolve) => setTimeout(resolve, TAG_PUBLICATION_SPACING_MS));
    // Podman pulls the restored image by tag at B, skopeo verifies every blob.
    runOk("podman", ["pull", TLS, "--creds", creds(pusher), `${registryHostB()}/${REPO}:v1`]);
    const pulled = JSON.parse(runOk("podman", ["image", "inspect", `${registryHostB()}/${REPO}:v1`]).stdout)[0];
    expect(pulled.Digest).toBe(digestA);
    const target = tempDir("life-restored");
    runOk("skopeo", ["copy", "--src-tls-verify=false", "--src-creds", creds(pusher), `docker://${registryHostB()}/${REPO}@${digestA}`, `oci:${target}:v1`]);
    const restoreHistory = JSON.parse(cliOk(["--json", "tags", "history", `${REPO}:v1`, "--limit", "1"])) as { to: string; actor: string }[];
    expect(restoreHistory).toEqual([expect.objectContaining({ to: digestA, actor: "admin" })]);
  });

  it("an immutable tag refuses skopeo copy over it and skopeo delete; a new tag matching the rule is created once", async () => {
    cliOk(["immutable-tags", "add", REPO, "v*"]);
    expect(cliOk(["immutable-tags", "list", REPO])).toMatch(/v\*\s+repository\s+admin/);
    const refused = copyIn(sourceB, "v1");
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/denied/i);
    expect(refused.stderr).toContain("immutable");
    expect(await ledgerTag("v1")).toBe(digestA);
    const deleteRefused = run("skopeo", ["delete", TLS, "--creds", creds(pusher), ref("v1")]);
    expect(deleteRefused.code).not.toBe(0);
    // Pushing the image v1 already holds is no move: allowed. A new tag matching the rule: created once.
    expect(copyIn(sourceA, "v1").code).toBe(0);
    expect(copyIn(sourceB, "v2").code).toBe(0);
    expect(copyIn(sourceA, "v2").code).not.toBe(0);
    // A namespace rule reaches the repository too.
    cliOk(["immutable-tags", "remove", REPO, "v*"]);
    cliOk(["immutable-tags", "add", NS, "v*"]);
    expect(copyIn(sourceB, "v1").stderr).toMatch(/denied: tag v1 is immutable \(namespace rule/);
    cliOk(["immutable-tags", "remove", NS, "v*"]);
    expect(copyIn(sourceB, "v1").code).toBe(0);
  });

  it("repositories delete removes the repository: its tags and manifests are gone for writers at once", async () => {
    const output = cliOk(["repositories", "delete", REPO]);
    expect(output).toMatch(/deleted repository lifens\/app: 3 tags, \d+ manifests/);
    expect(await ledgerTag("v1")).toBeNull();
    expect(await ledgerTag("v2")).toBeNull();
    expect(cli(["repositories", "delete", REPO]).code).toBe(1);
    const audit = JSON.parse(cliOk(["--json", "audit", "--action", "repository.delete"])) as { target: string }[];
    expect(audit.some((event) => event.target === REPO)).toBe(true);
    // The name can be pushed again.
    expect(copyIn(sourceA, "v1").code).toBe(0);
    expect(await ledgerTag("v1")).toBe(digestA);
  });
});

describe("garbage collection with real clients", () => {
  const GC_REPO = `${NS}/gc`;
  const gcRef = (tag: string) => `docker://${registryHost()}/${GC_REPO}:${tag}`;
  const push = (source: string, tag: string) =>
    runOk("skopeo", ["copy", "--dest-tls-verify=false", "--dest-compress=false", "--dest-creds", creds(pusher), `oci:${source}:v1`, gcRef(tag)]);
  const cliArgs = (args: string[]) => [join(PROJECT, "bin", "edge-registry.mjs"), ...args];

  /** The blobs (config and layers) of an image as the registry stores it (skopeo may rewrite the layout's), with their sizes. */
  function blobsOf(tag: string): Map<string, number> {
    const manifest = JSON.parse(runOk("skopeo", ["inspect", TLS, "--raw", "--creds", creds(pusher), gcRef(tag)]).stdout);
    return new Map([manifest.config, ...manifest.layers].map((blob: { digest: string; size: number }) => [blob.digest, blob.size]));
  }

  /** Pulls every blob of an image by tag with skopeo, which verifies each digest as it downloads. */
  function pullsAndVerifies(tag: string): void {
    runOk("skopeo", ["copy", "--src-tls-verify=false", "--src-creds", creds(pusher), `docker://${registryHostB()}/${GC_REPO}:${tag}`, `oci:${tempDir("gc-pull")}:v1`]);
  }

  it("a dry run reports exactly the unreferenced blobs, the run frees exactly them, and every tagged image still pulls", async () => {
    const keep = tempDir("gc-keep");
    const drop = tempDir("gc-drop");
    await writeOciLayout(keep, [{ seed: 151, layerSizes: [96 * 1024, 32 * 1024] }], "v1");
    await writeOciLayout(drop, [{ seed: 152, layerSizes: [80 * 1024, 16 * 1024] }], "v1");
    push(keep, "keep");
    push(drop, "drop");
    const keptBlobs = blobsOf("keep");
    const droppedBlobs = blobsOf("drop");
    // Delete the dropped image (skopeo deletes the manifest its tag names), and give up restoring it.
    runOk("skopeo", ["delete", TLS, "--creds", creds(pusher), gcRef("drop")]);
    cliOk(["tags", "purge-history", GC_REPO]);

    // A push that reuses the now unreferenced blobs, racing a collection run with the default grace period:
    // the grace protects it (its blobs were released just now), so the push and the pulled image are intact.
    const [racingPush, racingGc] = await Promise.all([
      runAsync("skopeo", ["copy", "--dest-tls-verify=false", "--dest-compress=false", "--dest-creds", creds(pusher), `oci:${drop}:v1`, gcRef("again")]),
      runAsync("node", cliArgs(["--registry", registryUrl(), "--password", adminPassword(), "--json", "gc", "--repository", GC_REPO])),
    ]);
    expect(racingPush.code, racingPush.stderr).toBe(0);
    expect(racingGc.code, racingGc.stderr).toBe(0);
    expect(JSON.parse(racingGc.stdout)).toMatchObject({ blobs: 0, bytes: 0 });
    pullsAndVerifies("again");
    runOk("skopeo", ["delete", TLS, "--creds", creds(pusher), gcRef("again")]);
    cliOk(["tags", "purge-history", GC_REPO]);

    // Exactly the dropped image's blobs are unreferenced (none is shared with the kept image).
    const unreferenced = [...droppedBlobs].filter(([digest]) => !keptBlobs.has(digest));
    const expectedBytes = unreferenced.reduce((sum, [, size]) => sum + size, 0);
    const dry = JSON.parse(cliOk(["--json", "gc", "--dry-run", "--grace", "0s", "--repository", GC_REPO]));
    expect(dry).toMatchObject({ dryRun: true, blobs: unreferenced.length, bytes: expectedBytes, more: false });
    expect(cliOk(["gc", "--dry-run", "--grace", "0s", "--repository", GC_REPO])).toContain(`would free ${unreferenced.length} blobs (${expectedBytes} bytes)`);
    const freed = JSON.parse(cliOk(["--json", "gc", "--grace", "0s", "--repository", GC_REPO]));
    expect(freed).toMatchObject({ dryRun: false, blobs: unreferenced.length, bytes: expectedBytes });
    // Nothing is left to free, the kept image pulls and verifies, the freed blobs are gone.
    expect(JSON.parse(cliOk(["--json", "gc", "--dry-run", "--grace", "0s", "--repository", GC_REPO]))).toMatchObject({ blobs: 0, bytes: 0 });
    pullsAndVerifies("keep");
    const basic = Buffer.from(`${pusher.username}:${pusher.secret}`).toString("base64");
    const tokenResponse = await httpsRequest(`${registryUrl()}/token?service=edge-registry&scope=repository:${GC_REPO}:pull,push`, { headers: { Authorization: `Basic ${basic}` } });
    const token = JSON.parse(tokenResponse.body.toString()).token as string;
    for (const [digest] of unreferenced) {
      const response = await httpsRequest(`${registryUrl()}/v2/${GC_REPO}/blobs/${digest}`, { method: "HEAD", headers: { Authorization: `Bearer ${token}` } });
      expect(response.status).toBe(404);
    }
    // The same image pushed again is stored afresh and pulls.
    push(drop, "back");
    pullsAndVerifies("back");
  });
});

describe("retention with real clients", () => {
  it("a keep-newest rule removes exactly the tags it names, recorded in the tag history", async () => {
    const repository = `${NS}/ret`;
    const tags = ["rc-1", "rc-2", "stable", "rc-3"];
    for (const tag of tags) {
      runOk("skopeo", ["copy", "--dest-tls-verify=false", "--dest-compress=false", "--dest-creds", creds(pusher), `oci:${sourceA}:v1`, `docker://${registryHost()}/${repository}:${tag}`]);
    }
    cliOk(["retention", "add", repository, "rc-*", "--keep", "1"]);
    expect(cliOk(["retention", "list", repository])).toMatch(/rc-\*\s+1/);
    const planned = JSON.parse(cliOk(["--json", "retention", "run", repository, "--dry-run"])) as { tag: string }[];
    const removed = JSON.parse(cliOk(["--json", "retention", "run", repository])) as { tag: string }[];
    // Whichever ran first (the ledger's alarm may apply the rule by itself), rc-1 and rc-2 are gone, nothing else.
    expect([...planned, ...removed].map((removal) => removal.tag).every((tag) => tag === "rc-1" || tag === "rc-2")).toBe(true);
    for (const tag of ["rc-1", "rc-2"]) expect(await ledgerTag(tag, repository)).toBeNull();
    for (const tag of ["rc-3", "stable"]) expect(await ledgerTag(tag, repository)).not.toBeNull();
    const history = JSON.parse(cliOk(["--json", "tags", "history", `${repository}:rc-1`])) as { to: string | null; actor: string }[];
    expect(history[0]).toMatchObject({ to: null, actor: "retention" });
    const list = JSON.parse(runOk("skopeo", ["list-tags", TLS, "--creds", creds(pusher), `docker://${registryHost()}/${repository}`]).stdout);
    expect(list.Tags.sort()).toEqual(["rc-3", "stable"]);
  });
});


describe("quotas with real clients", () => {
  it("a namespace quota refuses a skopeo push that would pass it, with the use and the quota, and accepts one that fits", async () => {
    const namespace = "quotans";
    await adminOk("POST", "/namespaces", { name: namespace });
    const small = tempDir("quota-small");
    const large = tempDir("quota-large");
    await writeOciLayout(small, [{ seed: 161, layerSizes: [64 * 1024] }], "v1");
    await writeOciLayout(large, [{ seed: 162, layerSizes: [256 * 1024] }], "v1");
    const quota = 200 * 1024;
    expect(cliOk(["namespaces", "quota", namespace, "200KiB"])).toContain(`quota ${quota} bytes`);
    const created = await adminOk("POST", "/service-accounts", { namespace, name: "quota-pusher", grants: [{ namespace, role: "write" }] });
    const account = { username: created.username as string, secret: created.token as string };
    const copy = (source: string, repository: string) =>
      run("skopeo", ["copy", "--dest-tls-verify=false", "--dest-compress=false", "--dest-creds", creds(account), `oci:${source}:v1`, `docker://${registryHost()}/${repository}:v1`]);

    const fits = copy(small, `${namespace}/small`);
    expect(fits.code, fits.stderr).toBe(0);
    const usage = JSON.parse(cliOk(["--json", "namespaces", "usage", namespace]));
    const manifest = JSON.parse(runOk("skopeo", ["inspect", TLS, "--raw", "--creds", creds(account), `docker://${registryHost()}/${namespace}/small:v1`]).stdout);
    const stored = [manifest.config, ...manifest.layers].reduce((sum: number, blob: { size: number }) => sum + blob.size, 0);
    expect(usage).toMatchObject({ quotaBytes: quota, usedBytes: stored, logicalBytes: stored, reservedBytes: 0 });

    const refused = copy(large, `${namespace}/large`);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/denied/i);
    expect(refused.stderr).toContain(`namespace ${namespace} would exceed its storage quota: ${stored} bytes used`);
    expect(refused.stderr).toContain(`of a quota of ${quota} bytes`);
    // Nothing of the refused push is counted; once the quota is cleared, the same push goes through.
    expect(JSON.parse(cliOk(["--json", "namespaces", "usage", namespace]))).toMatchObject({ usedBytes: stored });
    expect(cliOk(["repositories", "usage", `${namespace}/small`])).toMatch(new RegExp(`${namespace}/small\\s+${stored}\\s+${stored}`));
    cliOk(["namespaces", "quota", namespace, "--clear"]);
    const accepted = copy(large, `${namespace}/large`);
    expect(accepted.code, accepted.stderr).toBe(0);
  });
});
