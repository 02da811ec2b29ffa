/**
 * The registry client of imports and mirrors (src/upstream/registry-client.ts) against a small third-party
 * registry written here (distribution's token authentication, a redirecting blob store, hostile answers),
 * and the copy into a repository with real R2, KV and Durable Objects: a blob whose bytes do not match its
 * digest stores nothing and records no manifest.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { ImageCopier, ImageCopyError } from "../../src/registry/image-copy";
import { BlobIngest } from "../../src/storage/blob-ingest";
import { BlobUploads, DigestMismatchError } from "../../src/storage/blob-uploads";
import { RepositoryStore } from "../../src/storage/repository-store";
import { UpstreamError, UpstreamRegistry, parseBearerChallenge, parseUpstreamBase } from "../../src/upstream/registry-client";
import { adminCall, basic, call, createNamespace, createServiceAccount, createUser, digestOf, randomBytes } from "../helpers/registry";

const UPSTREAM = "https://upstream.test";
const REALM = "https://auth.upstream.test/token";
const USER = { username: "reader", password: "reader-secret" };
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

interface Seen {
  url: string;
  authorization: string | null;
}

/**
 * A registry needing a Bearer token (issued by REALM for Basic credentials) for `library/app`. Its blobs
 * redirect to a storage origin; `corrupt` serves other bytes for a blob than its digest names.
 */
async function thirdParty(options: { corrupt?: boolean; lyingDigest?: boolean } = {}) {
  const layer = randomBytes(4096);
  const config = new TextEncoder().encode(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }));
  const blobs = new Map([
    [await digestOf(layer), layer],
    [await digestOf(config), config],
  ]);
  const manifest = new TextEncoder().encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: await digestOf(config), size: config.length },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: await digestOf(layer), size: layer.length }],
    }),
  );
  const manifestDigest = await digestOf(manifest);
  const seen: Seen[] = [];
  const fetcher = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(String(input instanceof Request ? input.url : input));
    const authorization = new Headers(init?.headers).get("Authorization");
    seen.push({ url: url.href, authorization });
    if (url.origin === "https://auth.upstream.test") {
      const expected = `Basic ${btoa(`${USER.username}:${USER.password}`)}`;
      if (authorization !== expected) return new Response("{}", { status: 401 });
      return Response.json({ token: `token-for-${url.searchParams.get("scope")}` });
    }
    if (url.origin === "https://storage.test") {
      const digest = url.pathname.slice(1);
      const bytes = options.corrupt ? randomBytes(blobs.get(digest)!.length) : blobs.get(digest)!;
      return new Response(bytes, { headers: { "Content-Length": String(bytes.length) } });
    }
    if (authorization !== "Bearer token-for-repository:library/app:pull") {
      return new Response("{}", { status: 401, headers: { "WWW-Authenticate": `Bearer realm="${REALM}",service="upstream.test",scope="repository:library/app:pull"` } });
    }
    if (url.pathname.startsWith("/v2/library/app/manifests/")) {
      const digest = options.lyingDigest ? `sha256:${"0".repeat(64)}` : manifestDigest;
      return new Response(manifest, { headers: { "Content-Type": OCI_MANIFEST, "Docker-Content-Digest": digest } });
    }
    const blob = /^\/v2\/library\/app\/blobs\/(.+)$/.exec(url.pathname);
    if (blob) return new Response(null, { status: 307, headers: { Location: `https://storage.test/${blob[1]}` } });
    return new Response("{}", { status: 404 });
  }) as typeof fetch;
  return { fetcher, seen, manifestDigest, layerDigest: await digestOf(layer) };
}

function client(fetcher: typeof fetch, credentials: typeof USER | undefined = USER) {
  return new UpstreamRegistry(new URL(UPSTREAM), credentials, false, fetcher);
}

