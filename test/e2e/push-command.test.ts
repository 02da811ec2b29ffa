/**
 * `edge-registry push` (bin/push.mjs) against the running Worker: an OCI layout pushed in 6 MiB chunks and
 * pulled back by skopeo and podman; a `podman save` docker-archive with podman's stored credentials; a
 * second push that uploads nothing; a multi-architecture index from an oci-archive; a push killed mid-chunk that resumes without re-sending stored chunks;
 * a pull-only account refused.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { writeOciLayout } from "../../scripts/lib/oci-image.mjs";
import { TLS, adminOk, creds, registryHost, registryUrl, run, runOk, tempDir } from "./support";

type Account = { username: string; secret: string };
type BlobResult = { digest: string; size: number; result: string; bytesSent: number; chunks: number; resumedFrom: number };
type Summary = {
  digest: string;
  bytesSent: number;
  chunks: number;
  blobsUploaded: number;
  blobsExisting: number;
  blobs: BlobResult[];
  manifests: { digest: string; reference: string }[];
  seconds: number;
};

const NS = "e2epush";
const MiB = 1024 * 1024;
const CHUNK = 6 * MiB;
const CLI = join(process.cwd(), "bin", "edge-registry.mjs");

let writer: Account;
let reader: Account;
let layout: string;
let layers: { digest: string; size: number }[];
let configDigest: string;

async function serviceAccount(name: string, role: string): Promise<Account> {
  const created = await adminOk("POST", "/service-accounts", { namespace: NS, name, grants: [{ namespace: NS, role }] });
  return { username: created.username, secret: created.token };
}

/** The CLI's arguments for a push as `account`, the password on stdin; resume records under `cache`. */
function pushArgs(source: string, destination: string, account: Account | undefined, extra: string[] = []): string[] {
  const login = account ? ["--user", account.username, "--password-stdin"] : [];
  return [CLI, "push", "--registry", registryUrl(), ...login, "--json", ...extra, source, destination];
}

function push(source: string, destination: string, account: Account | undefined, cache: string, extra: string[] = []) {
  return run("node", pushArgs(source, destination, account, extra), { input: account?.secret ?? "", env: { ...process.env, XDG_CACHE_HOME: cache } });
}

function pushOk(source: string, destination: string, account: Account | undefined, cache: string, extra: string[] = []): Summary {
  const result = push(source, destination, account, cache, extra);
  if (result.code !== 0) throw new Error(`push failed (${result.code}):\n${result.stderr}\n${result.stdout}`);
  return JSON.parse(result.stdout) as Summary;
}

const blobPath = (digest: string) => join(layout, "blobs", "sha256", digest.slice("sha256:".length));
const sha256 = (bytes: Buffer) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

/**
 * Pulls with skopeo into a `dir:` target, which keeps blobs as served (an `oci:` target would recompress
 * uncompressed layers), and checks every file against its digest; returns the manifest's and layers' digests.
 */
function pullAndVerify(reference: string): { manifest: string; layers: string[] } {
  const target = tempDir("pulled");
  runOk("skopeo", ["copy", "--src-tls-verify=false", "--src-creds", creds(reader), `docker://${registryHost()}/${reference}`, `dir:${target}`]);
  const manifestBytes = readFileSync(join(target, "manifest.json"));
  const manifest = JSON.parse(manifestBytes.toString("utf8"));
  for (const blob of [manifest.config, ...manifest.layers]) expect(sha256(readFileSync(join(target, blob.digest.slice(7))))).toBe(blob.digest);
  return { manifest: sha256(manifestBytes), layers: manifest.layers.map((layer: { digest: string }) => layer.digest) };
}

beforeAll(async () => {
  await adminOk("POST", "/namespaces", { name: NS });
  writer = await serviceAccount("pusher", "write");
  reader = await serviceAccount("reader", "read");
  layout = tempDir("push-src");
  // A ~20 MiB incompressible layer (four 6 MiB chunks) and a small one.
  const { manifests } = await writeOciLayout(layout, [{ seed: 71, layerSizes: [20 * MiB, 256 * 1024] }], "v1");
  const manifest = JSON.parse(readFileSync(blobPath(manifests[0]!.digest), "utf8"));
  layers = manifest.layers;
  configDigest = manifest.config.digest;
});

