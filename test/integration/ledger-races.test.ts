/**
 * Racing requests against the repository ledger and the blob index (issue: cross-tenant blob poisoning;
 * consistency ledger). Interleavings are forced step by step through the storage interface the handlers
 * use, and raced over HTTP; each case checks the invariants, never timings:
 * - bytes a blob record points at are never deleted;
 * - a finished or cancelled session can never be continued;
 * - a session's changes apply one at a time, in the order requests claimed it;
 * - a tag moved by concurrent pushes ends at one of them, and the ledger records each move exactly once.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { BlobUploads, UploadSupersededError, UploadUnknownError } from "../../src/storage/blob-uploads";
import { blobIndexFor } from "../../src/storage/blob-index";
import { OCI_MANIFEST, adminToken, bearer, call, createNamespace, digestOf, expectOciError, ledgerOf, pushBlob, randomBytes } from "../helpers/registry";

let attacker: { repo: string; token: string };
let victim: { repo: string; token: string };

beforeAll(async () => {
  const a = `${(await createNamespace()).name}/app`;
  const v = `${(await createNamespace()).name}/app`;
  attacker = { repo: a, token: await adminToken(a) };
  victim = { repo: v, token: await adminToken(v) };
});

const uploads = () => new BlobUploads(env.REGISTRY_BUCKET, env.REPOSITORY_LEDGER, env.BLOB_INDEX);
const bodyOf = (bytes: Uint8Array) => new Response(bytes).body!;

/** Downloads a blob the way a client does (redirect, then the signed URL) and returns the digest served. */
async function pulledDigest(repository: string, token: string, digest: string): Promise<string> {
  const redirect = await call(`/v2/${repository}/blobs/${digest}`, { headers: bearer(token) });
  expect(redirect.status).toBe(307);
  const location = new URL(redirect.headers.get("Location")!);
  const data = await call(`${location.pathname}${location.search}`);
  expect(data.status).toBe(200);
  return digestOf(new Uint8Array(await data.arrayBuffer()));
}

/** The victim pushes the same bytes later: it must get them back, whatever the attacker's session did. */
async function expectVictimCanPushAndPull(bytes: Uint8Array): Promise<void> {
  const digest = await pushBlob(victim.repo, bytes, victim.token);
  expect(await pulledDigest(victim.repo, victim.token, digest)).toBe(digest);
}

/** A session whose first PATCH stored bytes X as one complete object. */
async function sessionWithOneObject(bytes: Uint8Array) {
  const store = uploads();
  const first = await store.start(attacker.repo);
  await store.receive(first, bodyOf(bytes), { declaredLength: bytes.length, maxBytes: bytes.length });
  const state = await store.save(first);
  expect(state.wholeObjectSha256).toBeDefined();
  return { store, id: state.id, objectKey: state.blobKey };
}