describe("registry client", () => {
  it("does the Bearer token dance with Basic credentials at the realm, then verifies the manifest", async () => {
    const upstream = await thirdParty();
    const manifest = await client(upstream.fetcher).getManifest("library/app", "v1");
    expect(manifest.digest).toBe(upstream.manifestDigest);
    expect(manifest.mediaType).toBe(OCI_MANIFEST);
    const tokenRequest = upstream.seen.find((request) => request.url.startsWith(REALM))!;
    expect(new URL(tokenRequest.url).searchParams.get("scope")).toBe("repository:library/app:pull");
    expect(new URL(tokenRequest.url).searchParams.get("service")).toBe("upstream.test");
    // The token is reused: one realm request for several calls.
    await client(upstream.fetcher).resolveTag("library/app", "v1");
    const c = client(upstream.fetcher);
    await c.getManifest("library/app", "v1");
    await c.getManifest("library/app", upstream.manifestDigest);
    expect(upstream.seen.filter((request) => request.url.startsWith(REALM))).toHaveLength(3);
  });

  it("refuses wrong credentials at the realm, and a manifest that does not match its digest", async () => {
    const upstream = await thirdParty();
    await expect(client(upstream.fetcher, { username: "reader", password: "wrong" }).getManifest("library/app", "v1")).rejects.toThrow(UpstreamError);
    const lying = await thirdParty({ lyingDigest: true });
    await expect(client(lying.fetcher).getManifest("library/app", "v1")).rejects.toThrow(/hashes to/);
    await expect(client(upstream.fetcher).getManifest("library/app", `sha256:${"1".repeat(64)}`)).rejects.toThrow(/hashes to/);
  });

  it("follows a blob redirect to another origin without the Authorization header", async () => {
    const upstream = await thirdParty();
    const blob = await client(upstream.fetcher).openBlob("library/app", upstream.layerDigest);
    expect(blob.size).toBe(4096);
    await blob.body.cancel();
    const storage = upstream.seen.find((request) => request.url.startsWith("https://storage.test/"))!;
    expect(storage.authorization).toBeNull();
  });

  it("allows plain HTTP only on loopback with ALLOW_INSECURE_UPSTREAMS", () => {
    expect(parseUpstreamBase("registry.example.com", false)?.href).toBe("https://registry.example.com/");
    expect(parseUpstreamBase("http://registry.example.com", true)).toBeNull();
    expect(parseUpstreamBase("http://127.0.0.1:5000", false)).toBeNull();
    expect(parseUpstreamBase("http://127.0.0.1:5000", true)?.href).toBe("http://127.0.0.1:5000/");
    expect(parseUpstreamBase("https://registry.example.com/path", false)).toBeNull();
    expect(parseUpstreamBase("https://user:pass@registry.example.com", false)).toBeNull();
    expect(parseBearerChallenge('Bearer realm="https://a/token",service="s",scope="repository:x:pull"')).toEqual({ realm: "https://a/token", service: "s", scope: "repository:x:pull" });
  });
});

