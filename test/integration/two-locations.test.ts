/**
 * Two Cloudflare locations over one KV state (issue 11 item 5): under the `workers-production-kv` project,
 * `call` is location A and `callAt("b", …)` location B of the production-KV model (reads and misses cached
 * per location for PRODUCTION_KV_TTL_MS, no read-your-writes, one write per second per key). Under the plain
 * `workers` project both are the same strongly consistent KV, and every assertion must hold too.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { OCI_MANIFEST, adminCall, bearer, call, callAt, createServiceAccount, digestOf, pushBlob, pushImage, repositoryFixture, tokenFor } from "../helpers/registry";

/** The model's cache TTL for this project (0 when the model is off): the bound on staleness elsewhere. */
const TTL_MS = Number(env.PRODUCTION_KV_TTL_MS ?? 0);
const CONVERGENCE_TIMEOUT_MS = TTL_MS + 15_000;

let repo: string;
let token: string;

beforeAll(async () => {
  ({ repo, token } = await repositoryFixture());
});

const at = (location: "a" | "b") => (path: string, init?: RequestInit) => (location === "a" ? call(path, init) : callAt(location, path, init));

async function pullManifest(location: "a" | "b", reference: string, repository = repo) {
  const response = await at(location)(`/v2/${repository}/manifests/${reference}`, { headers: { ...bearer(token), Accept: OCI_MANIFEST } });
  const bytes = new Uint8Array(await response.arrayBuffer());
  return { status: response.status, digest: response.headers.get("Docker-Content-Digest"), bytes };
}

/** Pulls by tag at `location` until it answers `expected`, failing if any answer is neither `allowed` nor it. */
async function untilTagIs(location: "a" | "b", tag: string, expected: string, allowed: string[]): Promise<number> {
  const started = Date.now();
  for (;;) {
    const pulled = await pullManifest(location, tag);
    expect(pulled.status, `pull ${tag} at ${location}`).toBe(200);
    if (pulled.digest === expected) return Date.now() - started;
    expect(allowed, `pull ${tag} at ${location} answered ${pulled.digest}`).toContain(pulled.digest);
    if (Date.now() - started > TTL_MS + 5_000) throw new Error(`tag ${tag} at ${location} still ${pulled.digest} after ${Date.now() - started} ms (TTL ${TTL_MS} ms)`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe("two locations over one KV state", () => {
  it("an image pushed at A is pullable by digest at A and at B at once", async () => {
    const pushed = await pushImage(repo, "v1", token);
    const [atA, atB] = await Promise.all([pullManifest("a", pushed.digest), pullManifest("b", pushed.digest)]);
    for (const [location, pulled] of [["A", atA], ["B", atB]] as const) {
      expect(pulled.status, `pull by digest at ${location}`).toBe(200);
      expect(pulled.digest).toBe(pushed.digest);
      expect(pulled.bytes).toEqual(pushed.bytes);
    }
    // Its blobs too: each answers the redirect to its bytes in both locations.
    const blobs = await Promise.all(
      [pushed.layerDigest, pushed.configDigest].flatMap((digest) =>
        (["a", "b"] as const).map(async (location) => ({ location, digest, status: (await at(location)(`/v2/${repo}/blobs/${digest}`, { headers: bearer(token) })).status })),
      ),
    );
    expect(blobs.filter((blob) => blob.status !== 307)).toEqual([]);
  });

  it("a tag moved at A is stale at B only within the TTL, and the moved-to manifest is pullable by digest everywhere at once", { timeout: CONVERGENCE_TIMEOUT_MS + 10_000 }, async () => {
    const first = await pushImage(repo, "moving", token);
    // B reads the tag first, so it holds the old value in its cache (the worst case for staleness).
    expect((await pullManifest("b", "moving")).digest).toBe(first.digest);
    const second = await pushImage(repo, "moving", token, { annotations: { "org.example.second": "yes" } });
    expect(second.digest).not.toBe(first.digest);
    const byDigest = await Promise.all([pullManifest("a", second.digest), pullManifest("b", second.digest)]);
    expect(byDigest.map((pulled) => pulled.status)).toEqual([200, 200]);
    const waited = await untilTagIs("b", "moving", second.digest, [first.digest]);
    await untilTagIs("a", "moving", second.digest, [first.digest]);
    console.log(`tag move seen at B after ${waited} ms (TTL ${TTL_MS} ms)`);
  });

  it("8 clients moving one tag at once: each gets 201 or a clean error, and the tag ends on one of the committed digests", { timeout: CONVERGENCE_TIMEOUT_MS + 20_000 }, async () => {
    const config = new TextEncoder().encode(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }));
    const configDigest = await pushBlob(repo, config, token);
    const manifests = await Promise.all(
      Array.from({ length: 8 }, async (_, n) => {
        const bytes = new TextEncoder().encode(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: OCI_MANIFEST,
            config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.length },
            layers: [],
            annotations: { "org.example.client": String(n) },
          }),
        );
        return { bytes, digest: await digestOf(bytes) };
      }),
    );
    // Half the clients are served at A, half at B.
    const responses = await Promise.all(
      manifests.map(async ({ bytes }, n) => {
        const response = await at(n % 2 === 0 ? "a" : "b")(`/v2/${repo}/manifests/contended`, {
          method: "PUT",
          headers: { ...bearer(token), "Content-Type": OCI_MANIFEST },
          body: bytes,
        });
        const text = await response.text();
        return { n, status: response.status, text, digest: response.headers.get("Docker-Content-Digest") };
      }),
    );
    const report = responses.map(({ n, status, text }) => `client ${n}: ${status} ${status === 201 ? "" : text.slice(0, 200)}`).join("\n");
    for (const response of responses) {
      if (response.status === 201) {
        expect(response.digest, report).toBe(manifests[response.n]!.digest);
        continue;
      }
      // A clean error: an OCI error document with a 4xx or 503 status, never a 500.
      expect((response.status >= 400 && response.status < 500) || response.status === 503, report).toBe(true);
      expect((JSON.parse(response.text) as { errors: { code: string }[] }).errors[0]?.code, report).toMatch(/^[A-Z_]+$/);
    }
    const committed = responses.filter((response) => response.status === 201).map((response) => manifests[response.n]!.digest);
    expect(committed.length, report).toBeGreaterThanOrEqual(1);
    // Once both locations' caches have expired, both agree on one winner among the committed moves.
    await new Promise((resolve) => setTimeout(resolve, TTL_MS));
    const [finalA, finalB] = await Promise.all([pullManifest("a", "contended"), pullManifest("b", "contended")]);
    expect([finalA.status, finalB.status], report).toEqual([200, 200]);
    expect(committed, report).toContain(finalA.digest);
    expect(finalB.digest, report).toBe(finalA.digest);
    // The ledger's record (the admin API's tag history): each committed move exactly once, no phantom, none
    // lost: oldest first, each move starts where the previous one ended, and the last ends on the final tag.
    const history = await adminCall("GET", `/repositories/${repo}/tags/history?tag=contended`);
    const historyText = await history.text();
    expect(history.status, historyText).toBe(200);
    const moves = ((JSON.parse(historyText) as { moves: { from: string | null; to: string | null }[] }).moves ?? []).slice().reverse();
    expect(moves.map((move) => move.to).sort(), `${report}\n${historyText}`).toEqual([...committed].sort());
    moves.forEach((move, index) => expect(move.from, historyText).toBe(index === 0 ? null : moves[index - 1]!.to));
    expect(moves.at(-1)?.to).toBe(finalA.digest);
  });
});

