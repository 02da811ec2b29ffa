/**
 * Real clients against two locations of the production-KV model (issue 11 item 5): `127.0.0.1:<port>` is
 * location A, `localhost:<port>` location B, over one KV state (test/e2e/global-setup.ts). Every push must
 * succeed; acknowledged content must be pullable by digest in both locations at once; a tag moved or deleted
 * in one location may look stale in the other only within the model's TTL. With the model off (e2e-plain)
 * both names reach the same consistent KV and every assertion holds as well.
 */
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { writeOciLayout } from "../../scripts/lib/oci-image.mjs";
import { TLS, adminOk, creds, productionKvTtlMs, registryHost, registryHostB, run, runAsync, runOk, tempDir } from "./support";

type Account = { username: string; secret: string };
const NS = "e2eloc";
let pusher: Account;
let puller: Account;

const host = (location: "a" | "b") => (location === "a" ? registryHost() : registryHostB());
const ref = (location: "a" | "b", repository: string, reference: string) =>
  `docker://${host(location)}/${repository}${reference.startsWith("sha256:") ? "@" : ":"}${reference}`;
/** Staleness bound: the model's TTL plus time for the clients themselves. */
const bound = () => productionKvTtlMs() + 15_000;

async function layout(name: string, seed: number, layerSizes: number[]): Promise<string> {
  const dir = tempDir(name);
  await writeOciLayout(dir, [{ seed, layerSizes }], "v1");
  return dir;
}

/** skopeo push of an OCI layout to `location`; returns the manifest digest the registry acknowledged. */
function push(location: "a" | "b", source: string, repository: string, tag: string): string {
  const digestFile = join(tempDir("digest"), "digest");
  runOk("skopeo", ["copy", "--dest-tls-verify=false", "--dest-creds", creds(pusher), "--digestfile", digestFile, `oci:${source}:v1`, ref(location, repository, tag)]);
  return runOk("cat", [digestFile]).stdout.trim();
}

/** The digest a tag resolves to at `location`, or the client's error. */
async function resolve(location: "a" | "b", repository: string, tag: string): Promise<{ digest?: string; error?: string }> {
  const result = await runAsync("skopeo", ["inspect", TLS, "--creds", creds(puller), "--format", "{{.Digest}}", ref(location, repository, tag)]);
  return result.code === 0 ? { digest: result.stdout.trim() } : { error: result.stderr.trim().split("\n").at(-1) };
}

/** Polls `location` until `done` holds, failing on an answer `allowed` refuses or after the staleness bound. */
async function until(location: "a" | "b", repository: string, tag: string, done: (answer: { digest?: string; error?: string }) => boolean, allowed: (answer: { digest?: string; error?: string }) => boolean): Promise<number> {
  const started = Date.now();
  for (;;) {
    const answer = await resolve(location, repository, tag);
    if (done(answer)) return Date.now() - started;
    expect(allowed(answer), `${repository}:${tag} at ${location}: ${JSON.stringify(answer)}`).toBe(true);
    if (Date.now() - started > bound()) throw new Error(`${repository}:${tag} at ${location} still ${JSON.stringify(answer)} after ${Date.now() - started} ms`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

beforeAll(async () => {
  await adminOk("POST", "/namespaces", { name: NS });
  const created = await adminOk("POST", "/service-accounts", { namespace: NS, name: "pusher", grants: [{ namespace: NS, role: "admin" }] });
  pusher = { username: created.username, secret: created.token };
  const reader = await adminOk("POST", "/service-accounts", { namespace: NS, name: "puller", grants: [{ namespace: NS, role: "read" }] });
  puller = { username: reader.username, secret: reader.token };
});

describe("two locations (127.0.0.1 = A, localhost = B)", () => {
  it("skopeo pushes at A; pulls by digest at A and at B at the same time", async () => {
    const source = await layout("loc-src", 701, [256 * 1024, 1024 * 1024, 64 * 1024]);
    const digest = push("a", source, `${NS}/app`, "v1");
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const pulls = await Promise.all(
      (["a", "b"] as const).map((location) =>
        runAsync("skopeo", ["copy", "--src-tls-verify=false", "--src-creds", creds(puller), ref(location, `${NS}/app`, digest), `oci:${tempDir(`pull-${location}`)}:v1`]),
      ),
    );
    expect(pulls.map((pull) => (pull.code === 0 ? "ok" : pull.stderr.trim().split("\n").at(-1)))).toEqual(["ok", "ok"]);
  });

  it("podman pushes at A, then pulls by tag and by digest at B", async () => {
    const source = await layout("loc-podman", 702, [512 * 1024]);
    const digest = push("a", source, `${NS}/podman-src`, "v1");
    const authfile = join(tempDir("loc-auth"), "auth.json");
    for (const location of ["a", "b"] as const) runOk("podman", ["login", TLS, "--authfile", authfile, "-u", pusher.username, "--password-stdin", host(location)], { input: pusher.secret });
    const sourceImage = `${host("a")}/${NS}/podman-src@${digest}`;
    runOk("podman", ["pull", TLS, "--authfile", authfile, sourceImage]);
    const pushed = `${host("a")}/${NS}/podman:v1`;
    runOk("podman", ["tag", sourceImage, pushed]);
    const digestFile = join(tempDir("podman-digest"), "digest");
    runOk("podman", ["push", TLS, "--authfile", authfile, "--digestfile", digestFile, pushed]);
    const pushedDigest = runOk("cat", [digestFile]).stdout.trim();
    runOk("podman", ["rmi", "-f", sourceImage, pushed]);
    for (const image of [`${host("b")}/${NS}/podman:v1`, `${host("b")}/${NS}/podman@${pushedDigest}`]) {
      runOk("podman", ["pull", TLS, "--authfile", authfile, image]);
      runOk("podman", ["rmi", "-f", image]);
    }
  });

  it("a tag moved at A reaches B within the staleness bound; the new digest is pullable at B at once", async () => {
    const first = push("a", await layout("loc-move1", 703, [32 * 1024]), `${NS}/moving`, "latest");
    expect(await resolve("b", `${NS}/moving`, "latest")).toEqual({ digest: first });
    const second = push("a", await layout("loc-move2", 704, [32 * 1024]), `${NS}/moving`, "latest");
    expect(second).not.toBe(first);
    const byDigest = await resolve("b", `${NS}/moving`, second);
    expect(byDigest).toEqual({ digest: second });
    const waited = await until("b", `${NS}/moving`, "latest", (answer) => answer.digest === second, (answer) => answer.digest === first);
    console.log(`tag move seen at B after ${waited} ms (model TTL ${productionKvTtlMs()} ms)`);
  });

  it("a manifest deleted at A disappears from A and B within the staleness bound", async () => {
    const digest = push("a", await layout("loc-delete", 705, [16 * 1024]), `${NS}/deleted`, "v1");
    expect(await resolve("b", `${NS}/deleted`, "v1")).toEqual({ digest });
    const deleted = run("skopeo", ["delete", TLS, "--creds", creds(pusher), ref("a", `${NS}/deleted`, digest)]);
    expect(deleted.code, deleted.stderr).toBe(0);
    const gone = (answer: { error?: string }) => /manifest unknown/i.test(answer.error ?? "");
    const stillThere = (answer: { digest?: string }) => answer.digest === digest;
    await Promise.all((["a", "b"] as const).map((location) => until(location, `${NS}/deleted`, "v1", gone, stillThere)));
  });
});
