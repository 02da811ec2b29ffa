/**
 * Image lifecycle on the repository ledger (issue 14, docs/lifecycle.md): repository deletion, tag history
 * and restore, immutable tags. Each case checks what the ledger, KV and R2 hold afterwards, and interleavings
 * are forced step by step through the storage interface, never by timing.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { blobIndexFor } from "../../src/storage/blob-index";
import { BlobUploads } from "../../src/storage/blob-uploads";
import { kvKeys } from "../../src/storage/keys";
import {
  OCI_MANIFEST,
  adminCall,
  bearer,
  call,
  digestOf,
  expectOciError,
  ledgerOf,
  pushBlob,
  pushImage,
  randomBytes,
  repositoryFixture,
  tokenFor,
} from "../helpers/registry";

const uploads = () => new BlobUploads(env.REGISTRY_BUCKET, env.REPOSITORY_LEDGER, env.BLOB_INDEX);

function putManifest(repo: string, token: string, reference: string, bytes: Uint8Array) {
  return call(`/v2/${repo}/manifests/${reference}`, { method: "PUT", headers: { ...bearer(token), "Content-Type": OCI_MANIFEST }, body: bytes });
}

/** A manifest of the given (already pushed) config and layer; `note` makes its digest distinct. */
function imageManifest(config: { digest: string; size: number }, layer: { digest: string; size: number }, note: string): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layer }],
      annotations: { note },
    }),
  );
}

/** Pushes a config and a layer into `repo`, and returns a maker of distinct manifests over them. */
async function blobsIn(repo: string, token: string) {
  const layer = randomBytes(700);
  const config = new TextEncoder().encode(JSON.stringify({ architecture: "amd64", os: "linux", n: Math.random() }));
  const layerRef = { digest: await pushBlob(repo, layer, token), size: layer.length };
  const configRef = { digest: await pushBlob(repo, config, token), size: config.length };
  return { layerRef, configRef, manifest: (note: string) => imageManifest(configRef, layerRef, note) };
}

async function taggedDigest(repo: string, token: string, tag: string): Promise<string | null> {
  const response = await call(`/v2/${repo}/manifests/${tag}`, { headers: { ...bearer(token), Accept: OCI_MANIFEST } });
  if (response.status === 404) return null;
  expect(response.status).toBe(200);
  const bytes = new Uint8Array(await response.arrayBuffer());
  expect(await digestOf(bytes)).toBe(response.headers.get("Docker-Content-Digest"));
  return response.headers.get("Docker-Content-Digest");
}

type AuditEvent = { actor: string; target: string; detail?: string };

/**
 * How many audit events of `action` match: polled, since audit queries are KV lists (under the production-KV
 * model a location sees a new key within its cache time).
 */
async function auditedCount(action: string, matches: (event: AuditEvent) => boolean, expected: number): Promise<number> {
  let count = 0;
  for (let attempt = 0; attempt < 40 && count < expected; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 250));
    const response = await adminCall("GET", `/audit?action=${action}&limit=50`);
    expect(response.status).toBe(200);
    count = ((await response.json()) as { events: AuditEvent[] }).events.filter(matches).length;
  }
  return count;
}

async function drainPublication(repo: string): Promise<void> {
  const ledger = ledgerOf(repo);
  for (let attempt = 0; attempt < 20 && (await ledger.pendingPublications()) > 0; attempt++) {
    await ledger.publish();
    if ((await ledger.pendingPublications()) > 0) await new Promise((resolve) => setTimeout(resolve, 600));
  }
  expect(await ledger.pendingPublications()).toBe(0);
}