describe("a pull-only client in the location that wrote sees the writes at once", () => {
  /** A fresh repository, its admin token, and a token of a read-only account that may only pull it. */
  async function readerFixture() {
    const { ns, repo: repository, token: writer } = await repositoryFixture();
    const reader = await createServiceAccount(ns, "reader", [{ namespace: ns, role: "read" }]);
    const pullOnly = await tokenFor({ username: reader.username, secret: reader.token }, [`repository:${repository}:pull`]);
    const pull = async (reference: string) => {
      const response = await call(`/v2/${repository}/manifests/${reference}`, { headers: { ...bearer(pullOnly), Accept: OCI_MANIFEST } });
      await response.arrayBuffer();
      return { status: response.status, digest: response.headers.get("Docker-Content-Digest") };
    };
    return { repository, writer, pull };
  }

  it("a tag moved at A after the reader read it there: the reader gets the new digest (tags read the ledger after a write)", async () => {
    const { repository, writer, pull } = await readerFixture();
    const first = await pushImage(repository, "v1", writer);
    expect(await pull("v1")).toEqual({ status: 200, digest: first.digest });
    const second = await pushImage(repository, "v1", writer);
    expect(await pull("v1")).toEqual({ status: 200, digest: second.digest });
    expect(await pull(first.digest)).toEqual({ status: 200, digest: first.digest });
  });

  it("a manifest deleted at A after the reader read it there by digest: the reader gets 404 at once (a removal is marked apart)", async () => {
    const { repository, writer, pull } = await readerFixture();
    const image = await pushImage(repository, "v1", writer);
    expect(await pull(image.digest)).toEqual({ status: 200, digest: image.digest });
    const deleted = await call(`/v2/${repository}/manifests/${image.digest}`, { method: "DELETE", headers: bearer(writer) });
    expect(deleted.status).toBe(202);
    expect((await pull(image.digest)).status).toBe(404);
    expect((await pull("v1")).status).toBe(404);
  });
});
