import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { BlobUploads } from "../../src/storage/blob-uploads";
import { PART_SIZE } from "../../src/storage/blob-writer";
import { OCI_MANIFEST, bearer, call, expectOciError, ledgerOf, pushBlob, pushImage, randomBytes, repositoryFixture } from "../helpers/registry";

let repo: string;
let token: string;

beforeAll(async () => ({ repo, token } = await repositoryFixture()));

const deleteBlob = (digest: string) => call(`/v2/${repo}/blobs/${digest}`, { method: "DELETE", headers: bearer(token) });

describe("blob deletes and manifest pushes", () => {
  it("a blob referenced by a manifest cannot be deleted; once the manifest is gone it can", async () => {
    const { layerDigest, digest } = await pushImage(repo, "guarded", token);
    const refused = await deleteBlob(layerDigest);
    const error = await expectOciError(refused, 403, "DENIED");
    expect(JSON.stringify(error.detail)).toContain(digest);
    expect((await call(`/v2/${repo}/blobs/${layerDigest}`, { method: "HEAD", headers: bearer(token) })).status).toBe(200);
    expect((await call(`/v2/${repo}/manifests/${digest}`, { method: "DELETE", headers: bearer(token) })).status).toBe(202);
    expect((await deleteBlob(layerDigest)).status).toBe(202);
  });

  it("racing deletes of a blob with pushes of manifests using it never leave a manifest on a missing blob", async () => {
    for (let round = 0; round < 8; round++) {
      const layer = randomBytes(256);
      const layerDigest = await pushBlob(repo, layer, token);
      const configDigest = await pushBlob(repo, new TextEncoder().encode(`{"round":${round}}`), token);
      const manifest = JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: 11 + String(round).length },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: layerDigest, size: 256 }],
      });
      const [put] = await Promise.all([
        call(`/v2/${repo}/manifests/race-${round}`, { method: "PUT", headers: { ...bearer(token), "Content-Type": OCI_MANIFEST }, body: manifest }),
        deleteBlob(layerDigest),
      ]);
      if (put.status === 201) {
        // The manifest went in: its layer must still be there.
        expect((await call(`/v2/${repo}/blobs/${layerDigest}`, { method: "HEAD", headers: bearer(token) })).status).toBe(200);
      } else {
        await expectOciError(put, 400, "MANIFEST_BLOB_UNKNOWN");
        await expectOciError(await call(`/v2/${repo}/manifests/race-${round}`, { headers: bearer(token) }), 404, "MANIFEST_UNKNOWN");
      }
    }
  });

  it("racing a tag push with the manifest's delete never leaves a tag whose digest is missing", async () => {
    for (let round = 0; round < 6; round++) {
      const { bytes, digest } = await pushImage(repo, `base-${round}`, token);
      await Promise.all([
        call(`/v2/${repo}/manifests/moving-${round}`, { method: "PUT", headers: { ...bearer(token), "Content-Type": OCI_MANIFEST }, body: bytes }),
        call(`/v2/${repo}/manifests/${digest}`, { method: "DELETE", headers: bearer(token) }),
      ]);
      const tagged = await call(`/v2/${repo}/manifests/moving-${round}`, { headers: bearer(token) });
      if (tagged.status === 200) {
        expect((await call(`/v2/${repo}/manifests/${tagged.headers.get("Docker-Content-Digest")}`, { headers: bearer(token) })).status).toBe(200);
      } else {
        expect(tagged.status).toBe(404);
      }
    }
  });
});

describe("abandoned uploads", () => {
  const start = async () => (await call(`/v2/${repo}/blobs/uploads/`, { method: "POST", headers: bearer(token) })).headers.get("Location")!;
  const chunkedBody = (bytes: Uint8Array) => new ReadableStream<Uint8Array>({ start: (controller) => (controller.enqueue(bytes), controller.close()) });
  const DAY_AND_MORE = 25 * 3600 * 1000;

  it("the ledger's alarm drops the bytes of sessions idle for a day and forgets them; fresh ones stay until then", async () => {
    // A multipart upload stays open only in a session that received bytes over more than one request.
    const old = await start();
    await call(old, { method: "PATCH", headers: bearer(token), body: randomBytes(10) });
    await call(old, { method: "PATCH", headers: bearer(token), body: chunkedBody(randomBytes(PART_SIZE + 10)) });
    const oldObject = await start();
    await call(oldObject, { method: "PATCH", headers: bearer(token), body: randomBytes(5000) });
    const fresh = await start();
    const ledger = ledgerOf(repo);
    const oldId = old.split("/").at(-1)!;
    const multipart = (await ledger.getUpload(oldId))!;
    expect(multipart.multipartUploadId).toBeTruthy();
    expect(multipart.tailKey).toBeTruthy();
    const objectKey = (await ledger.getUpload(oldObject.split("/").at(-1)!))!.blobKey;
    expect(await env.REGISTRY_BUCKET.head(objectKey)).not.toBeNull();
    // Nothing is a day old yet.
    expect(await ledger.settleAbandonedUploads(Date.now())).toBe(0);
    expect(await ledger.settleAbandonedUploads(Date.now() + DAY_AND_MORE)).toBeGreaterThanOrEqual(3);
    for (const location of [old, oldObject, fresh]) await expectOciError(await call(location, { headers: bearer(token) }), 404, "BLOB_UPLOAD_UNKNOWN");
    const resumed = env.REGISTRY_BUCKET.resumeMultipartUpload(multipart.blobKey, multipart.multipartUploadId!);
    await expect(resumed.complete(multipart.parts)).rejects.toThrow();
    expect(await env.REGISTRY_BUCKET.head(objectKey)).toBeNull();
    expect(await env.REGISTRY_BUCKET.head(multipart.tailKey!)).toBeNull();
  });

  it("the cron sweep deletes only tail objects older than any live session could keep", async () => {
    const location = await start();
    await call(location, { method: "PATCH", headers: bearer(token), body: randomBytes(10) });
    await call(location, { method: "PATCH", headers: bearer(token), body: chunkedBody(randomBytes(100)) });
    const tailKey = (await ledgerOf(repo).getUpload(location.split("/").at(-1)!))!.tailKey!;
    const uploads = new BlobUploads(env.REGISTRY_BUCKET, env.REPOSITORY_LEDGER, env.BLOB_INDEX);
    await uploads.sweepOrphanTails(Date.now());
    expect(await env.REGISTRY_BUCKET.head(tailKey)).not.toBeNull();
    expect(await uploads.sweepOrphanTails(Date.now() + DAY_AND_MORE + 3600 * 1000)).toBeGreaterThanOrEqual(1);
    expect(await env.REGISTRY_BUCKET.head(tailKey)).toBeNull();
  });
});

describe("interrupted uploads", () => {
  it("a body shorter than its Content-Length answers 400 and the session keeps its last offset", async () => {
    const start = await call(`/v2/${repo}/blobs/uploads/`, { method: "POST", headers: bearer(token) });
    const location = start.headers.get("Location")!;
    expect((await call(location, { method: "PATCH", headers: bearer(token), body: randomBytes(1000) })).status).toBe(202);
    const short = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(randomBytes(500));
        controller.close();
      },
    });
    const truncated = await call(location, { method: "PATCH", headers: { ...bearer(token), "Content-Length": "5000" }, body: short });
    await expectOciError(truncated, 400, "BLOB_UPLOAD_INVALID");
    expect((await call(location, { headers: bearer(token) })).headers.get("Range")).toBe("0-999");
  });
});
