import { beforeAll, describe, expect, it } from "vitest";
import { OCI_INDEX, OCI_MANIFEST, bearer, call, digestOf, expectOciError, pushBlob, pushImage, randomBytes, repositoryFixture } from "../helpers/registry";

const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
let ns: string;
let repo: string;
let token: string;

beforeAll(async () => ({ ns, repo, token } = await repositoryFixture("other")));

function putManifest(reference: string, body: BodyInit, contentType: string | undefined = OCI_MANIFEST, repository = repo) {
  const headers: Record<string, string> = { ...bearer(token) };
  if (contentType) headers["Content-Type"] = contentType;
  return call(`/v2/${repository}/manifests/${reference}`, { method: "PUT", headers, body });
}

function getManifest(reference: string, accept?: string, method = "GET") {
  const headers: Record<string, string> = { ...bearer(token) };
  if (accept) headers.Accept = accept;
  return call(`/v2/${repo}/manifests/${reference}`, { method, headers });
}

describe("push and pull", () => {
  it("PUT by tag → 201 with Location and Docker-Content-Digest; GET and HEAD by tag and digest", async () => {
    const { bytes, digest } = await pushImage(repo, "v1", token);
    for (const reference of ["v1", digest]) {
      const response = await getManifest(reference, `${OCI_MANIFEST}, ${OCI_INDEX}`);
      expect(response.status).toBe(200);
      expect(response.headers.get("Content-Type")).toBe(OCI_MANIFEST);
      expect(response.headers.get("Docker-Content-Digest")).toBe(digest);
      expect(response.headers.get("Content-Length")).toBe(String(bytes.length));
      expect(new Uint8Array(await response.arrayBuffer())).toEqual(bytes);
      const head = await getManifest(reference, undefined, "HEAD");
      expect(head.status).toBe(200);
      expect(head.headers.get("Content-Length")).toBe(String(bytes.length));
      expect(head.headers.get("Docker-Content-Digest")).toBe(digest);
      expect(await head.text()).toBe("");
    }
  });

  it("PUT by digest that matches the body → 201", async () => {
    const { manifest } = await pushImage(repo, "v2", token);
    const bytes = new TextEncoder().encode(JSON.stringify({ ...manifest, annotations: { a: "b" } }));
    const digest = await digestOf(bytes);
    const response = await putManifest(digest, bytes);
    expect(response.status).toBe(201);
    expect(response.headers.get("Location")).toBe(`/v2/${repo}/manifests/${digest}`);
  });

  it("a Docker schema 2 manifest and manifest list are stored with their own media types", async () => {
    const { manifest, digest: child } = await pushImage(repo, "docker-child", token);
    const docker = new TextEncoder().encode(JSON.stringify({ ...manifest, mediaType: DOCKER_MANIFEST, config: { ...manifest.config, mediaType: "application/vnd.docker.container.image.v1+json" } }));
    expect((await putManifest("docker", docker, DOCKER_MANIFEST)).status).toBe(201);
    expect((await getManifest("docker", DOCKER_MANIFEST)).headers.get("Content-Type")).toBe(DOCKER_MANIFEST);
    const list = new TextEncoder().encode(
      JSON.stringify({ schemaVersion: 2, mediaType: DOCKER_LIST, manifests: [{ mediaType: OCI_MANIFEST, digest: child, size: 10, platform: { architecture: "amd64", os: "linux" } }] }),
    );
    expect((await putManifest("list", list, DOCKER_LIST)).status).toBe(201);
  });

  it("Accept negotiation: a manifest whose type the client does not accept → 404 MANIFEST_UNKNOWN", async () => {
    await pushImage(repo, "neg", token);
    expect((await getManifest("neg", "*/*")).status).toBe(200);
    await expectOciError(await getManifest("neg", DOCKER_MANIFEST), 404, "MANIFEST_UNKNOWN");
  });

  it("a multi-architecture index over existing manifests", async () => {
    const amd = await pushImage(repo, "amd64", token);
    const arm = await pushImage(repo, "arm64", token);
    const index = new TextEncoder().encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [
          { mediaType: OCI_MANIFEST, digest: amd.digest, size: amd.bytes.length, platform: { architecture: "amd64", os: "linux" } },
          { mediaType: OCI_MANIFEST, digest: arm.digest, size: arm.bytes.length, platform: { architecture: "arm64", os: "linux" } },
        ],
      }),
    );
    expect((await putManifest("multi", index, OCI_INDEX)).status).toBe(201);
    const response = await getManifest("multi", OCI_INDEX);
    expect(response.headers.get("Content-Type")).toBe(OCI_INDEX);
  });

  it("a subject sets OCI-Subject even when the subject does not exist yet", async () => {
    const subject = { mediaType: OCI_MANIFEST, digest: `sha256:${"5".repeat(64)}`, size: 10 };
    const { digest } = await pushImage(repo, "sig", token, { subject, artifactType: "application/vnd.example.sig" });
    const response = await call(`/v2/${repo}/referrers/${subject.digest}`, { headers: bearer(token) });
    expect(((await response.json()) as { manifests: { digest: string }[] }).manifests.map((m) => m.digest)).toEqual([digest]);
  });
});