describe("deleting a repository", () => {
  it("drops tags, manifests, links, referrers, history and sessions, unpublishes KV, keeps shared blob bytes", async () => {
    const { ns, repo, token } = await repositoryFixture();
    const image = await pushImage(repo, "v1", token);
    await pushImage(repo, "v2", token);
    // A referrer of the first image, and an open upload session holding bytes.
    const referrer = await pushImage(repo, "sig", token, { subject: { mediaType: OCI_MANIFEST, digest: image.digest, size: image.bytes.length } });
    const store = uploads();
    const open = await store.start(repo);
    await store.receive(open, new Response(randomBytes(500)).body!, { declaredLength: 500, maxBytes: 500 });
    const saved = await store.save(open);
    expect(await env.REGISTRY_BUCKET.head(saved.blobKey)).not.toBeNull();
    await drainPublication(repo);
    expect(await env.REGISTRY_KV.get(kvKeys.tag(repo, "v1"))).not.toBeNull();
    const layerRecord = await blobIndexFor(env.BLOB_INDEX, image.layerDigest).get();

    const response = await adminCall("DELETE", `/repositories/${repo}`);
    expect(response.status).toBe(200);
    // Three layers and one config (the three images share it).
    expect(await response.json()).toEqual({ name: repo, deleted: { tags: 3, manifests: 3, blobLinks: 4, uploads: 1 } });

    const ledger = ledgerOf(repo);
    expect(await ledger.getRepository(repo)).toBeNull();
    expect(await ledger.getTag("v1")).toBeNull();
    expect(await ledger.getManifest(image.digest)).toBeNull();
    expect(await ledger.getBlobLink(image.layerDigest)).toBeNull();
    expect(await ledger.listReferrers(image.digest)).toEqual([]);
    expect(await ledger.tagHistory()).toEqual([]);
    expect(await ledger.getUpload(saved.id)).toBeNull();
    // The open session's bytes were this repository's alone: deleted. Shared blob bytes stay for GC.
    expect(await env.REGISTRY_BUCKET.head(saved.blobKey)).toBeNull();
    expect(await env.REGISTRY_BUCKET.head(layerRecord!.key)).not.toBeNull();
    // Every published key is gone from KV once the outbox drains.
    await drainPublication(repo);
    for (const key of [
      kvKeys.tag(repo, "v1"),
      kvKeys.tag(repo, "sig"),
      kvKeys.manifest(repo, image.digest),
      kvKeys.manifest(repo, referrer.digest),
      kvKeys.blobLink(repo, image.layerDigest),
      kvKeys.repository(repo),
    ]) {
      expect(await env.REGISTRY_KV.get(key), key).toBeNull();
    }
    // Clients see it gone; the catalog no longer lists it.
    await expectOciError(await call(`/v2/${repo}/manifests/v1`, { headers: bearer(token) }), 404, "MANIFEST_UNKNOWN");
    await expectOciError(await call(`/v2/${repo}/blobs/${image.layerDigest}`, { headers: bearer(token) }), 404, "BLOB_UNKNOWN");
    // A manifest naming the old blobs cannot be pushed (the links went); after re-pushing them it can.
    await expectOciError(await putManifest(repo, token, "v1", image.bytes), 400, "MANIFEST_BLOB_UNKNOWN");
    expect((await pushImage(repo, "again", token)).digest).toMatch(/^sha256:/);

    expect(await auditedCount("repository.delete", (event) => event.target === repo && event.actor === "admin", 1)).toBe(1);
    expect(ns).toBeTruthy();
  }, 30_000);

  it("a namespace holding repositories is deleted only with force, which deletes them and its rules first", async () => {
    const { ns, repo, token } = await repositoryFixture("lib");
    const lib = `${ns}/lib`;
    await pushImage(repo, "v1", token);
    await pushImage(lib, "v1", token);
    expect((await adminCall("POST", `/namespaces/${ns}/immutable-tags`, { pattern: "v*" })).status).toBe(201);
    // The check reads the catalog (a KV list, eventually consistent): wait until it lists both.
    const catalogToken = await tokenFor({ username: "admin", secret: env.BOOTSTRAP_ADMIN_PASSWORD }, ["registry:catalog:*"]);
    for (let attempt = 0; attempt < 40; attempt++) {
      await drainPublication(repo);
      await drainPublication(lib);
      const listed = ((await (await call("/v2/_catalog?n=1000", { headers: bearer(catalogToken) })).json()) as { repositories: string[] }).repositories;
      if (listed.includes(repo) && listed.includes(lib)) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const refused = await adminCall("DELETE", `/namespaces/${ns}`);
    expect(refused.status).toBe(409);
    expect(await ledgerOf(repo).getTag("v1")).not.toBeNull();
    expect((await adminCall("DELETE", `/namespaces/${ns}?force=true`)).status).toBe(204);
    for (const name of [repo, lib]) {
      expect(await ledgerOf(name).getRepository(name)).toBeNull();
      expect(await ledgerOf(name).getTag("v1")).toBeNull();
    }
    expect((await adminCall("GET", `/namespaces/${ns}`)).status).toBe(404);
    // A namespace created again under the name starts without the old rules.
    expect((await adminCall("POST", "/namespaces", { name: ns })).status).toBe(201);
    const rules = (await (await adminCall("GET", `/namespaces/${ns}/immutable-tags`)).json()) as { rules: unknown[] };
    expect(rules.rules).toEqual([]);
    expect(await auditedCount("repository.delete", (event) => event.detail === `deleting namespace ${ns}`, 2)).toBe(2);
  }, 30_000);

  it("an unknown repository is 404 and an invalid name 400; namespace-less names are refused", async () => {
    const { ns } = await repositoryFixture();
    expect((await adminCall("DELETE", `/repositories/${ns}/never-pushed`)).status).toBe(404);
    expect((await adminCall("DELETE", `/repositories/${ns}/UPPER`)).status).toBe(400);
    expect((await adminCall("DELETE", `/repositories/${ns}`)).status).toBe(400);
  });

  it("a finish whose session the deletion removed links nothing; the blob record still names live bytes", async () => {
    const { repo } = await repositoryFixture();
    const bytes = randomBytes(900);
    const digest = await digestOf(bytes);
    const store = uploads();
    const handle = await store.start(repo);
    await store.receive(handle, new Response(bytes).body!, { declaredLength: bytes.length, maxBytes: bytes.length });
    const state = handle.session.state;
    // The finishing request closed its session, then the repository was deleted before it settled.
    expect(await ledgerOf(repo).closeUpload(state.id, handle.lease, { digest, state })).toBe("ok");
    expect((await adminCall("DELETE", `/repositories/${repo}`)).status).toBe(200);
    const record = await store.settle(repo, state.id, digest, { key: state.blobKey, size: state.offset });
    expect(await ledgerOf(repo).getBlobLink(digest)).toBeNull();
    expect(await env.REGISTRY_BUCKET.head(record.key)).not.toBeNull();
  });
});

describe("tag history and restore", () => {
  it("lists moves newest first, per tag, in pages; records pushes, deletes and restores with their actor", async () => {
    const { repo, token } = await repositoryFixture();
    const image = await blobsIn(repo, token);
    const [a, b] = [image.manifest("a"), image.manifest("b")];
    expect((await putManifest(repo, token, "v1", a)).status).toBe(201);
    expect((await putManifest(repo, token, "v1", b)).status).toBe(201);
    expect((await putManifest(repo, token, "other", a)).status).toBe(201);
    const [digestA, digestB] = [await digestOf(a), await digestOf(b)];

    const all = (await (await adminCall("GET", `/repositories/${repo}/tags/history`)).json()) as { moves: { tag: string; from: string | null; to: string | null; actor: string }[] };
    expect(all.moves.map((move) => [move.tag, move.from, move.to])).toEqual([
      ["other", null, digestA],
      ["v1", digestA, digestB],
      ["v1", null, digestA],
    ]);
    expect(all.moves.every((move) => move.actor === "admin")).toBe(true);
    const first = (await (await adminCall("GET", `/repositories/${repo}/tags/history?tag=v1&limit=1`)).json()) as { moves: { to: string }[]; cursor: string };
    expect(first.moves.map((move) => move.to)).toEqual([digestB]);
    const second = (await (await adminCall("GET", `/repositories/${repo}/tags/history?tag=v1&limit=1&cursor=${first.cursor}`)).json()) as { moves: { to: string }[]; cursor: string | null };
    expect(second.moves.map((move) => move.to)).toEqual([digestA]);
    expect(second.cursor).toBeNull();
    expect((await adminCall("GET", `/repositories/${repo}/tags/history?bogus=1`)).status).toBe(400);
  });

  it("restores a tag to a deleted manifest by digest and by time: the bytes were kept, and the move is recorded", async () => {
    const { repo, token } = await repositoryFixture();
    const image = await blobsIn(repo, token);
    const [a, b] = [image.manifest("a"), image.manifest("b")];
    const [digestA, digestB] = [await digestOf(a), await digestOf(b)];
    expect((await putManifest(repo, token, "v1", a)).status).toBe(201);
    const whileA = new Date().toISOString();
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect((await putManifest(repo, token, "v1", b)).status).toBe(201);
    // Deleting A: the tag history names it, so its bytes are kept for a restore.
    expect((await call(`/v2/${repo}/manifests/${digestA}`, { method: "DELETE", headers: bearer(token) })).status).toBe(202);
    await expectOciError(await call(`/v2/${repo}/manifests/${digestA}`, { headers: { ...bearer(token), Accept: OCI_MANIFEST } }), 404, "MANIFEST_UNKNOWN");

    const restored = await adminCall("POST", `/repositories/${repo}/tags/v1/restore`, { digest: digestA });
    expect(restored.status).toBe(200);
    expect(await restored.json()).toEqual({ name: repo, tag: "v1", digest: digestA, previous: digestB, changed: true });
    expect(await taggedDigest(repo, token, "v1")).toBe(digestA);
    const pulled = await call(`/v2/${repo}/manifests/${digestA}`, { headers: { ...bearer(token), Accept: OCI_MANIFEST } });
    expect(new Uint8Array(await pulled.arrayBuffer())).toEqual(a);

    // By time: where v1 pointed right after A was pushed — A again (unchanged), then back to B by digest.
    const byTime = await adminCall("POST", `/repositories/${repo}/tags/v1/restore`, { time: whileA });
    expect(((await byTime.json()) as { digest: string; changed: boolean })).toMatchObject({ digest: digestA, changed: false });
    expect((await adminCall("POST", `/repositories/${repo}/tags/v1/restore`, { digest: digestB })).status).toBe(200);
    expect(await taggedDigest(repo, token, "v1")).toBe(digestB);
    const history = await ledgerOf(repo).tagHistory("v1");
    expect(history.slice(-2).map((move) => [move.from, move.to, move.actor])).toEqual([
      [digestB, digestA, "admin"],
      [digestA, digestB, "admin"],
    ]);
    expect(await auditedCount("tag.restore", (event) => event.target === `${repo}:v1`, 3)).toBe(3);
  });

  it("refuses a digest outside the tag's history, a time before the tag existed, and a manifest whose blobs went", async () => {
    const { repo, token } = await repositoryFixture();
    const image = await blobsIn(repo, token);
    const [a, b, never] = [image.manifest("a"), image.manifest("b"), image.manifest("never-tagged")];
    const before = new Date(Date.now() - 60_000).toISOString();
    expect((await putManifest(repo, token, "v1", a)).status).toBe(201);
    expect((await putManifest(repo, token, await digestOf(never), never)).status).toBe(201);
    expect((await putManifest(repo, token, "v1", b)).status).toBe(201);
    expect((await adminCall("POST", `/repositories/${repo}/tags/v1/restore`, { digest: await digestOf(never) })).status).toBe(404);
    expect((await adminCall("POST", `/repositories/${repo}/tags/v1/restore`, { time: before })).status).toBe(404);
    expect((await adminCall("POST", `/repositories/${repo}/tags/v1/restore`, {})).status).toBe(400);
    expect((await adminCall("POST", `/repositories/${repo}/tags/v1/restore`, { digest: "sha256:1", extra: 1 })).status).toBe(400);
    // Delete both manifests, then a layer: A can no longer be reinstated (409), and nothing changed.
    for (const bytes of [a, b, never]) {
      expect((await call(`/v2/${repo}/manifests/${await digestOf(bytes)}`, { method: "DELETE", headers: bearer(token) })).status).toBe(202);
    }
    expect((await call(`/v2/${repo}/blobs/${image.layerRef.digest}`, { method: "DELETE", headers: bearer(token) })).status).toBe(202);
    const refused = await adminCall("POST", `/repositories/${repo}/tags/v1/restore`, { digest: await digestOf(a) });
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toContain(image.layerRef.digest);
    expect(await ledgerOf(repo).getManifest(await digestOf(a))).toBeNull();
    expect(await ledgerOf(repo).getTag("v1")).toBeNull();
  });

  it("past the retention window the history is swept and the kept bytes with it: a restore is refused", async () => {
    const { repo, token } = await repositoryFixture();
    const image = await blobsIn(repo, token);
    const a = image.manifest("a");
    const digestA = await digestOf(a);
    expect((await putManifest(repo, token, "v1", a)).status).toBe(201);
    expect((await call(`/v2/${repo}/manifests/${digestA}`, { method: "DELETE", headers: bearer(token) })).status).toBe(202);
    const ledger = ledgerOf(repo);
    // Inside the window nothing is swept.
    expect(await ledger.sweepTagHistory(Date.now())).toEqual({ moves: 0, manifests: 0 });
    // TAG_HISTORY_RETENTION_DAYS defaults to 14: fifteen days on, both moves and A's kept bytes go.
    expect(await ledger.sweepTagHistory(Date.now() + 15 * 24 * 3600 * 1000)).toEqual({ moves: 2, manifests: 1 });
    expect(await ledger.tagHistory("v1")).toEqual([]);
    expect((await adminCall("POST", `/repositories/${repo}/tags/v1/restore`, { digest: digestA })).status).toBe(404);
    // The same manifest pushed again is stored afresh (its kept copy is gone, nothing collides).
    expect((await putManifest(repo, token, "v1", a)).status).toBe(201);
    expect(await taggedDigest(repo, token, "v1")).toBe(digestA);
  });

  it("a manifest pushed again while its deleted copy is kept replaces the copy", async () => {
    const { repo, token } = await repositoryFixture();
    const image = await blobsIn(repo, token);
    const a = image.manifest("a");
    const digestA = await digestOf(a);
    expect((await putManifest(repo, token, "v1", a)).status).toBe(201);
    expect((await call(`/v2/${repo}/manifests/${digestA}`, { method: "DELETE", headers: bearer(token) })).status).toBe(202);
    expect((await putManifest(repo, token, "v2", a)).status).toBe(201);
    const pulled = await call(`/v2/${repo}/manifests/v2`, { headers: { ...bearer(token), Accept: OCI_MANIFEST } });
    expect(new Uint8Array(await pulled.arrayBuffer())).toEqual(a);
    expect((await adminCall("POST", `/repositories/${repo}/tags/v1/restore`, { digest: digestA })).status).toBe(200);
    expect(await taggedDigest(repo, token, "v1")).toBe(digestA);
  });
});

describe("immutable tags", () => {
  it("a rule refuses moving or deleting a matching tag (DENIED naming the rule), never creating it", async () => {
    const { repo, token } = await repositoryFixture();
    const image = await blobsIn(repo, token);
    const [a, b] = [image.manifest("a"), image.manifest("b")];
    expect((await putManifest(repo, token, "v1", a)).status).toBe(201);
    expect((await adminCall("POST", `/repositories/${repo}/immutable-tags`, { pattern: "v*" })).status).toBe(201);
    expect((await adminCall("POST", `/repositories/${repo}/immutable-tags`, { pattern: "bad/" })).status).toBe(400);
    const rules = (await (await adminCall("GET", `/repositories/${repo}/immutable-tags`)).json()) as { rules: { pattern: string; createdBy: string }[] };
    expect(rules.rules).toEqual([expect.objectContaining({ pattern: "v*", createdBy: "admin" })]);

    const denied = await expectOciError(await putManifest(repo, token, "v1", b), 403, "DENIED");
    expect(denied.message).toContain('"v*"');
    expect(denied.detail).toEqual({ tag: "v1", rule: "v*", scope: "repository" });
    // The refused push changed nothing: not even the manifest was stored.
    expect(await ledgerOf(repo).getManifest(await digestOf(b))).toBeNull();
    // Same digest again: no move, allowed. A new matching tag: created. Non-matching tags move freely.
    expect((await putManifest(repo, token, "v1", a)).status).toBe(201);
    expect((await putManifest(repo, token, "v2", b)).status).toBe(201);
    expect((await putManifest(repo, token, "latest", a)).status).toBe(201);
    expect((await putManifest(repo, token, "latest", b)).status).toBe(201);
    await expectOciError(await call(`/v2/${repo}/manifests/v1`, { method: "DELETE", headers: bearer(token) }), 403, "DENIED");
    await expectOciError(await call(`/v2/${repo}/manifests/${await digestOf(a)}`, { method: "DELETE", headers: bearer(token) }), 403, "DENIED");
    expect((await adminCall("POST", `/repositories/${repo}/tags/v1/restore`, { digest: await digestOf(b) })).status).toBe(404);
    expect(await taggedDigest(repo, token, "v1")).toBe(await digestOf(a));
    expect((await ledgerOf(repo).tagHistory("v1")).length).toBe(1);

    expect((await adminCall("DELETE", `/repositories/${repo}/immutable-tags`, { pattern: "v*" })).status).toBe(204);
    expect((await adminCall("DELETE", `/repositories/${repo}/immutable-tags`, { pattern: "v*" })).status).toBe(404);
    expect((await putManifest(repo, token, "v1", b)).status).toBe(201);
    expect(await auditedCount("immutable-tag.add", (event) => event.target === repo && event.detail === "pattern=v*", 1)).toBe(1);
  });

  it("a restore over an immutable tag is refused with 403", async () => {
    const { repo, token } = await repositoryFixture();
    const image = await blobsIn(repo, token);
    const [a, b] = [image.manifest("a"), image.manifest("b")];
    expect((await putManifest(repo, token, "release-1", a)).status).toBe(201);
    expect((await putManifest(repo, token, "release-1", b)).status).toBe(201);
    expect((await adminCall("POST", `/repositories/${repo}/immutable-tags`, { pattern: "release-?" })).status).toBe(201);
    expect((await adminCall("POST", `/repositories/${repo}/tags/release-1/restore`, { digest: await digestOf(a) })).status).toBe(403);
    expect(await taggedDigest(repo, token, "release-1")).toBe(await digestOf(b));
  });

  it("8 concurrent pushes of different images to one new immutable tag: exactly one creates it", async () => {
    const { repo, token } = await repositoryFixture();
    const image = await blobsIn(repo, token);
    expect((await adminCall("POST", `/repositories/${repo}/immutable-tags`, { pattern: "*" })).status).toBe(201);
    const manifests = Array.from({ length: 8 }, (_, index) => image.manifest(`client-${index}`));
    const responses = await Promise.all(manifests.map((bytes) => putManifest(repo, token, "v9", bytes)));
    const statuses = responses.map((response) => response.status).sort();
    expect(statuses).toEqual([201, 403, 403, 403, 403, 403, 403, 403]);
    const winner = manifests[responses.findIndex((response) => response.status === 201)]!;
    expect(await taggedDigest(repo, token, "v9")).toBe(await digestOf(winner));
    expect(await ledgerOf(repo).tagHistory("v9")).toHaveLength(1);
  });

  it("a namespace rule is enforced in repositories that existed before it and in ones created after", async () => {
    const { ns, repo: before, token } = await repositoryFixture("later");
    const after = `${ns}/later`;
    const older = await blobsIn(before, token);
    const [a, b] = [older.manifest("a"), older.manifest("b")];
    expect((await putManifest(before, token, "v1", a)).status).toBe(201);
    expect((await adminCall("POST", `/namespaces/${ns}/immutable-tags`, { pattern: "v*" })).status).toBe(201);
    expect((await adminCall("POST", `/namespaces/${ns}-missing/immutable-tags`, { pattern: "v*" })).status).toBe(404);
    const listed = (await (await adminCall("GET", `/repositories/${before}/immutable-tags`)).json()) as { rules: unknown[]; namespaceRules: { pattern: string }[] };
    expect(listed.rules).toEqual([]);
    expect(listed.namespaceRules.map((rule) => rule.pattern)).toEqual(["v*"]);

    // The repository that existed before the rule received it before the rule was acknowledged.
    const denied = await expectOciError(await putManifest(before, token, "v1", b), 403, "DENIED");
    expect(denied.detail).toEqual({ tag: "v1", rule: "v*", scope: "namespace" });
    // A repository first written after the rule learns it when it registers, before its first tag move.
    const newer = await blobsIn(after, token);
    expect((await putManifest(after, token, "v1", newer.manifest("a"))).status).toBe(201);
    await expectOciError(await putManifest(after, token, "v1", newer.manifest("b")), 403, "DENIED");
    await expectOciError(await call(`/v2/${after}/manifests/v1`, { method: "DELETE", headers: bearer(token) }), 403, "DENIED");
    // Deleting the repository keeps the namespace's rules in force for it.
    expect((await adminCall("DELETE", `/repositories/${after}`)).status).toBe(200);
    const again = await blobsIn(after, token);
    expect((await putManifest(after, token, "v1", again.manifest("a"))).status).toBe(201);
    await expectOciError(await putManifest(after, token, "v1", again.manifest("b")), 403, "DENIED");

    expect((await adminCall("DELETE", `/namespaces/${ns}/immutable-tags`, { pattern: "v*" })).status).toBe(204);
    expect((await adminCall("DELETE", `/namespaces/${ns}/immutable-tags`, { pattern: "v*" })).status).toBe(404);
    expect((await putManifest(before, token, "v1", b)).status).toBe(201);
    expect((await putManifest(after, token, "v1", again.manifest("b"))).status).toBe(201);
    // Both removals were audited (the audit record is written before the change, even one that finds nothing).
    expect(await auditedCount("immutable-tag.remove", (event) => event.target === `namespace:${ns}`, 2)).toBe(2);
  });

  it("a member applies namespace rules in version order: an older delivery arriving late changes nothing", async () => {
    const { repo, token } = await repositoryFixture();
    const image = await blobsIn(repo, token);
    expect((await putManifest(repo, token, "v1", image.manifest("a"))).status).toBe(201);
    const ledger = ledgerOf(repo);
    const rule = { pattern: "v*", createdAt: new Date().toISOString(), createdBy: "admin" };
    await ledger.applyNamespaceRules(1_000_002, [rule]);
    await ledger.applyNamespaceRules(1_000_001, []);
    expect((await ledger.namespaceRulesCopy()).map((held) => held.pattern)).toEqual(["v*"]);
    await expectOciError(await putManifest(repo, token, "v1", image.manifest("b")), 403, "DENIED");
  });
});

