/**
 * Real clients push and pull through the token service with service accounts: skopeo (multi-layer image
 * with a layer over 32 MiB sent as a chunked body; a multi-architecture index), podman, buildah.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { writeOciLayout } from "../../scripts/lib/oci-image.mjs";
import { TLS, adminOk, creds, productionKvTtlMs, registryHost, run, runOk, tempDir } from "./support";

type Account = { username: string; secret: string };
let pusher: Account;
let puller: Account;
const NS = "e2e";
const MiB = 1024 * 1024;

async function serviceAccount(name: string, role: string, namespace = NS): Promise<Account> {
  const created = await adminOk("POST", "/service-accounts", { namespace, name, grants: [{ namespace, role }] });
  return { username: created.username, secret: created.token };
}

const ref = (repository: string, tag: string) => `docker://${registryHost()}/${repository}:${tag}`;

function inspectRaw(repository: string, tag: string, account: Account): any {
  return JSON.parse(runOk("skopeo", ["inspect", TLS, "--raw", "--creds", creds(account), ref(repository, tag)]).stdout);
}

beforeAll(async () => {
  await adminOk("POST", "/namespaces", { name: NS });
  pusher = await serviceAccount("ci-pusher", "admin");
  puller = await serviceAccount("ci-puller", "read");
});

describe("skopeo", () => {
  it("copies a 3-layer image (largest 40 MiB, compressed on the fly so sent chunked) in and out intact", async () => {
    const source = tempDir("src");
    await writeOciLayout(source, [{ seed: 11, layerSizes: [1 * MiB, 40 * MiB, 3 * MiB] }], "v1");
    const push = runOk("skopeo", ["copy", "--dest-tls-verify=false", "--dest-creds", creds(pusher), `oci:${source}:v1`, ref(`${NS}/big`, "v1")]);
    const pushed = inspectRaw(`${NS}/big`, "v1", puller);
    expect(pushed.layers).toHaveLength(3);

    const target = tempDir("pulled");
    const pull = runOk("skopeo", ["copy", "--src-tls-verify=false", "--src-creds", creds(puller), ref(`${NS}/big`, "v1"), `oci:${target}:v1`]);
    // skopeo verifies every blob's digest as it downloads; check the manifest we got is the one stored.
    const index = JSON.parse(readFileSync(join(target, "index.json"), "utf8"));
    const manifest = JSON.parse(readFileSync(join(target, "blobs", "sha256", index.manifests[0].digest.slice(7)), "utf8"));
    expect(manifest.layers.map((layer: { digest: string }) => layer.digest)).toEqual(pushed.layers.map((layer: { digest: string }) => layer.digest));
    console.log(`skopeo push 3 layers (44 MiB): ${push.seconds.toFixed(2)} s; pull: ${pull.seconds.toFixed(2)} s`);
  });

  it("copies a multi-architecture index with --all", async () => {
    const source = tempDir("multi");
    await writeOciLayout(source, [
      { seed: 21, layerSizes: [256 * 1024], architecture: "amd64" },
      { seed: 22, layerSizes: [256 * 1024], architecture: "arm64" },
    ], "multi");
    runOk("skopeo", ["copy", "--all", "--dest-tls-verify=false", "--dest-creds", creds(pusher), `oci:${source}:multi`, ref(`${NS}/multi`, "v1")]);
    const index = inspectRaw(`${NS}/multi`, "v1", puller);
    expect(index.mediaType).toBe("application/vnd.oci.image.index.v1+json");
    expect(index.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture).sort()).toEqual(["amd64", "arm64"]);
    const target = tempDir("multi-pulled");
    runOk("skopeo", ["copy", "--all", "--src-tls-verify=false", "--src-creds", creds(puller), ref(`${NS}/multi`, "v1"), `oci:${target}:v1`]);
  });

  it("inspects, lists tags and deletes", async () => {
    const source = tempDir("small");
    await writeOciLayout(source, [{ seed: 31, layerSizes: [64 * 1024] }], "v1");
    for (const tag of ["v1", "v2"]) runOk("skopeo", ["copy", "--dest-tls-verify=false", "--dest-creds", creds(pusher), `oci:${source}:v1`, ref(`${NS}/small`, tag)]);
    const inspected = JSON.parse(runOk("skopeo", ["inspect", TLS, "--creds", creds(puller), ref(`${NS}/small`, "v1")]).stdout);
    expect(inspected.Architecture).toBe("amd64");
    const tags = JSON.parse(runOk("skopeo", ["list-tags", TLS, "--creds", creds(puller), `docker://${registryHost()}/${NS}/small`]).stdout);
    expect(tags.Tags).toEqual(["v1", "v2"]);
    // The puller cannot delete; the admin-role account can (skopeo asks for `*`).
    expect(run("skopeo", ["delete", TLS, "--creds", creds(puller), ref(`${NS}/small`, "v2")]).code).not.toBe(0);
    runOk("skopeo", ["delete", TLS, "--creds", creds(pusher), ref(`${NS}/small`, "v2")]);
    // Gone at once for the deleter, even with skopeo's pull-only inspect token: this location wrote the
    // repository, so its reads go to the ledger (storage/recent-writes.ts). Elsewhere KV catches up within
    // the publication bound (docs/storage-schema.md "Consistency"), which the poll allows for.
    const inspectAs = (account: Account) => run("skopeo", ["inspect", TLS, "--creds", creds(account), ref(`${NS}/small`, "v2")]);
    const byDeleter = inspectAs(pusher);
    expect(byDeleter.code).not.toBe(0);
    expect(byDeleter.stderr).toMatch(/manifest unknown/i);
    await expect.poll(() => inspectAs(puller).stderr, { timeout: productionKvTtlMs() + 5_000, interval: 500 }).toMatch(/manifest unknown/i);
  });

  it("a pull-only service account cannot push, with a clear error", async () => {
    const source = tempDir("denied");
    await writeOciLayout(source, [{ seed: 41, layerSizes: [1024] }], "v1");
    const result = run("skopeo", ["copy", "--dest-tls-verify=false", "--dest-creds", creds(puller), `oci:${source}:v1`, ref(`${NS}/denied`, "v1")]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/denied|unauthorized|authentication required/i);
  });

  it("anonymous pull works for a public namespace and is refused for a private one", async () => {
    await adminOk("POST", "/namespaces", { name: "e2epub", public: true });
    const publisher = await serviceAccount("publisher", "write", "e2epub");
    const source = tempDir("public");
    await writeOciLayout(source, [{ seed: 51, layerSizes: [2048] }], "v1");
    runOk("skopeo", ["copy", "--dest-tls-verify=false", "--dest-creds", creds(publisher), `oci:${source}:v1`, ref("e2epub/app", "v1")]);
    runOk("skopeo", ["copy", "--src-tls-verify=false", "--src-no-creds", ref("e2epub/app", "v1"), `oci:${tempDir("anon")}:v1`]);
    const refused = run("skopeo", ["inspect", TLS, "--no-creds", ref(`${NS}/big`, "v1")]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/unauthorized|authentication required|denied/i);
  });
});

describe("podman and buildah", () => {
  it("podman pulls, re-tags and pushes, then pulls the pushed image", async () => {
    const source = tempDir("podman-src");
    await writeOciLayout(source, [{ seed: 61, layerSizes: [512 * 1024, 2 * MiB] }], "v1");
    runOk("skopeo", ["copy", "--dest-tls-verify=false", "--dest-creds", creds(pusher), `oci:${source}:v1`, ref(`${NS}/podman-src`, "v1")]);
    const authfile = join(tempDir("podman-auth"), "auth.json");
    runOk("podman", ["login", TLS, "--authfile", authfile, "-u", pusher.username, "--password-stdin", registryHost()], { input: pusher.secret });
    const image = `${registryHost()}/${NS}/podman-src:v1`;
    runOk("podman", ["pull", TLS, "--authfile", authfile, image]);
    const copy = `${registryHost()}/${NS}/podman-push:v1`;
    runOk("podman", ["tag", image, copy]);
    runOk("podman", ["push", TLS, "--authfile", authfile, copy]);
    runOk("podman", ["rmi", "-f", image, copy]);
    const pulled = runOk("podman", ["pull", TLS, "--authfile", authfile, copy]);
    expect(pulled.stdout.trim()).toMatch(/^[0-9a-f]{64}$/m);
    runOk("podman", ["rmi", "-f", copy]);
  });

  it("buildah builds from scratch and pushes", async () => {
    const authfile = join(tempDir("buildah-auth"), "auth.json");
    runOk("buildah", ["login", TLS, "--authfile", authfile, "-u", pusher.username, "--password-stdin", registryHost()], { input: pusher.secret });
    const container = runOk("buildah", ["from", "scratch"]).stdout.trim();
    const file = join(tempDir("buildah-file"), "hello.txt");
    writeFileSync(file, "hello from buildah\n");
    runOk("buildah", ["copy", container, file, "/hello.txt"]);
    const imageId = runOk("buildah", ["commit", container, "e2e-buildah:latest"]).stdout.trim().split("\n").at(-1)!;
    runOk("buildah", ["push", TLS, "--authfile", authfile, imageId, `docker://${registryHost()}/${NS}/buildah:v1`]);
    runOk("buildah", ["rm", container]);
    const inspected = JSON.parse(runOk("skopeo", ["inspect", TLS, "--creds", creds(puller), ref(`${NS}/buildah`, "v1")]).stdout);
    expect(inspected.Layers).toHaveLength(1);
  });
});
