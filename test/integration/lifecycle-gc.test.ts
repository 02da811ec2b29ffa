/**
 * Garbage collection of blob bytes (issue 14, docs/lifecycle.md). Interleavings of collection with pushes,
 * finishes and mounts are forced step by step through the storage interface the handlers use, never by
 * timing; each case checks the invariant: bytes a manifest references, or that a blob record names for a
 * repository that links it, are never deleted, and a claim racing a collection either wins a fresh record
 * or is deduplicated onto live bytes.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { KV_STALE_LINK_MS, blobIndexFor } from "../../src/storage/blob-index";
import { BlobUploads } from "../../src/storage/blob-uploads";
import { OCI_MANIFEST, adminCall, bearer, call, digestOf, expectOciError, ledgerOf, pushBlob, pushImage, randomBytes, repositoryFixture } from "../helpers/registry";

const uploads = () => new BlobUploads(env.REGISTRY_BUCKET, env.REPOSITORY_LEDGER, env.BLOB_INDEX);
const DAY = 24 * 3600 * 1000;
/** Past the time collected bytes outlive their record (a stale KV `link:` may still name them until then). */
const afterStaleLinks = (from = Date.now()) => from + KV_STALE_LINK_MS + 1000;

/** Downloads a blob the way a client does (redirect, then the signed URL) and returns the digest served. */
async function pulledDigest(repository: string, token: string, digest: string): Promise<string | number> {
  const redirect = await call(`/v2/${repository}/blobs/${digest}`, { headers: bearer(token) });
  if (redirect.status !== 307) return redirect.status;
  const location = new URL(redirect.headers.get("Location")!);
  const data = await call(`${location.pathname}${location.search}`);
  if (data.status !== 200) return data.status;
  return digestOf(new Uint8Array(await data.arrayBuffer()));
}

/** An upload of `bytes` into `repository`, closed for finishing but not yet settled (the request's last step). */
async function closedUpload(repository: string, bytes: Uint8Array) {
  const store = uploads();
  const handle = await store.start(repository);
  await store.receive(handle, new Response(bytes).body!, { declaredLength: bytes.length, maxBytes: bytes.length });
  const state = handle.session.state;
  const digest = await digestOf(bytes);
  expect(await ledgerOf(repository).closeUpload(state.id, handle.lease, { digest, state })).toBe("ok");
  return { settle: () => store.settle(repository, state.id, digest, { key: state.blobKey, size: state.offset }), id: state.id, key: state.blobKey, digest };
}

async function gc(body: Record<string, unknown>) {
  const response = await adminCall("POST", "/gc", body);
  expect(response.status, await response.clone().text()).toBe(200);
  return (await response.json()) as { links: number; blobs: number; bytes: number; more: boolean; dryRun: boolean };
}