describe("interleavings of one upload session (storage interface, step by step)", () => {
  it("defect 1: a slow PATCH that copied the object forward cannot resurrect the session a PUT finished", async () => {
    const bytes = randomBytes(4096);
    const digest = await digestOf(bytes);
    const { store, id, objectKey } = await sessionWithOneObject(bytes);
    const slowPatch = await store.claim(attacker.repo, id);
    await store.receive(slowPatch, bodyOf(randomBytes(100)), { maxBytes: 100 }); // copies the object forward
    const put = await store.claim(attacker.repo, id);
    await store.receive(put, null, { declaredLength: 0, maxBytes: 0 });
    expect((await store.finish(put, digest)).key).toBe(objectKey);
    await expect(store.save(slowPatch)).rejects.toBeInstanceOf(UploadUnknownError);
    // The object the blob record names is still there, and the session stays finished.
    expect(await env.REGISTRY_BUCKET.head(objectKey)).not.toBeNull();
    await expect(store.claim(attacker.repo, id)).rejects.toBeInstanceOf(UploadUnknownError);
    expect(await pulledDigest(attacker.repo, attacker.token, digest)).toBe(digest);
    await expectVictimCanPushAndPull(bytes);
  });

  it("the reverse order: a PUT that lost its claim to a later PATCH touches nothing and claims nothing", async () => {
    const bytes = randomBytes(4096);
    const digest = await digestOf(bytes);
    const { store, id, objectKey } = await sessionWithOneObject(bytes);
    const put = await store.claim(attacker.repo, id);
    await store.receive(put, null, { declaredLength: 0, maxBytes: 0 });
    const patch = await store.claim(attacker.repo, id);
    await store.receive(patch, bodyOf(randomBytes(100)), { maxBytes: 100 });
    await expect(store.finish(put, digest)).rejects.toBeInstanceOf(UploadSupersededError);
    expect(await blobIndexFor(env.BLOB_INDEX, digest).get()).toBeNull();
    const saved = await store.save(patch);
    expect(saved.offset).toBe(4196);
    // The copied-forward object is deleted only now, by the request whose state no longer names it.
    expect(await env.REGISTRY_BUCKET.head(objectKey)).toBeNull();
    await expectVictimCanPushAndPull(bytes);
  });

  it("a cancel racing a finish: whichever claimed last decides, and no record names deleted bytes", async () => {
    const bytes = randomBytes(2048);
    const digest = await digestOf(bytes);
    const { store, id, objectKey } = await sessionWithOneObject(bytes);
    const put = await store.claim(attacker.repo, id);
    await store.receive(put, null, { declaredLength: 0, maxBytes: 0 });
    await store.cancel(attacker.repo, id);
    await expect(store.finish(put, digest)).rejects.toBeInstanceOf(UploadUnknownError);
    expect(await env.REGISTRY_BUCKET.head(objectKey)).toBeNull();
    expect(await blobIndexFor(env.BLOB_INDEX, digest).get()).toBeNull();
    await expectVictimCanPushAndPull(bytes);
  });

  it("of two requests that claimed a session, only the newer can finish it", async () => {
    const bytes = randomBytes(2048);
    const digest = await digestOf(bytes);
    const { store, id } = await sessionWithOneObject(bytes);
    const older = await store.claim(attacker.repo, id);
    const newer = await store.claim(attacker.repo, id);
    for (const handle of [older, newer]) await store.receive(handle, null, { declaredLength: 0, maxBytes: 0 });
    await expect(store.finish(older, digest)).rejects.toBeInstanceOf(UploadSupersededError);
    await store.finish(newer, digest);
    expect(await pulledDigest(attacker.repo, attacker.token, digest)).toBe(digest);
  });

  it("a second upload of a digest is deduplicated onto the first one's bytes, and its own bytes are deleted", async () => {
    const bytes = randomBytes(3000);
    const digest = await digestOf(bytes);
    const first = await sessionWithOneObject(bytes);
    const second = await sessionWithOneObject(bytes);
    for (const session of [first, second]) {
      const handle = await session.store.claim(attacker.repo, session.id);
      await session.store.receive(handle, null, { declaredLength: 0, maxBytes: 0 });
      expect((await session.store.finish(handle, digest)).key).toBe(first.objectKey);
    }
    expect(await env.REGISTRY_BUCKET.head(second.objectKey)).toBeNull();
    expect(await env.REGISTRY_BUCKET.head(first.objectKey)).not.toBeNull();
  });
});

describe("defect 1 over HTTP: PATCH, a slow PATCH, PUT, then the slow PATCH completes", () => {
  it("the blob stays pullable in every repository that pushes it, and the finished session stays finished", async () => {
    const bytes = randomBytes(8192);
    const digest = await digestOf(bytes);
    const start = await call(`/v2/${attacker.repo}/blobs/uploads/`, { method: "POST", headers: bearer(attacker.token) });
    const location = start.headers.get("Location")!;
    expect((await call(location, { method: "PATCH", headers: bearer(attacker.token), body: bytes })).status).toBe(202);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const slowBody = new ReadableStream<Uint8Array>({
      async pull(controller) {
        controller.enqueue(randomBytes(64));
        await released;
        controller.close();
      },
    });
    const slowPatch = call(location, { method: "PATCH", headers: bearer(attacker.token), body: slowBody });
    const put = await call(`${location}?digest=${digest}`, { method: "PUT", headers: bearer(attacker.token) });
    release();
    const slow = await slowPatch;
    // Either order of claims is possible here; in both, at most one of the two requests changes the session.
    expect([put.status, slow.status].filter((status) => status === 201 || status === 202).length).toBeLessThanOrEqual(2);
    if (put.status === 201) {
      expect([400, 404]).toContain(slow.status);
      expect(await pulledDigest(attacker.repo, attacker.token, digest)).toBe(digest);
      await expectOciError(await call(location, { method: "PATCH", headers: bearer(attacker.token), body: randomBytes(10) }), 404, "BLOB_UPLOAD_UNKNOWN");
    }
    await expectVictimCanPushAndPull(bytes);
  });
});

