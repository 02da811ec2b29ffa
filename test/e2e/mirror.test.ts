/**
 * The pull-through mirror (README "Mirror") with podman: a `registries.conf` (CONTAINERS_REGISTRIES_CONF) makes
 * this registry's namespace `mirror` a `[[registry.mirror]]` of a local docker-registry. podman pulls an image
 * the registry never had (fetched through, as a pull-only service account), then pulls it again with the
 * upstream stopped (served from what was stored).
 */
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeOciLayout } from "../../scripts/lib/oci-image.mjs";
import { TLS, adminOk, adminRequest, creds, registryHost, run, runOk, tempDir } from "./support";
import { startUpstreamRegistry, type UpstreamRegistryProcess } from "./upstream-registry";

const NS = "mirror";
type Account = { username: string; secret: string };
let upstream: UpstreamRegistryProcess;
let puller: Account;

const sha256 = (text: string) => `sha256:${createHash("sha256").update(text).digest("hex")}`;

/** podman with this registry as the mirror of the upstream, logged in as the pull-only account. */
function podman(args: string[]) {
  const dir = tempDir("mirror-podman");
  const conf = join(dir, "registries.conf");
  writeFileSync(
    conf,
    [
      "[[registry]]",
      `prefix = "${upstream.host}"`,
      `location = "${upstream.host}"`,
      "insecure = true",
      "",
      "[[registry.mirror]]",
      `location = "${registryHost()}/${NS}"`,
      "insecure = true",
      "",
    ].join("\n"),
  );
  const authfile = join(dir, "auth.json");
  runOk("podman", ["login", TLS, "--authfile", authfile, "-u", puller.username, "--password-stdin", registryHost()], { input: puller.secret });
  return run("podman", [...args.slice(0, 1), "--authfile", authfile, ...args.slice(1)], { env: { ...process.env, CONTAINERS_REGISTRIES_CONF: conf } });
}

beforeAll(async () => {
  upstream = await startUpstreamRegistry();
  await adminOk("POST", "/namespaces", { name: NS });
  // Every pull asks the upstream (revalidateSeconds 0), so the second pull below meets the stopped upstream.
  await adminOk("PUT", `/namespaces/${NS}/mirror`, { upstream: `http://${upstream.host}`, revalidateSeconds: 0 });
  const created = await adminOk("POST", "/service-accounts", { namespace: NS, name: "mirror-puller", grants: [{ namespace: NS, role: "read" }] });
  puller = { username: created.username, secret: created.token };
});

afterAll(async () => {
  await upstream?.stop();
});

describe("pull-through mirror", () => {
  it("podman pulls through the mirror an image it never had, then again with the upstream stopped", async () => {
    const dir = tempDir("mirror-src");
    await writeOciLayout(dir, [{ seed: 401, layerSizes: [96 * 1024, 32 * 1024] }], "3.19");
    runOk("skopeo", ["copy", "--dest-tls-verify=false", `oci:${dir}:3.19`, `docker://${upstream.host}/library/alpine:3.19`]);
    const digest = sha256(runOk("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${upstream.host}/library/alpine:3.19`]).stdout);
    const image = `${upstream.host}/library/alpine:3.19`;
    const inspectHere = () => run("skopeo", ["inspect", "--raw", TLS, "--creds", creds(puller), `docker://${registryHost()}/${NS}/library/alpine:3.19`]);
    // Never here before (read through the admin API: a pull would fetch it through).
    const usage = () => adminRequest("GET", `/repositories/${NS}/library/alpine/usage`);
    expect((await usage()).status).toBe(404);

    const first = podman(["pull", image]);
    expect(first.code, first.stderr).toBe(0);
    // Fetched through: the mirror namespace now holds the image (2 layers and its config), with the upstream's digest.
    expect((await usage()).json).toMatchObject({ manifests: 1, blobs: 3 });
    const stored = inspectHere();
    expect(stored.code, stored.stderr).toBe(0);
    expect(sha256(stored.stdout)).toBe(digest);
    expect(runOk("podman", ["image", "inspect", "--format", "{{.Digest}}", image]).stdout.trim()).toBe(digest);
    runOk("podman", ["rmi", "-f", image]);

    await upstream.stop();
    const second = podman(["pull", image]);
    expect(second.code, second.stderr).toBe(0);
    expect(runOk("podman", ["image", "inspect", "--format", "{{.Digest}}", image]).stdout.trim()).toBe(digest);
    runOk("podman", ["rmi", "-f", image]);
    await upstream.start();
  });

  it("a tag moved upstream is fetched again once revalidated; mirror content is pull-only", async () => {
    const dir = tempDir("mirror-moved");
    await writeOciLayout(dir, [{ seed: 402, layerSizes: [48 * 1024] }], "3.19");
    runOk("skopeo", ["copy", "--dest-tls-verify=false", `oci:${dir}:3.19`, `docker://${upstream.host}/library/alpine:3.19`]);
    const moved = sha256(runOk("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${upstream.host}/library/alpine:3.19`]).stdout);
    const here = runOk("skopeo", ["inspect", "--raw", TLS, "--creds", creds(puller), `docker://${registryHost()}/${NS}/library/alpine:3.19`]);
    expect(sha256(here.stdout)).toBe(moved);
    const history = await adminOk("GET", `/repositories/${NS}/library/alpine/tags/history?tag=3.19`);
    expect(JSON.stringify(history)).toContain('"mirror"');
    // The pull-only account cannot push into the mirror namespace.
    const push = run("skopeo", ["copy", "--dest-tls-verify=false", "--dest-creds", creds(puller), `oci:${dir}:3.19`, `docker://${registryHost()}/${NS}/library/alpine:mine`]);
    expect(push.code).not.toBe(0);
  });
});