describe("invalid pushes (table)", () => {
  let config: { mediaType: string; digest: string; size: number };
  let layer: { mediaType: string; digest: string; size: number };
  beforeAll(async () => {
    const layerBytes = randomBytes(32);
    layer = { mediaType: "application/vnd.oci.image.layer.v1.tar", digest: await pushBlob(repo, layerBytes, token), size: 32 };
    const configBytes = new TextEncoder().encode("{}");
    config = { mediaType: "application/vnd.oci.image.config.v1+json", digest: await pushBlob(repo, configBytes, token), size: 2 };
  });
  const manifest = (extra: Record<string, unknown> = {}) => JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer], ...extra });

  const cases: [string, () => [string, BodyInit, string | undefined], number, string][] = [
    ["not JSON", () => ["bad", "{not json", OCI_MANIFEST], 400, "MANIFEST_INVALID"],
    ["a JSON array", () => ["bad", "[]", OCI_MANIFEST], 400, "MANIFEST_INVALID"],
    ["schemaVersion 1", () => ["bad", manifest({ schemaVersion: 1 }), OCI_MANIFEST], 400, "MANIFEST_INVALID"],
    ["mediaType contradicting Content-Type", () => ["bad", manifest(), OCI_INDEX], 400, "MANIFEST_INVALID"],
    ["an unknown media type", () => ["bad", manifest({ mediaType: "text/plain" }), "text/plain"], 400, "MANIFEST_INVALID"],
    ["a config that is not a descriptor", () => ["bad", manifest({ config: "x" }), OCI_MANIFEST], 400, "MANIFEST_INVALID"],
    ["a layer with a malformed digest", () => ["bad", manifest({ layers: [{ ...layer, digest: "sha256:zz" }] }), OCI_MANIFEST], 400, "MANIFEST_INVALID"],
    ["a negative size", () => ["bad", manifest({ layers: [{ ...layer, size: -1 }] }), OCI_MANIFEST], 400, "MANIFEST_INVALID"],
    ["a layer not in the repository", () => ["bad", manifest({ layers: [{ ...layer, digest: `sha256:${"7".repeat(64)}` }] }), OCI_MANIFEST], 400, "MANIFEST_BLOB_UNKNOWN"],
    ["an index with an unknown child", () => ["bad", JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: `sha256:${"8".repeat(64)}`, size: 1 }] }), OCI_INDEX], 400, "MANIFEST_BLOB_UNKNOWN"],
    ["an index whose manifests is not an array", () => ["bad", JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: {} }), OCI_INDEX], 400, "MANIFEST_INVALID"],
    ["a digest reference that does not match the body", () => [`sha256:${"1".repeat(64)}`, manifest(), OCI_MANIFEST], 400, "DIGEST_INVALID"],
    ["a malformed tag", () => ["-bad", manifest(), OCI_MANIFEST], 400, "MANIFEST_INVALID"],
    ["a malformed digest reference", () => ["sha256:123", manifest(), OCI_MANIFEST], 400, "DIGEST_INVALID"],
    ["a body over 4 MiB", () => ["big", manifest({ annotations: { pad: "x".repeat(4 * 1024 * 1024) } }), OCI_MANIFEST], 413, "MANIFEST_INVALID"],
    ["non-string annotations", () => ["bad", manifest({ annotations: { a: 1 } }), OCI_MANIFEST], 400, "MANIFEST_INVALID"],
  ];

  it.each(cases)("%s", async (_label, build, status, code) => {
    const [reference, body, contentType] = build();
    await expectOciError(await putManifest(reference, body, contentType), status, code);
    // Nothing was stored under the tag.
    if (/^[a-z]/.test(reference) && !reference.includes(":")) await expectOciError(await getManifest(reference), 404, "MANIFEST_UNKNOWN");
  });

  it("a manifest referencing blobs of another repository is refused", async () => {
    await expectOciError(await putManifest("v1", manifest(), OCI_MANIFEST, `${ns}/other`), 400, "MANIFEST_BLOB_UNKNOWN");
  });
});

describe("delete", () => {
  it("by tag removes only the tag; by digest removes the manifest and its tags", async () => {
    const { digest } = await pushImage(repo, "del-a", token);
    await call(`/v2/${repo}/manifests/del-b`, { method: "PUT", headers: { ...bearer(token), "Content-Type": OCI_MANIFEST }, body: await (await getManifest(digest)).arrayBuffer() });
    expect((await call(`/v2/${repo}/manifests/del-a`, { method: "DELETE", headers: bearer(token) })).status).toBe(202);
    await expectOciError(await getManifest("del-a"), 404, "MANIFEST_UNKNOWN");
    expect((await getManifest(digest)).status).toBe(200);
    expect((await call(`/v2/${repo}/manifests/${digest}`, { method: "DELETE", headers: bearer(token) })).status).toBe(202);
    await expectOciError(await getManifest(digest), 404, "MANIFEST_UNKNOWN");
    await expectOciError(await getManifest("del-b"), 404, "MANIFEST_UNKNOWN");
  });

  it("deleting a referrer removes it from its subject's referrers", async () => {
    const subject = `sha256:${"6".repeat(64)}`;
    const { digest } = await pushImage(repo, "ref-del", token, { subject: { mediaType: OCI_MANIFEST, digest: subject, size: 1 } });
    await call(`/v2/${repo}/manifests/${digest}`, { method: "DELETE", headers: bearer(token) });
    const response = await call(`/v2/${repo}/referrers/${subject}`, { headers: bearer(token) });
    expect(((await response.json()) as { manifests: unknown[] }).manifests).toEqual([]);
  });

  it("unknown tags and digests → 404 MANIFEST_UNKNOWN", async () => {
    await expectOciError(await call(`/v2/${repo}/manifests/nope`, { method: "DELETE", headers: bearer(token) }), 404, "MANIFEST_UNKNOWN");
    await expectOciError(await call(`/v2/${repo}/manifests/sha256:${"4".repeat(64)}`, { method: "DELETE", headers: bearer(token) }), 404, "MANIFEST_UNKNOWN");
  });
});