describe("copy into a repository", () => {
  let namespace: string;
  let copier: ImageCopier;
  let repositories: RepositoryStore;
  beforeAll(async () => {
    namespace = (await createNamespace()).name;
    repositories = new RepositoryStore(env.REGISTRY_KV, env.REPOSITORY_LEDGER, { consistentTagReads: true });
    const uploads = new BlobUploads(env.REGISTRY_BUCKET, env.REPOSITORY_LEDGER, env.BLOB_INDEX);
    copier = new ImageCopier(repositories, new BlobIngest(uploads, env.REPOSITORY_LEDGER, env.BLOB_INDEX));
  });

  it("copies an image, its blobs verified and linked, the tag recorded in the tag history", async () => {
    const upstream = await thirdParty();
    const repository = `${namespace}/copied`;
    const result = await copier.copy(client(upstream.fetcher), "library/app", "v1", { repository, tag: "v1", actor: "import:test" });
    expect(result).toMatchObject({ sourceDigest: upstream.manifestDigest, digest: upstream.manifestDigest, blobsFetched: 2 });
    expect((await repositories.getTaggedManifest(repository, "v1", "own-writes"))?.digest).toBe(upstream.manifestDigest);
    expect(await repositories.getBlobLink(repository, upstream.layerDigest, "own-writes")).not.toBeNull();
    const history = await repositories.tagHistory(repository, "v1");
    expect(history.map((move) => move.actor)).toContain("import:test");
    // A second repository links the stored blobs without fetching them.
    const again = await copier.copy(client(upstream.fetcher), "library/app", "v1", { repository: `${namespace}/linked`, tag: "v1", actor: "import:test" });
    expect(again.blobsFetched).toBe(0);
  });

  it("a blob whose bytes do not match its digest stores nothing", async () => {
    const upstream = await thirdParty({ corrupt: true });
    const repository = `${namespace}/corrupt`;
    await expect(copier.copy(client(upstream.fetcher), "library/app", "v1", { repository, tag: "v1", actor: "import:test" })).rejects.toThrow(DigestMismatchError);
    expect(await repositories.getTaggedManifest(repository, "v1", "own-writes")).toBeNull();
    expect(await repositories.getBlobLink(repository, upstream.layerDigest, "own-writes")).toBeNull();
    expect(await repositories.getManifest(repository, upstream.manifestDigest, "own-writes")).toBeNull();
  });

  it("refuses a reference outside the grammar before asking the upstream", async () => {
    const upstream = await thirdParty();
    await expect(copier.copy(client(upstream.fetcher), "library/app", "../x", { repository: `${namespace}/bad`, actor: "t" })).rejects.toThrow(ImageCopyError);
    expect(upstream.seen).toHaveLength(0);
  });
});

describe("mirror and import administration", () => {
  it("administrators of the namespace manage its mirror on the admin API; others get 403; the password is never answered", async () => {
    const { name: namespace } = await createNamespace();
    const { name: other } = await createNamespace();
    const password = "mirror-admin-password-1234";
    const admin = { username: `madm${crypto.randomUUID().slice(0, 8)}`, token: password };
    await createUser(admin.username, password, [{ namespace, role: "admin" }]);
    // A service account never administers, even with the admin role (README "Roles").
    const robot = await createServiceAccount(namespace, "mirror-admin", [{ namespace, role: "admin" }]);
    const reader = await createServiceAccount(namespace, "mirror-reader", [{ namespace, role: "read" }]);
    const as = (who: { username: string; token: string }, method: string, path: string, body?: unknown, base = "/admin/v1") =>
      call(`${base}${path}`, {
        method,
        headers: { Authorization: basic(who.username, who.token), "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    const config = { upstream: "https://registry.example.com", revalidateSeconds: 60, username: "robot", password: "upstream-secret-1" };
    const set = await as(admin, "PUT", `/namespaces/${namespace}/mirror`, config);
    expect(set.status, await set.clone().text()).toBe(200);
    const text = await (await as(admin, "GET", `/namespaces/${namespace}/mirror`)).text();
    expect(JSON.parse(text)).toMatchObject({ namespace, upstream: "https://registry.example.com", revalidateSeconds: 60, credentials: { username: "robot" } });
    expect(text).not.toContain("upstream-secret-1");
    for (const who of [robot, reader]) expect((await as(who, "PUT", `/namespaces/${namespace}/mirror`, config)).status).toBe(403);
    expect((await as(admin, "PUT", `/namespaces/${other}/mirror`, config)).status).toBe(403);
    expect((await as(admin, "GET", `/repositories/${other}/app/imports`)).status).toBe(403);
    // The account API administers nothing.
    expect((await as(admin, "GET", `/namespaces/${namespace}/mirror`, undefined, "/account/v1")).status).toBe(404);
    // Plain HTTP off loopback is refused, whatever ALLOW_INSECURE_UPSTREAMS says.
    expect((await adminCall("PUT", `/namespaces/${namespace}/mirror`, { upstream: "http://registry.example.com" })).status).toBe(400);
    expect((await as(admin, "DELETE", `/namespaces/${namespace}/mirror`)).status).toBe(204);
    expect((await adminCall("GET", `/namespaces/${namespace}/mirror`)).status).toBe(404);
  });
});