describe("edge-registry push", () => {
  it("pushes an OCI layout in chunks; skopeo and podman pull it back with every digest intact", () => {
    const summary = pushOk(`oci:${layout}:v1`, `${NS}/app:v1`, writer, tempDir("cache"), ["--chunk-size", "6MiB"]);
    const big = summary.blobs.find((blob) => blob.digest === layers[0]!.digest)!;
    expect(big.result).toBe("uploaded");
    expect(big.chunks).toBe(Math.ceil(big.size / CHUNK));
    expect(big.bytesSent).toBe(big.size);
    expect(summary.blobsUploaded).toBe(3);
    console.log(`edge-registry push of ${(big.size / MiB).toFixed(1)} MiB + 2 small blobs: ${summary.seconds} s, ${summary.chunks} chunks`);

    expect(pullAndVerify(`${NS}/app:v1`)).toEqual({ manifest: summary.digest, layers: layers.map((layer) => layer.digest) });

    const authfile = join(tempDir("podman-auth"), "auth.json");
    runOk("podman", ["login", TLS, "--authfile", authfile, "-u", reader.username, "--password-stdin", registryHost()], { input: reader.secret });
    const image = `${registryHost()}/${NS}/app:v1`;
    const pulledId = runOk("podman", ["pull", TLS, "--authfile", authfile, image]).stdout.trim().split("\n").at(-1);
    expect(`sha256:${pulledId}`).toBe(configDigest);
    runOk("podman", ["rmi", "-f", image]);
  });

  it("a second push of the same image uploads nothing", () => {
    const summary = pushOk(`oci:${layout}:v1`, `${NS}/app:v1`, writer, tempDir("cache"));
    expect(summary.bytesSent).toBe(0);
    expect(summary.chunks).toBe(0);
    expect(summary.blobsUploaded).toBe(0);
    expect(summary.blobs.map((blob) => blob.result)).toEqual(["exists", "exists", "exists"]);
  });

  it("pushes a `podman save` docker-archive with the credentials podman stored", async () => {
    const source = tempDir("archive-src");
    await writeOciLayout(source, [{ seed: 72, layerSizes: [8 * MiB, 64 * 1024] }], "v1");
    const local = "localhost/e2e-push-archive:v1";
    runOk("skopeo", ["copy", `oci:${source}:v1`, `containers-storage:${local}`]);
    const archive = join(tempDir("archive"), "image.tar");
    runOk("podman", ["save", "--format", "docker-archive", "-o", archive, local]);
    runOk("podman", ["rmi", "-f", local]);
    const authfile = join(tempDir("archive-auth"), "auth.json");
    runOk("podman", ["login", TLS, "--authfile", authfile, "-u", writer.username, "--password-stdin", registryHost()], { input: writer.secret });

    const summary = pushOk(`docker-archive:${archive}`, `${NS}/archived:v1`, undefined, tempDir("cache"), ["--authfile", authfile, "--chunk-size", "3MiB"]);
    expect(summary.blobsUploaded).toBe(3);
    expect(summary.chunks).toBeGreaterThanOrEqual(3 + 2);
    // Layers are pushed as the archive holds them (uncompressed tars): their digests are the config's diff ids.
    const manifest = JSON.parse(runOk("skopeo", ["inspect", TLS, "--raw", "--creds", creds(reader), `docker://${registryHost()}/${NS}/archived:v1`]).stdout);
    const config = JSON.parse(runOk("skopeo", ["inspect", TLS, "--config", "--raw", "--creds", creds(reader), `docker://${registryHost()}/${NS}/archived:v1`]).stdout);
    expect(manifest.layers.map((layer: { digest: string }) => layer.digest)).toEqual(config.rootfs.diff_ids);
    expect(manifest.layers.every((layer: { mediaType: string }) => layer.mediaType === "application/vnd.oci.image.layer.v1.tar")).toBe(true);
    expect(pullAndVerify(`${NS}/archived:v1`)).toEqual({ manifest: summary.digest, layers: config.rootfs.diff_ids });
  });

  it("pushes a multi-architecture index from an oci-archive: children first, then the tagged index", async () => {
    const source = tempDir("multi-src");
    await writeOciLayout(source, [
      { seed: 73, layerSizes: [256 * 1024], architecture: "amd64" },
      { seed: 74, layerSizes: [256 * 1024], architecture: "arm64" },
    ], "multi");
    const archive = join(tempDir("multi-archive"), "multi.tar");
    runOk("skopeo", ["copy", "--all", `oci:${source}:multi`, `oci-archive:${archive}:v2`]);
    const summary = pushOk(`oci-archive:${archive}:v2`, `${NS}/multi:v2`, writer, tempDir("cache"));
    expect(summary.blobsUploaded).toBe(4);
    expect(summary.manifests.map((manifest) => manifest.reference)).toEqual([
      expect.stringMatching(/^sha256:/),
      expect.stringMatching(/^sha256:/),
      "v2",
    ]);
    const index = JSON.parse(runOk("skopeo", ["inspect", TLS, "--raw", "--creds", creds(reader), `docker://${registryHost()}/${NS}/multi:v2`]).stdout);
    expect(index.mediaType).toBe("application/vnd.oci.image.index.v1+json");
    expect(index.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture).sort()).toEqual(["amd64", "arm64"]);
    runOk("skopeo", ["copy", "--all", "--src-tls-verify=false", "--src-creds", creds(reader), `docker://${registryHost()}/${NS}/multi:v2`, `dir:${tempDir("multi-pulled")}`]);
  });

  it("a push killed mid-chunk resumes from the registry's Range without re-sending stored chunks", async () => {
    const cache = tempDir("cache");
    const destination = `${NS}/resumed:v1`;
    const args = pushArgs(`oci:${layout}:v1`, destination, writer, ["--chunk-size", "6MiB"]);
    const env = { ...process.env, XDG_CACHE_HOME: cache };
    // Killed as soon as the second chunk of the 20 MiB layer is stored: the third is then in flight.
    const killed = await new Promise<{ signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
      const child = spawn("node", args, { env, stdio: ["pipe", "pipe", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (data) => {
        stderr += data;
        if (/chunk 2 stored/.test(stderr)) child.kill("SIGKILL");
      });
      child.on("close", (_code, signal) => resolve({ signal, stderr }));
      child.stdin.end(writer.secret);
    });
    expect(killed.signal, killed.stderr).toBe("SIGKILL");

    const summary = pushOk(`oci:${layout}:v1`, destination, writer, cache, ["--chunk-size", "6MiB"]);
    const big = summary.blobs.find((blob) => blob.digest === layers[0]!.digest)!;
    expect(big.result).toBe("uploaded");
    expect(big.resumedFrom).toBeGreaterThanOrEqual(2 * CHUNK);
    expect(big.resumedFrom % CHUNK).toBe(0);
    // Only what the registry did not have was sent again.
    expect(big.bytesSent).toBe(big.size - big.resumedFrom);
    console.log(`resumed push: layer resumed at ${big.resumedFrom / MiB} MiB, ${big.bytesSent} of ${big.size} bytes sent, ${summary.seconds} s`);
    expect(pullAndVerify(destination)).toEqual({ manifest: summary.digest, layers: layers.map((layer) => layer.digest) });
  });

  it("an account that may only pull is refused before any upload, with exit code 1", () => {
    const result = push(`oci:${layout}:v1`, `${NS}/denied:v1`, reader, tempDir("cache"));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${reader.username} (credentials from the command line) may not push to ${NS}/denied`);
    expect(result.stderr).not.toContain(reader.secret);
  });
});