describe("tags under concurrent pushes", () => {
  it("8 clients move one tag at once: one winner, and the ledger records each committed move exactly once", async () => {
    const repo = attacker.repo;
    const layerDigest = await pushBlob(repo, randomBytes(512), attacker.token);
    const manifests = await Promise.all(
      Array.from({ length: 8 }, async (_, index) => {
        const config = new TextEncoder().encode(JSON.stringify({ client: index }));
        const configDigest = await pushBlob(repo, config, attacker.token);
        const bytes = new TextEncoder().encode(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: OCI_MANIFEST,
            config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.length },
            layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: layerDigest, size: 512 }],
          }),
        );
        return { bytes, digest: await digestOf(bytes) };
      }),
    );
    const responses = await Promise.all(
      manifests.map(({ bytes }) =>
        call(`/v2/${repo}/manifests/contended`, { method: "PUT", headers: { ...bearer(attacker.token), "Content-Type": OCI_MANIFEST }, body: bytes }),
      ),
    );
    expect(responses.map((response) => response.status)).toEqual(Array(8).fill(201));
    const history = await ledgerOf(repo).tagHistory("contended");
    expect(history).toHaveLength(8);
    expect(new Set(history.map((move) => move.to))).toEqual(new Set(manifests.map((manifest) => manifest.digest)));
    // A chain: each move starts where the previous one ended, so none was lost or applied twice.
    history.forEach((move, index) => expect(move.from).toBe(index === 0 ? null : history[index - 1]!.to));
    const tagged = await call(`/v2/${repo}/manifests/contended`, { headers: { ...bearer(attacker.token), Accept: OCI_MANIFEST } });
    expect(tagged.headers.get("Docker-Content-Digest")).toBe(history.at(-1)!.to);
  });

  it("a manifest push that fails its blob check changes nothing, in the ledger or in KV", async () => {
    const repo = attacker.repo;
    const missing = `sha256:${"e".repeat(64)}`;
    const bytes = new TextEncoder().encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: missing, size: 2 },
        layers: [],
        subject: { mediaType: OCI_MANIFEST, digest: `sha256:${"f".repeat(64)}`, size: 10 },
      }),
    );
    const digest = await digestOf(bytes);
    const response = await call(`/v2/${repo}/manifests/never`, { method: "PUT", headers: { ...bearer(attacker.token), "Content-Type": OCI_MANIFEST }, body: bytes });
    await expectOciError(response, 400, "MANIFEST_BLOB_UNKNOWN");
    const ledger = ledgerOf(repo);
    expect(await ledger.getManifest(digest)).toBeNull();
    expect(await ledger.getTag("never")).toBeNull();
    expect(await ledger.listReferrers(`sha256:${"f".repeat(64)}`)).toEqual([]);
    expect(await ledger.tagHistory("never")).toEqual([]);
    const kvKeys = (await env.REGISTRY_KV.list({ prefix: "" })).keys.map((key) => key.name);
    expect(kvKeys.filter((name) => name.includes(digest) || name.endsWith(":never"))).toEqual([]);
  });
});

describe("publication to KV", () => {
  it("every committed change reaches KV: the outbox drains, and KV holds what the ledger holds", async () => {
    const repo = attacker.repo;
    const layerDigest = await pushBlob(repo, randomBytes(300), attacker.token);
    const ledger = ledgerOf(repo);
    await ledger.publish();
    // A key written less than a second ago (the contended tag above) waits for the alarm: KV takes one
    // write per second per key. Past that second the alarm publishes it.
    if ((await ledger.pendingPublications()) > 0) {
      await new Promise((resolve) => setTimeout(resolve, 1100));
      expect(await runDurableObjectAlarm(ledger)).toBe(true);
    }
    expect(await ledger.pendingPublications()).toBe(0);
    expect(await env.REGISTRY_KV.getWithMetadata(`tag:${repo}:contended`)).toMatchObject({ metadata: { digest: (await ledger.getTag("contended"))! } });
    expect(await env.REGISTRY_KV.get(`link:${repo}:${layerDigest}`, "json")).toEqual(await ledger.getBlobLink(layerDigest));
    expect(await env.REGISTRY_KV.get(`repo:${repo}`, "json")).toMatchObject({ name: repo });
  });
});