describe("what a collection frees", () => {
  it("a dry run reports exactly what the run then frees; referenced and restorable blobs stay; tagged images still pull", async () => {
    const { repo, token } = await repositoryFixture();
    const kept = await pushImage(repo, "kept", token);
    const dropped = await pushImage(repo, "dropped", token);
    const orphan = randomBytes(1500);
    const orphanDigest = await pushBlob(repo, orphan, token);
    // The dropped image's manifest is deleted: its layer is referenced only by the copy kept for restores.
    expect((await call(`/v2/${repo}/manifests/${dropped.digest}`, { method: "DELETE", headers: bearer(token) })).status).toBe(202);

    // Inside the default grace period (24 h) nothing is collected.
    expect(await gc({ repository: repo, dryRun: true })).toMatchObject({ links: 0, blobs: 0, bytes: 0 });
    // With no grace: the orphan only (the dropped layer is restorable; the config is shared with `kept`).
    const dry = await gc({ repository: repo, dryRun: true, gracePeriodSeconds: 0 });
    expect(dry).toMatchObject({ dryRun: true, links: 1, blobs: 1, bytes: orphan.length });
    expect(await ledgerOf(repo).getBlobLink(orphanDigest)).not.toBeNull();

    // Purging the tag history gives up the restore: the dropped layer becomes collectable too.
    const purged = await adminCall("DELETE", `/repositories/${repo}/tags/history`, {});
    expect(((await purged.json()) as { purged: { manifests: number } }).purged.manifests).toBe(1);
    const layerSize = dropped.manifest.layers[0]!.size;
    const dryAgain = await gc({ repository: repo, dryRun: true, gracePeriodSeconds: 0 });
    expect(dryAgain).toMatchObject({ links: 2, blobs: 2, bytes: orphan.length + layerSize });
    const orphanKey = (await blobIndexFor(env.BLOB_INDEX, orphanDigest).get())!.key;
    const layerKey = (await blobIndexFor(env.BLOB_INDEX, dropped.layerDigest).get())!.key;

    const real = await gc({ repository: repo, gracePeriodSeconds: 0 });
    expect(real).toMatchObject({ dryRun: false, links: dryAgain.links, blobs: dryAgain.blobs, bytes: dryAgain.bytes });
    expect(await blobIndexFor(env.BLOB_INDEX, orphanDigest).get()).toBeNull();
    // The bytes outlive their records while a location may still serve a cached link naming them, then go.
    for (const key of [orphanKey, layerKey]) expect(await env.REGISTRY_BUCKET.head(key)).not.toBeNull();
    for (const digest of [orphanDigest, dropped.layerDigest]) {
      expect(await blobIndexFor(env.BLOB_INDEX, digest).deleteCollectedBytes(Date.now())).toBe(0);
      expect(await blobIndexFor(env.BLOB_INDEX, digest).deleteCollectedBytes(afterStaleLinks())).toBe(1);
    }
    for (const key of [orphanKey, layerKey]) expect(await env.REGISTRY_BUCKET.head(key)).toBeNull();
    expect(await ledgerOf(repo).getBlobLink(orphanDigest)).toBeNull();
    // The tagged image's blobs are untouched and verify; a second run frees nothing.
    for (const digest of [kept.layerDigest, kept.configDigest]) expect(await pulledDigest(repo, token, digest)).toBe(digest);
    expect(await gc({ repository: repo, gracePeriodSeconds: 0 })).toMatchObject({ links: 0, blobs: 0, bytes: 0 });
    // The collected bytes can be pushed again: a fresh record with the new upload's bytes.
    expect(await pulledDigest(repo, token, await pushBlob(repo, orphan, token))).toBe(orphanDigest);
    // Audit queries are KV lists: polled, as a location sees a new key within its cache time (production KV).
    let audited = false;
    for (let attempt = 0; attempt < 40 && !audited; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 250));
      const events = (await (await adminCall("GET", "/audit?action=gc.run&limit=20")).json()) as { events: { detail: string }[] };
      audited = events.events.some((event) => event.detail === `grace=0 repository=${repo}`);
    }
    expect(audited).toBe(true);
  });

  it("a blob shared by two repositories is freed only when neither links it", async () => {
    const { ns, repo, token } = await repositoryFixture("second");
    const second = `${ns}/second`;
    const bytes = randomBytes(2100);
    const digest = await pushBlob(repo, bytes, token);
    expect(await pushBlob(second, bytes, token)).toBe(digest);
    expect(await blobIndexFor(env.BLOB_INDEX, digest).linkedRepositories()).toEqual([repo, second].sort());
    expect(await gc({ repository: repo, gracePeriodSeconds: 0 })).toMatchObject({ links: 1, blobs: 0, bytes: 0 });
    expect(await pulledDigest(second, token, digest)).toBe(digest);
    expect(await gc({ repository: second, gracePeriodSeconds: 0 })).toMatchObject({ links: 1, blobs: 1, bytes: bytes.length });
  });

  it("the ledger's alarm path: links past the grace period go, then the index frees the bytes after its own grace", async () => {
    const { repo, token } = await repositoryFixture();
    const bytes = randomBytes(800);
    const digest = await pushBlob(repo, bytes, token);
    const ledger = ledgerOf(repo);
    const index = blobIndexFor(env.BLOB_INDEX, digest);
    const key = (await index.get())!.key;
    // A push in flight (blob uploaded, manifest not yet pushed) is protected for the grace period.
    expect(await ledger.collectLinks({ graceMs: DAY, dryRun: false })).toEqual({ links: [], more: false });
    expect(await ledger.collectLinks({ graceMs: DAY, dryRun: false, now: Date.now() + DAY + 60_000 })).toEqual({ links: [{ digest, size: 800 }], more: false });
    expect(await index.linkedRepositories()).toEqual([]);
    // The index keeps the bytes for its own grace period after the last link went.
    expect(await index.collect({ graceMs: DAY, dryRun: false })).toEqual({ freed: false, bytes: 0 });
    expect(await env.REGISTRY_BUCKET.head(key)).not.toBeNull();
    const later = Date.now() + DAY + 60_000;
    expect(await index.collect({ graceMs: DAY, dryRun: false, now: later })).toEqual({ freed: true, bytes: 800 });
    expect(await index.deleteCollectedBytes(afterStaleLinks(later))).toBe(1);
    expect(await env.REGISTRY_BUCKET.head(key)).toBeNull();
  });

  it("deleting a repository unlinks its blobs: a collection then frees them", async () => {
    const { repo, token } = await repositoryFixture();
    const image = await pushImage(repo, "v1", token);
    expect((await adminCall("DELETE", `/repositories/${repo}`)).status).toBe(200);
    const ledger = ledgerOf(repo);
    await ledger.sendUnlinks();
    for (const digest of [image.layerDigest, image.configDigest]) {
      const linked = await blobIndexFor(env.BLOB_INDEX, digest).linkedRepositories();
      expect(linked).not.toContain(repo);
    }
    const freed = await blobIndexFor(env.BLOB_INDEX, image.layerDigest).collect({ graceMs: 0, dryRun: false });
    expect(freed).toEqual({ freed: true, bytes: 1024 });
  });
});

describe("collection racing pushes (step by step)", () => {
  it("a finish that closed its session before the bytes were collected wins a fresh record with its own bytes", async () => {
    const { ns, repo, token } = await repositoryFixture("racer");
    const racer = `${ns}/racer`;
    const bytes = randomBytes(1200);
    const digest = await pushBlob(repo, bytes, token);
    const oldKey = (await blobIndexFor(env.BLOB_INDEX, digest).get())!.key;
    // Another repository's upload of the same bytes has closed its session; then repo's link is collected
    // and the bytes freed; then the upload settles.
    const pending = await closedUpload(racer, bytes);
    expect((await ledgerOf(repo).collectLinks({ graceMs: 0, dryRun: false })).links.map((link) => link.digest)).toEqual([digest]);
    expect(await blobIndexFor(env.BLOB_INDEX, digest).collect({ graceMs: 0, dryRun: false })).toEqual({ freed: true, bytes: 1200 });
    expect(await blobIndexFor(env.BLOB_INDEX, digest).deleteCollectedBytes(afterStaleLinks())).toBe(1);
    expect(await env.REGISTRY_BUCKET.head(oldKey)).toBeNull();
    const record = await pending.settle();
    // Never deduplicated onto the deleted bytes: the record names the upload's own, live object.
    expect(record.key).toBe(pending.key);
    expect(await env.REGISTRY_BUCKET.head(record.key)).not.toBeNull();
    expect(await pulledDigest(racer, token, digest)).toBe(digest);
  });

  it("a finish that settles before the collection is deduplicated onto live bytes, and the collection frees nothing", async () => {
    const { ns, repo, token } = await repositoryFixture("racer");
    const racer = `${ns}/racer`;
    const bytes = randomBytes(1300);
    const digest = await pushBlob(repo, bytes, token);
    const key = (await blobIndexFor(env.BLOB_INDEX, digest).get())!.key;
    const pending = await closedUpload(racer, bytes);
    expect((await ledgerOf(repo).collectLinks({ graceMs: 0, dryRun: false })).links).toHaveLength(1);
    expect((await pending.settle()).key).toBe(key);
    expect(await env.REGISTRY_BUCKET.head(pending.key)).toBeNull(); // the duplicate's own bytes
    expect(await blobIndexFor(env.BLOB_INDEX, digest).collect({ graceMs: 0, dryRun: false })).toEqual({ freed: false, bytes: 0 });
    expect(await pulledDigest(racer, token, digest)).toBe(digest);
  });

  it("a manifest push racing the collection of its blobs either fails its blob check or keeps them", async () => {
    const { repo, token } = await repositoryFixture();
    const config = new TextEncoder().encode(JSON.stringify({ architecture: "amd64", os: "linux", gc: Math.random() }));
    const layer = randomBytes(900);
    const manifestFor = async () =>
      new TextEncoder().encode(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: await digestOf(config), size: config.length },
          layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: await digestOf(layer), size: layer.length }],
        }),
      );
    const put = async () =>
      call(`/v2/${repo}/manifests/v1`, { method: "PUT", headers: { ...bearer(token), "Content-Type": OCI_MANIFEST }, body: await manifestFor() });
    // Collection first: the push that follows fails cleanly; nothing references deleted bytes.
    await pushBlob(repo, config, token);
    await pushBlob(repo, layer, token);
    expect((await ledgerOf(repo).collectLinks({ graceMs: 0, dryRun: false })).links).toHaveLength(2);
    await expectOciError(await put(), 400, "MANIFEST_BLOB_UNKNOWN");
    // Push first: the collection that follows finds nothing to remove, and the image pulls.
    await pushBlob(repo, config, token);
    await pushBlob(repo, layer, token);
    expect((await put()).status).toBe(201);
    expect(await ledgerOf(repo).collectLinks({ graceMs: 0, dryRun: false })).toEqual({ links: [], more: false });
    expect(await blobIndexFor(env.BLOB_INDEX, await digestOf(layer)).collect({ graceMs: 0, dryRun: false })).toEqual({ freed: false, bytes: 0 });
    expect(await pulledDigest(repo, token, await digestOf(layer))).toBe(await digestOf(layer));
  });

  it("a mount from a repository whose link was just collected is refused; it never links deleted bytes", async () => {
    const { ns, repo, token } = await repositoryFixture("target");
    const target = `${ns}/target`;
    const bytes = randomBytes(700);
    const digest = await pushBlob(repo, bytes, token);
    // The mount read the source's link; then the source's link was collected and the bytes freed.
    const sourceLink = (await ledgerOf(repo).getBlobLink(digest))!;
    await ledgerOf(repo).collectLinks({ graceMs: 0, dryRun: false });
    expect((await blobIndexFor(env.BLOB_INDEX, digest).collect({ graceMs: 0, dryRun: false })).freed).toBe(true);
    expect(await ledgerOf(target).mountBlob(target, digest, sourceLink)).toBeNull();
    expect(await ledgerOf(target).getBlobLink(digest)).toBeNull();
    // Over HTTP the mount answers 202 with a new session: the client uploads the bytes.
    const mount = await call(`/v2/${target}/blobs/uploads/?mount=${digest}&from=${repo}`, { method: "POST", headers: bearer(token) });
    expect(mount.status).toBe(202);
  });

  it("two uploads of one digest racing a blob DELETE: the link committed last keeps the bytes (link numbers)", async () => {
    const { repo, token } = await repositoryFixture();
    const bytes = randomBytes(1100);
    const first = await closedUpload(repo, bytes);
    const second = await closedUpload(repo, bytes);
    const digest = first.digest;
    // The first upload claims, the second claims (deduplicated onto the first's bytes) and links, the blob is
    // deleted from the repository (the second's link number unlinked), then the first commits its link.
    const record = await blobIndexFor(env.BLOB_INDEX, digest).claim({ key: first.key, size: bytes.length }, repo);
    await second.settle();
    expect((await call(`/v2/${repo}/blobs/${digest}`, { method: "DELETE", headers: bearer(token) })).status).toBe(202);
    await ledgerOf(repo).sendUnlinks();
    expect(await ledgerOf(repo).getBlobLink(digest)).toBeNull();
    await ledgerOf(repo).finishUpload(repo, first.id, digest, record);
    await ledgerOf(repo).sendUnlinks();
    expect(await ledgerOf(repo).getBlobLink(digest)).not.toBeNull();
    expect(await blobIndexFor(env.BLOB_INDEX, digest).linkedRepositories()).toEqual([repo]);
    expect(await blobIndexFor(env.BLOB_INDEX, digest).collect({ graceMs: 0, dryRun: false })).toEqual({ freed: false, bytes: 0 });
    expect(await pulledDigest(repo, token, digest)).toBe(digest);
  });

  it("an unlink removes exactly the link number it names; the repository's newer link keeps the bytes", async () => {
    const { repo } = await repositoryFixture();
    const digest = await digestOf(randomBytes(64));
    const index = blobIndexFor(env.BLOB_INDEX, digest);
    const candidate = { key: `blobs/${crypto.randomUUID()}`, size: 64 };
    await env.REGISTRY_BUCKET.put(candidate.key, randomBytes(64));
    const first = await index.claim(candidate, repo);
    const second = await index.claim(candidate, repo); // the repository linked it again meanwhile
    expect(second.seq).not.toBe(first.seq);
    await index.unlink(repo, first.seq); // the late unlink of the replaced link
    expect(await index.linkedRepositories()).toEqual([repo]);
    expect(await index.collect({ graceMs: 0, dryRun: false })).toEqual({ freed: false, bytes: 0 });
    await index.unlink(repo, second.seq);
    expect(await index.collect({ graceMs: 0, dryRun: false })).toEqual({ freed: true, bytes: 64 });
    await index.deleteCollectedBytes(afterStaleLinks());
    expect(await env.REGISTRY_BUCKET.head(candidate.key)).toBeNull();
  });
});
