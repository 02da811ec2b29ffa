/**
 * Hostile-input corpus: malformed credentials, forged tokens, scope escalation, cross-tenant access,
 * upload and manifest abuse, invalid names, oversized requests. Every case must answer its status and
 * error code, never a 5xx, leak no internals, and leave no stored trace.
 */
import { env } from "cloudflare:workers";
import { SignJWT, calculateJwkThumbprint, decodeJwt, generateKeyPair, importJWK, type JWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  OCI_INDEX,
  OCI_MANIFEST,
  SERVICE,
  adminToken,
  basic,
  bearer,
  call,
  createNamespace,
  createServiceAccount,
  pushBlob,
  pushImage,
  randomBytes,
  tokenFor,
} from "../helpers/registry";

interface Case {
  name: string;
  /** Path and init of the request (built lazily: they use fixtures from beforeAll). */
  request: () => Promise<[string, RequestInit]> | [string, RequestInit];
  status: number | number[];
  /** OCI error code, OAuth `error`, or admin `error.code`. */
  code?: string;
  /** Extra checks on the response (e.g. a token's access claim). */
  check?: (response: Response, body: string) => void | Promise<void>;
}

const fx = {} as {
  a: string;
  b: string;
  writer: { username: string; secret: string };
  reader: { username: string; secret: string };
  writerToken: string;
  readerToken: string;
  /** Every action on A, for cases that need delete. */
  aAdminToken: string;
  bImage: { digest: string; layerDigest: string };
  bOnlyBlob: string;
  aImage: { digest: string; layerDigest: string; configDigest: string };
  bSession: string;
  aSession: string;
  registryKid: string;
  registryKey: CryptoKey;
};

let counter = 0;
const fresh = (prefix: string) => `${prefix}${++counter}x${Math.floor(Math.random() * 1e6)}`;
const hex = (c: string) => c.repeat(64);
const b64url = (value: unknown) => btoa(JSON.stringify(value)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

/** Every stored key and object that is not an intended record of the attempt itself (audit, last use). */
async function storageSnapshot(): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await env.REGISTRY_KV.list({ cursor });
    keys.push(...page.keys.map((key) => key.name).filter((name) => !name.startsWith("audit:") && !name.startsWith("lastused:")));
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor);
  const objects = await env.REGISTRY_BUCKET.list({ limit: 1000 });
  return [...keys.map((key) => `kv:${key}`), ...objects.objects.map((object) => `r2:${object.key}`)].sort();
}

function claims(overrides: Record<string, unknown> = {}) {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: SERVICE,
    aud: SERVICE,
    sub: "forger",
    iat: now,
    nbf: now,
    exp: now + 300,
    jti: crypto.randomUUID(),
    access: [{ type: "repository", name: `${fx.b}/app`, actions: ["pull", "push", "delete"] }],
    ...overrides,
  };
}

/** The bootstrap admin's credentials with a JSON body type (what the CLI sends). */
const adminJson = () => ({ Authorization: basic("admin", env.BOOTSTRAP_ADMIN_PASSWORD), "Content-Type": "application/json" });

const signed = (payload: Record<string, unknown>, header: Record<string, unknown> = {}) =>
  new SignJWT(payload).setProtectedHeader({ alg: "ES256", typ: "JWT", kid: fx.registryKid, ...header }).sign(fx.registryKey);

// ---------------------------------------------------------------------------------------------------------
const cases: Case[] = [];
const add = (c: Case) => cases.push(c);

// 1. Malformed Authorization headers, on every authenticated surface.
const malformedAuthorization: [string, () => string][] = [
  ["scheme only", () => "Basic"],
  ["scheme and space", () => "Basic "],
  ["bad base64", () => "Basic !!!***"],
  ["no colon", () => `Basic ${btoa("justauser")}`],
  ["empty user", () => `Basic ${btoa(":secret")}`],
  ["empty secret", () => `Basic ${btoa("someone:")}`],
  ["empty both", () => `Basic ${btoa(":")}`],
  ["two credentials", () => `Basic ${btoa("a:b")} ${btoa("c:d")}`],
  ["huge", () => `Basic ${btoa(`u:${"x".repeat(6000)}`)}`],
  ["non-UTF-8 bytes", () => `Basic ${btoa("\xff\xfe:\xfd")}`],
  ["non-ASCII user (valid UTF-8, unknown)", () => `Basic ${btoa(String.fromCharCode(...new TextEncoder().encode(`${fresh("ü")}:pässword`)))}`],
  ["unknown scheme", () => "Digest username=x"],
  ["negotiate", () => "Negotiate YIIabc"],
  ["bearer on Basic-only surfaces / empty bearer", () => "Bearer "],
];
for (const [label, header] of malformedAuthorization) {
  add({ name: `token GET: Authorization ${label}`, request: () => [`/token?service=${SERVICE}`, { headers: { Authorization: header() } }], status: [400, 401] });
  add({ name: `admin API: Authorization ${label}`, request: () => ["/admin/v1/namespaces", { headers: { Authorization: header() } }], status: 401, code: "unauthorized" });
  add({ name: `account API: Authorization ${label}`, request: () => ["/account/v1/refresh-tokens", { headers: { Authorization: header() } }], status: 401, code: "unauthorized" });
  add({ name: `/v2/: Authorization ${label}`, request: () => ["/v2/", { headers: { Authorization: header() } }], status: 401, code: "UNAUTHORIZED" });
  add({
    name: `manifest GET: Authorization ${label}`,
    request: () => [`/v2/${fx.b}/app/manifests/v1`, { headers: { Authorization: header() } }],
    status: 401,
    code: "UNAUTHORIZED",
  });
}

// 2. Forged and stale tokens against /v2/, a pull and a push.
const forgeries: [string, () => Promise<string>][] = [
  ["alg none", async () => `${b64url({ alg: "none", typ: "JWT", kid: fx.registryKid })}.${b64url(claims())}.`],
  ["HS256 keyed with the public key", async () => {
    const { keys } = JSON.parse(env.SIGNING_KEYS) as { keys: JWK[] };
    const pub = { kty: keys[0]!.kty, crv: keys[0]!.crv, x: keys[0]!.x, y: keys[0]!.y };
    return new SignJWT(claims()).setProtectedHeader({ alg: "HS256", typ: "JWT", kid: fx.registryKid }).sign(new TextEncoder().encode(JSON.stringify(pub)));
  }],
  ["unknown key", async () => new SignJWT(claims()).setProtectedHeader({ alg: "ES256", typ: "JWT", kid: "nope" }).sign((await generateKeyPair("ES256")).privateKey)],
  ["embedded jwk", async () => {
    const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
    const { exportJWK } = await import("jose");
    return new SignJWT(claims()).setProtectedHeader({ alg: "ES256", typ: "JWT", kid: fx.registryKid, jwk: await exportJWK(publicKey) }).sign(privateKey);
  }],
  ["expired", () => signed(claims({ iat: Math.floor(Date.now() / 1000) - 1000, nbf: Math.floor(Date.now() / 1000) - 1000, exp: Math.floor(Date.now() / 1000) - 100 }))],
  ["not yet valid", () => signed(claims({ nbf: Math.floor(Date.now() / 1000) + 600 }))],
  ["wrong issuer", () => signed(claims({ iss: "evil" }))],
  ["wrong audience", () => signed(claims({ aud: "another-registry" }))],
  ["swapped signature", async () => `${fx.writerToken.split(".").slice(0, 2).join(".")}.${fx.readerToken.split(".")[2]}`],
  ["tampered payload", async () => `${fx.readerToken.split(".")[0]}.${b64url(claims({ sub: fx.reader.username }))}.${fx.readerToken.split(".")[2]}`],
  ["garbage", async () => "a.b.c"],
];
for (const [label, forge] of forgeries) {
  add({ name: `/v2/ with a forged token: ${label}`, request: async () => ["/v2/", { headers: bearer(await forge()) }], status: 401, code: "UNAUTHORIZED" });
  add({ name: `pull with a forged token: ${label}`, request: async () => [`/v2/${fx.b}/app/manifests/v1`, { headers: bearer(await forge()) }], status: 401, code: "UNAUTHORIZED" });
  add({ name: `push with a forged token: ${label}`, request: async () => [`/v2/${fx.b}/app/blobs/uploads/`, { method: "POST", headers: bearer(await forge()) }], status: 401, code: "UNAUTHORIZED" });
}

// 3. Scope escalation: the reader (read on A) asks for more; the token never holds more than pull on A.
const escalations = [
  "repository:A/app:*",
  "repository:A/app:push",
  "repository:A/app:delete",
  "repository:A/app:pull,push,delete,*",
  "repository:A/app:admin",
  "repository:A/app:PUSH",
  "repository(plugin):A/app:push",
  "repository(x):A/app:delete",
  "repository:B/app:pull",
  "repository:B/app:*",
  "registry:catalog:*",
  "registry:catalog:pull",
  "repository:127.0.0.1:5000/A/app:pull",
  "repository:localhost/A/app:push",
  "repository:A/App:pull",
  "repository:A/../B/app:pull",
  "repository:A%2Fapp:pull",
  "repository:A//app:pull",
  "repository:/A/app:pull",
  `repository:A/${"x".repeat(300)}:pull`,
  "repository:A/app:pull repository:A/app:push",
  "repository:A/app:pull repository:A/app:delete repository(plugin):A/app:*",
  "repository::pull",
  "repository:A/app",
  ":::",
];
for (const scope of escalations) {
  add({
    name: `scope escalation: ${scope.slice(0, 60)}`,
    request: () => {
      const resolved = scope.replace(/\bA\b/g, fx.a).replace(/\bB\b/g, fx.b);
      return [`/token?service=${SERVICE}&scope=${encodeURIComponent(resolved)}`, { headers: { Authorization: basic(fx.reader.username, fx.reader.secret) } }];
    },
    status: 200,
    check: (_response, body) => {
      const access = decodeJwt(JSON.parse(body).token).access as { type: string; name: string; actions: string[] }[];
      for (const entry of access) {
        const allowed = entry.type === "repository" && entry.name.startsWith(`${fx.a}/`) ? ["pull"] : [];
        expect(entry.actions.filter((action) => !allowed.includes(action)), JSON.stringify(entry)).toEqual([]);
      }
    },
  });
}

// 4. Cross-tenant access with the A writer's token (it holds pull/push on A only).
const crossTenant: [string, () => [string, RequestInit], number, string][] = [
  ["read B's manifest", () => [`/v2/${fx.b}/app/manifests/v1`, { headers: bearer(fx.writerToken) }], 401, "UNAUTHORIZED"],
  ["HEAD B's manifest", () => [`/v2/${fx.b}/app/manifests/v1`, { method: "HEAD", headers: bearer(fx.writerToken) }], 401, ""],
  ["read B's blob", () => [`/v2/${fx.b}/app/blobs/${fx.bImage.layerDigest}`, { headers: bearer(fx.writerToken) }], 401, "UNAUTHORIZED"],
  ["list B's tags", () => [`/v2/${fx.b}/app/tags/list`, { headers: bearer(fx.writerToken) }], 401, "UNAUTHORIZED"],
  ["list B's referrers", () => [`/v2/${fx.b}/app/referrers/${fx.bImage.digest}`, { headers: bearer(fx.writerToken) }], 401, "UNAUTHORIZED"],
  ["start an upload in B", () => [`/v2/${fx.b}/app/blobs/uploads/`, { method: "POST", headers: bearer(fx.writerToken) }], 401, "UNAUTHORIZED"],
  ["push a manifest to B", () => [`/v2/${fx.b}/app/manifests/evil`, { method: "PUT", headers: { ...bearer(fx.writerToken), "Content-Type": OCI_MANIFEST }, body: "{}" }], 401, "UNAUTHORIZED"],
  ["delete B's manifest", () => [`/v2/${fx.b}/app/manifests/${fx.bImage.digest}`, { method: "DELETE", headers: bearer(fx.writerToken) }], 401, "UNAUTHORIZED"],
  ["delete B's blob", () => [`/v2/${fx.b}/app/blobs/${fx.bImage.layerDigest}`, { method: "DELETE", headers: bearer(fx.writerToken) }], 401, "UNAUTHORIZED"],
  ["pull B's digest through A", () => [`/v2/${fx.a}/app/blobs/${fx.bOnlyBlob}`, { headers: bearer(fx.writerToken) }], 404, "BLOB_UNKNOWN"],
  ["pull B's manifest digest through A", () => [`/v2/${fx.a}/app/manifests/${fx.bImage.digest}`, { headers: bearer(fx.writerToken) }], 404, "MANIFEST_UNKNOWN"],
  ["PATCH B's upload session through A", () => [`/v2/${fx.a}/app/blobs/uploads/${fx.bSession}`, { method: "PATCH", headers: bearer(fx.writerToken), body: "evil" }], 404, "BLOB_UPLOAD_UNKNOWN"],
  ["finish B's upload session through A", () => [`/v2/${fx.a}/app/blobs/uploads/${fx.bSession}?digest=sha256:${hex("1")}`, { method: "PUT", headers: bearer(fx.writerToken) }], 404, "BLOB_UPLOAD_UNKNOWN"],
  ["read B's upload status through A", () => [`/v2/${fx.a}/app/blobs/uploads/${fx.bSession}`, { headers: bearer(fx.writerToken) }], 404, "BLOB_UPLOAD_UNKNOWN"],
  ["cancel B's upload session through A", () => [`/v2/${fx.a}/app/blobs/uploads/${fx.bSession}`, { method: "DELETE", headers: bearer(fx.aAdminToken) }], 404, "BLOB_UPLOAD_UNKNOWN"],
  ["the catalog", () => ["/v2/_catalog", { headers: bearer(fx.writerToken) }], 401, "UNAUTHORIZED"],
  ["the admin API with a service account", () => ["/admin/v1/namespaces", { headers: { Authorization: basic(fx.writer.username, fx.writer.secret) } }], 403, "forbidden"],
  ["the admin API with a bearer token", () => ["/admin/v1/namespaces", { headers: bearer(fx.writerToken) }], 401, "unauthorized"],
  ["a pull-only token pushes to A", () => [`/v2/${fx.a}/app/blobs/uploads/`, { method: "POST", headers: bearer(fx.readerToken) }], 401, "UNAUTHORIZED"],
  ["a pull-only token deletes in A", () => [`/v2/${fx.a}/app/manifests/${fx.aImage.digest}`, { method: "DELETE", headers: bearer(fx.readerToken) }], 401, "UNAUTHORIZED"],
];
for (const [label, request, status, code] of crossTenant) add({ name: `cross-tenant: ${label}`, request, status, code: code || undefined });
// Distribution spec: a mount the registry cannot make (no pull on `from`) answers an ordinary upload session
// (202), never the blob (201), and says nothing about `from`.
add({
  name: "cross-tenant: mount from B into A",
  request: () => [`/v2/${fx.a}/app/blobs/uploads/?mount=${fx.bOnlyBlob}&from=${fx.b}/app`, { method: "POST", headers: bearer(fx.writerToken) }],
  status: 202,
  check: (response) => {
    expect(response.headers.get("Docker-Content-Digest")).toBeNull();
    expect(response.headers.get("Location")).toMatch(new RegExp(`^/v2/${fx.a}/app/blobs/uploads/`));
  },
});

// 5. Upload abuse in A (the writer may push there).
const uploads = (suffix: string, init: RequestInit = {}): [string, RequestInit] => [
  `/v2/${fx.a}/app/blobs/uploads/${suffix}`,
  { ...init, headers: { ...bearer(fx.writerToken), ...(init.headers as Record<string, string>) } },
];
const uploadAbuse: [string, () => [string, RequestInit], number, string][] = [
  ["monolithic digest mismatch", () => uploads(`?digest=sha256:${hex("2")}`, { method: "POST", body: "some bytes" }), 400, "DIGEST_INVALID"],
  ["monolithic with Content-Length shorter than the body", () => uploads(`?digest=sha256:${hex("2")}`, { method: "POST", body: "some bytes", headers: { "Content-Range": "0-3" } }), 400, "SIZE_INVALID"],
  ["md5 digest", () => uploads(`?digest=md5:${"a".repeat(32)}`, { method: "POST", body: "x" }), 400, "DIGEST_INVALID"],
  ["sha1 digest", () => uploads(`?digest=sha1:${"a".repeat(40)}`, { method: "POST", body: "x" }), 400, "DIGEST_INVALID"],
  ["sha384 digest", () => uploads(`?digest=sha384:${"a".repeat(96)}`, { method: "POST", body: "x" }), 400, "DIGEST_INVALID"],
  ["sha512 upload", () => uploads(`?digest=sha512:${"a".repeat(128)}`, { method: "POST", body: "x" }), 400, "DIGEST_INVALID"],
  ["uppercase hex", () => uploads(`?digest=sha256:${"A".repeat(64)}`, { method: "POST", body: "x" }), 400, "DIGEST_INVALID"],
  ["short hex", () => uploads(`?digest=sha256:${"a".repeat(63)}`, { method: "POST", body: "x" }), 400, "DIGEST_INVALID"],
  ["empty digest", () => uploads("?digest=", { method: "POST", body: "x" }), 400, "DIGEST_INVALID"],
  ["digest without algorithm", () => uploads(`?digest=${hex("a")}`, { method: "POST", body: "x" }), 400, "DIGEST_INVALID"],
  ["mount with a bad digest", () => uploads(`?mount=sha256:zz&from=${fx.a}/app`, { method: "POST" }), 400, "DIGEST_INVALID"],
  ["mount from a bad name", () => uploads(`?mount=sha256:${hex("3")}&from=../../etc`, { method: "POST" }), 400, "NAME_INVALID"],
  ["unknown session id", () => uploads(crypto.randomUUID(), { method: "PATCH", body: "x" }), 404, "BLOB_UPLOAD_UNKNOWN"],
  ["malformed session id", () => uploads("not-a-session", { method: "PATCH", body: "x" }), 404, "BLOB_UPLOAD_UNKNOWN"],
  ["path-like session id", () => uploads("..%2F..%2Fblobs", { method: "GET" }), 404, "BLOB_UPLOAD_UNKNOWN"],
  ["very long session id", () => uploads("a".repeat(2000), { method: "GET" }), 404, "BLOB_UPLOAD_UNKNOWN"],
  ["out-of-order chunk", () => uploads(fx.aSession, { method: "PATCH", body: "abc", headers: { "Content-Range": "100-102" } }), 416, "RANGE_INVALID"],
  ["overlapping chunk", () => uploads(fx.aSession, { method: "PATCH", body: "abc", headers: { "Content-Range": "0-2" } }), 416, "RANGE_INVALID"],
  ["inverted range", () => uploads(fx.aSession, { method: "PATCH", body: "abc", headers: { "Content-Range": "12-10" } }), 416, "RANGE_INVALID"],
  ["garbage range", () => uploads(fx.aSession, { method: "PATCH", body: "abc", headers: { "Content-Range": "bytes */*" } }), 416, "RANGE_INVALID"],
  ["range length ≠ Content-Length", () => uploads(fx.aSession, { method: "PATCH", body: "abc", headers: { "Content-Range": "10-19" } }), 400, "SIZE_INVALID"],
  ["PUT without digest", () => uploads(fx.aSession, { method: "PUT" }), 400, "DIGEST_INVALID"],
  ["PUT with a malformed digest", () => uploads(`${fx.aSession}?digest=sha256:nope`, { method: "PUT" }), 400, "DIGEST_INVALID"],
  ["PUT with an out-of-order final chunk", () => uploads(`${fx.aSession}?digest=sha256:${hex("4")}`, { method: "PUT", body: "abc", headers: { "Content-Range": "999-1001" } }), 416, "RANGE_INVALID"],
  ["blob HEAD with a malformed digest", () => [`/v2/${fx.a}/app/blobs/sha256:123`, { method: "GET", headers: bearer(fx.writerToken) }], 400, "DIGEST_INVALID"],
];
for (const [label, request, status, code] of uploadAbuse) add({ name: `upload abuse: ${label}`, request, status, code });

// 6. Manifest abuse.
const manifestPut = (reference: string, body: BodyInit, contentType = OCI_MANIFEST): [string, RequestInit] => [
  `/v2/${fx.a}/app/manifests/${reference}`,
  { method: "PUT", headers: { ...bearer(fx.writerToken), "Content-Type": contentType }, body },
];
const image = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: fx.aImage.configDigest, size: 10 },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: fx.aImage.layerDigest, size: 1024 }],
    ...extra,
  });
const manifestAbuse: [string, () => [string, RequestInit], number, string][] = [
  ["invalid JSON", () => manifestPut(fresh("t"), "{"), 400, "MANIFEST_INVALID"],
  ["empty body", () => manifestPut(fresh("t"), ""), 400, "MANIFEST_INVALID"],
  ["JSON null", () => manifestPut(fresh("t"), "null"), 400, "MANIFEST_INVALID"],
  ["JSON string", () => manifestPut(fresh("t"), '"x"'), 400, "MANIFEST_INVALID"],
  ["not UTF-8", () => manifestPut(fresh("t"), new Uint8Array([0xff, 0xfe, 0x7b])), 400, "MANIFEST_INVALID"],
  ["schemaVersion 1", () => manifestPut(fresh("t"), image({ schemaVersion: 1 })), 400, "MANIFEST_INVALID"],
  ["schemaVersion as a string", () => manifestPut(fresh("t"), image({ schemaVersion: "2" })), 400, "MANIFEST_INVALID"],
  ["wrong media type in the body", () => manifestPut(fresh("t"), image({ mediaType: OCI_INDEX })), 400, "MANIFEST_INVALID"],
  ["text/plain", () => manifestPut(fresh("t"), image({ mediaType: undefined }), "text/plain"), 400, "MANIFEST_INVALID"],
  ["Docker schema 1", () => manifestPut(fresh("t"), image({ mediaType: undefined }), "application/vnd.docker.distribution.manifest.v1+prettyjws"), 400, "MANIFEST_INVALID"],
  ["config missing", () => manifestPut(fresh("t"), image({ config: undefined })), 400, "MANIFEST_INVALID"],
  ["layers not an array", () => manifestPut(fresh("t"), image({ layers: "all" })), 400, "MANIFEST_INVALID"],
  ["descriptor without size", () => manifestPut(fresh("t"), image({ layers: [{ mediaType: "x", digest: fx.aImage.layerDigest }] })), 400, "MANIFEST_INVALID"],
  ["fractional size", () => manifestPut(fresh("t"), image({ layers: [{ mediaType: "x", digest: fx.aImage.layerDigest, size: 1.5 }] })), 400, "MANIFEST_INVALID"],
  ["a layer not in the repository", () => manifestPut(fresh("t"), image({ layers: [{ mediaType: "x", digest: `sha256:${hex("5")}`, size: 1 }] })), 400, "MANIFEST_BLOB_UNKNOWN"],
  ["a layer of another tenant", () => manifestPut(fresh("t"), image({ layers: [{ mediaType: "x", digest: fx.bOnlyBlob, size: 1 }] })), 400, "MANIFEST_BLOB_UNKNOWN"],
  ["digest reference ≠ body", () => manifestPut(`sha256:${hex("6")}`, image()), 400, "DIGEST_INVALID"],
  ["sha512 reference ≠ body", () => manifestPut(`sha512:${"7".repeat(128)}`, image()), 400, "DIGEST_INVALID"],
  ["over 4 MiB", () => manifestPut(fresh("t"), image({ annotations: { pad: "x".repeat(4 * 1024 * 1024 + 1) } })), 413, "MANIFEST_INVALID"],
  ["subject that is not a descriptor", () => manifestPut(fresh("t"), image({ subject: "sha256:x" })), 400, "MANIFEST_INVALID"],
  ["index with unknown children", () => manifestPut(fresh("t"), JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: `sha256:${hex("8")}`, size: 1 }] }), OCI_INDEX), 400, "MANIFEST_BLOB_UNKNOWN"],
  [
    "huge index (20,000 children: over the reference limit)",
    () =>
      manifestPut(
        fresh("t"),
        JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: Array.from({ length: 20_000 }, (_, i) => ({ mediaType: OCI_MANIFEST, digest: `sha256:${i.toString(16).padStart(64, "0")}`, size: 1 })) }),
        OCI_INDEX,
      ),
    400,
    "MANIFEST_INVALID",
  ],
  [
    "index at the reference limit, all unknown",
    () =>
      manifestPut(
        fresh("t"),
        JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: Array.from({ length: 1000 }, (_, i) => ({ mediaType: OCI_MANIFEST, digest: `sha256:${i.toString(16).padStart(64, "0")}`, size: 1 })) }),
        OCI_INDEX,
      ),
    400,
    "MANIFEST_BLOB_UNKNOWN",
  ],
  ["index with a blob as child", () => manifestPut(fresh("t"), JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: fx.aImage.layerDigest, size: 1 }] }), OCI_INDEX), 400, "MANIFEST_BLOB_UNKNOWN"],
  ["index manifests not an array", () => manifestPut(fresh("t"), JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: null }), OCI_INDEX), 400, "MANIFEST_INVALID"],
  ["annotations of numbers", () => manifestPut(fresh("t"), image({ annotations: { a: 1 } })), 400, "MANIFEST_INVALID"],
];
for (const [label, request, status, code] of manifestAbuse) add({ name: `manifest abuse: ${label}`, request, status, code });

// 7. Invalid names, tags and digests on every /v2/ route.
const badNames = ["UPPER/app", "a//b", "a/.hidden", "a_-b/c", "a%2Fb", "-a/b", "a/b-", `a/${"b".repeat(300)}`, "a/b%00"];
const routes: [string, (name: string) => [string, RequestInit]][] = [
  ["manifest GET", (name) => [`/v2/${name}/manifests/v1`, {}]],
  ["blob HEAD", (name) => [`/v2/${name}/blobs/sha256:${hex("a")}`, { method: "HEAD" }]],
  ["upload POST", (name) => [`/v2/${name}/blobs/uploads/`, { method: "POST" }]],
  ["tags list", (name) => [`/v2/${name}/tags/list`, {}]],
  ["referrers", (name) => [`/v2/${name}/referrers/sha256:${hex("a")}`, {}]],
];
for (const name of badNames) {
  for (const [label, build] of routes) {
    add({ name: `name ${JSON.stringify(name.slice(0, 30))}: ${label}`, request: () => build(name), status: 400, code: label === "blob HEAD" ? undefined : "NAME_INVALID" });
  }
}
// A reference that is neither a tag nor a digest cannot exist: GET/DELETE answer 404; a PUT under it is a 400.
const badReferences: [string, string, number, string][] = [
  ["GET", "-tag", 404, "MANIFEST_UNKNOWN"],
  ["GET", ".tag", 404, "MANIFEST_UNKNOWN"],
  ["GET", "t".repeat(129), 404, "MANIFEST_UNKNOWN"],
  ["DELETE", "-tag", 404, "MANIFEST_UNKNOWN"],
  ["GET", "sha256:short", 404, "MANIFEST_UNKNOWN"],
  ["GET", `md5:${"a".repeat(32)}`, 404, "MANIFEST_UNKNOWN"],
  ["DELETE", "sha256:", 404, "MANIFEST_UNKNOWN"],
];
for (const [method, reference, status, code] of badReferences) {
  add({ name: `reference ${method} ${reference.slice(0, 20)}`, request: () => [`/v2/${fx.a}/app/manifests/${reference}`, { method, headers: bearer(fx.aAdminToken) }], status, code });
}
add({ name: "reference PUT -tag", request: () => manifestPut("-tag", image()), status: 400 });
add({ name: "referrers of a malformed digest", request: () => [`/v2/${fx.a}/app/referrers/sha256:nope`, { headers: bearer(fx.writerToken) }], status: 400, code: "DIGEST_INVALID" });
add({ name: "blob DELETE of a malformed digest", request: () => [`/v2/${fx.a}/app/blobs/sha256:Z`, { method: "DELETE", headers: bearer(fx.aAdminToken) }], status: 400, code: "DIGEST_INVALID" });
add({ name: "blob DELETE with a push-only token", request: () => [`/v2/${fx.a}/app/blobs/${fx.aImage.layerDigest}`, { method: "DELETE", headers: bearer(fx.writerToken) }], status: 401, code: "UNAUTHORIZED" });
add({ name: "tags list with n=-1", request: () => [`/v2/${fx.a}/app/tags/list?n=-1`, { headers: bearer(fx.writerToken) }], status: 400, code: "PAGINATION_NUMBER_INVALID" });
add({ name: "tags list with n=1e9999", request: () => [`/v2/${fx.a}/app/tags/list?n=1e9999`, { headers: bearer(fx.writerToken) }], status: 400, code: "PAGINATION_NUMBER_INVALID" });

// 8. Oversized headers, query strings and bodies on every endpoint.
const surfaces: [string, string, boolean][] = [
  ["token", "/token", false],
  ["JWKS", "/.well-known/jwks.json", false],
  ["admin", "/admin/v1/namespaces", false],
  ["account", "/account/v1/refresh-tokens", false],
  ["/v2/", "/v2/", true],
  ["manifest", "/v2/a/b/manifests/v1", true],
  ["blob data", "/blob-data/blobs/x", false],
];
for (const [label, path, isV2] of surfaces) {
  add({ name: `oversized headers: ${label}`, request: () => [path, { headers: { "X-Padding": "x".repeat(40_000) } }], status: 431, code: isV2 ? "UNSUPPORTED" : "invalid_request" });
  add({ name: `oversized query: ${label}`, request: () => [`${path}?q=${"x".repeat(20_000)}`, {}], status: 414, code: isV2 ? "UNSUPPORTED" : "invalid_request" });
}
const form = (size: number): RequestInit => ({
  method: "POST",
  headers: { "Content-Type": "application/x-www-form-urlencoded" },
  body: `grant_type=password&padding=${"x".repeat(size)}`,
});
add({ name: "oversized body: token POST", request: () => ["/token", form(20_000)], status: 413, code: "invalid_request" });
add({ name: "oversized body: admin POST", request: () => ["/admin/v1/namespaces", { method: "POST", headers: { ...adminJson() }, body: JSON.stringify({ name: "x".repeat(70_000) }) }], status: 413, code: "invalid_request" });
add({ name: "oversized body: account password", request: () => ["/account/v1/password", { method: "PUT", headers: { ...adminJson() }, body: "x".repeat(70_000) }], status: [403, 413] });
add({ name: "oversized body: manifest PUT", request: () => manifestPut(fresh("big"), "x".repeat(5 * 1024 * 1024)), status: 413, code: "MANIFEST_INVALID" });
add({ name: "oversized body: token POST scopes", request: () => ["/token", { ...form(0), body: `grant_type=password&scope=${"repository:a/b:pull%20".repeat(2000)}` }], status: 413, code: "invalid_request" });

// 9. Wrong methods and unknown paths.
const methods: [string, string, RequestInit, number, string | undefined][] = [
  ["PUT /token", "/token", { method: "PUT" }, 405, "method_not_allowed"],
  ["DELETE /token", "/token", { method: "DELETE" }, 405, "method_not_allowed"],
  ["OPTIONS /v2/", "/v2/", { method: "OPTIONS" }, 404, "UNSUPPORTED"],
  ["POST /v2/x/y/tags/list", "/v2/x/y/tags/list", { method: "POST" }, 404, "UNSUPPORTED"],
  ["PATCH a manifest", "/v2/x/y/manifests/v1", { method: "PATCH" }, 404, "UNSUPPORTED"],
  ["unknown /v2 path", "/v2/x/y/unknown", {}, 404, "UNSUPPORTED"],
  ["POST blob data", "/blob-data/blobs/x", { method: "POST" }, 405, "method_not_allowed"],
  ["unsigned blob data", "/blob-data/blobs/x", {}, 403, "forbidden"],
  ["token POST with a JSON body", "/token", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" }, 400, "invalid_request"],
  ["token POST, unknown grant", "/token", { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: "grant_type=implicit" }, 400, "unsupported_grant_type"],
  ["token GET, unknown service", `/token?service=evil`, {}, 400, "invalid_request"],
];
for (const [label, path, init, status, code] of methods) add({ name: `method/path: ${label}`, request: () => [path, init], status, code });

// 10. Issue 10: cross-site requests, unknown fields, oversized usernames, bad cursors, costly token requests.
const crossSite: [string, () => [string, RequestInit], number, string][] = [
  ["form text/plain from another site creates an admin", () => ["/admin/v1/users", { method: "POST", headers: { Authorization: adminJson().Authorization, "Content-Type": "text/plain", Origin: "https://evil.example" }, body: JSON.stringify({ username: fresh("evil"), password: "attacker password 1", registryAdmin: true }) }], 403, "forbidden"],
  ["form text/plain without Origin", () => ["/admin/v1/users", { method: "POST", headers: { Authorization: adminJson().Authorization, "Content-Type": "text/plain" }, body: JSON.stringify({ username: fresh("evil"), password: "attacker password 1" }) }], 415, "unsupported_media_type"],
  ["form-encoded namespace", () => ["/admin/v1/namespaces", { method: "POST", headers: { Authorization: adminJson().Authorization, "Content-Type": "application/x-www-form-urlencoded" }, body: "name=evil" }], 415, "unsupported_media_type"],
  ["Sec-Fetch-Site cross-site", () => ["/admin/v1/namespaces", { method: "POST", headers: { ...adminJson(), "Sec-Fetch-Site": "cross-site" }, body: JSON.stringify({ name: fresh("evil") }) }], 403, "forbidden"],
  ["Sec-Fetch-Site same-site", () => ["/admin/v1/namespaces", { headers: { ...adminJson(), "Sec-Fetch-Site": "same-site" } }], 403, "forbidden"],
  ["Origin null on a delete", () => [`/admin/v1/namespaces/${fx.b}`, { method: "DELETE", headers: { ...adminJson(), Origin: "null" } }], 403, "forbidden"],
  ["account API from another origin", () => ["/account/v1/password", { method: "PUT", headers: { ...adminJson(), Origin: "https://evil.example" }, body: JSON.stringify({ password: "attacker password 1" }) }], 403, "forbidden"],
];
for (const [label, request, status, code] of crossSite) add({ name: `cross-site: ${label}`, request, status, code });

const junkField = "\u0001".repeat(290);
const unknownFields: [string, () => [string, RequestInit]][] = [
  ["user create with 290 × U+0001", () => ["/admin/v1/users", { method: "POST", headers: adminJson(), body: JSON.stringify({ username: fresh("u"), password: "long enough password", registryAdmin: true, [junkField]: 1 }) }]],
  ["namespace visibility with an extra field", () => [`/admin/v1/namespaces/${fx.a}`, { method: "PATCH", headers: adminJson(), body: JSON.stringify({ public: true, [junkField]: 1 }) }]],
  ["service-account update with an extra field", () => [`/admin/v1/service-accounts/${encodeURIComponent(fx.reader.username)}`, { method: "PATCH", headers: adminJson(), body: JSON.stringify({ disabled: true, description: "x", [junkField]: 1 }) }]],
  ["service-account rotate with an extra field", () => [`/admin/v1/service-accounts/${encodeURIComponent(fx.reader.username)}/rotate`, { method: "POST", headers: adminJson(), body: JSON.stringify({ overlapSeconds: 0, token: "mine" }) }]],
  ["grant with an extra field", () => [`/admin/v1/service-accounts/${encodeURIComponent(fx.reader.username)}/grants`, { method: "PUT", headers: adminJson(), body: JSON.stringify({ namespace: fx.b, role: "admin", also: "x" }) }]],
  ["service-account create with a non-object grant", () => ["/admin/v1/service-accounts", { method: "POST", headers: adminJson(), body: JSON.stringify({ namespace: fx.a, name: fresh("sa"), grants: ["admin"] }) }]],
  ["audit query with an unknown parameter", () => ["/admin/v1/audit?actor=admin&drop=1", { headers: adminJson() }]],
  ["audit query with a forged cursor", () => [`/admin/v1/audit?cursor=${btoa(JSON.stringify({ s: "auth", d: 1 }))}`, { headers: adminJson() }]],
  ["audit query with a bad action", () => ["/admin/v1/audit?action=%00", { headers: adminJson() }]],
];
for (const [label, request] of unknownFields) add({ name: `unknown fields: ${label}`, request, status: 400, code: "invalid_request" });

const longNames: [string, string][] = [
  ["508 bytes", "n".repeat(508)],
  ["4,096 bytes", "m".repeat(4096)],
  ["multibyte and controls", "é\u0001€\u202e".repeat(500)],
  ["service-account form with a long name", `12345678|${"k".repeat(1000)}`],
];
for (const [label, username] of longNames) {
  add({ name: `long username ${label}: token GET`, request: () => [`/token?service=${SERVICE}`, { headers: { Authorization: basic(username, "secret") } }], status: 401, code: "invalid_grant" });
  add({
    name: `long username ${label}: token POST`,
    request: () => ["/token", { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ grant_type: "password", username, password: "secret", service: SERVICE }).toString() }],
    status: 401,
    code: "invalid_grant",
  });
  add({ name: `long username ${label}: admin API`, request: () => ["/admin/v1/namespaces", { headers: { Authorization: basic(username, "secret") } }], status: 401, code: "unauthorized" });
  add({ name: `long username ${label}: account API`, request: () => ["/account/v1/refresh-tokens", { headers: { Authorization: basic(username, "secret") } }], status: 401, code: "unauthorized" });
}
add({ name: "long path names: user lookup", request: () => [`/admin/v1/users/${"u".repeat(4000)}`, { headers: adminJson() }], status: 404, code: "not_found" });
add({ name: "long path names: refresh-token revoke", request: () => [`/admin/v1/users/nobody/refresh-tokens/${"r".repeat(4000)}`, { method: "DELETE", headers: adminJson() }], status: 404, code: "not_found" });
add({ name: "long path names: own refresh-token revoke", request: () => [`/account/v1/refresh-tokens/${"r".repeat(4000)}`, { method: "DELETE", headers: adminJson() }], status: 403, code: "forbidden" });
add({ name: "long path names: service account", request: () => [`/admin/v1/service-accounts/${encodeURIComponent(`12345678|${"s".repeat(4000)}`)}`, { headers: adminJson() }], status: 404, code: "not_found" });
add({
  name: "refresh token with a long id",
  request: () => ["/token", { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: `${"i".repeat(150)}.x`, service: SERVICE }).toString() }],
  status: 401,
  code: "invalid_grant",
});
add({
  name: "anonymous token request for 64 distinct repositories",
  request: () => [`/token?service=${SERVICE}&${Array.from({ length: 64 }, (_, i) => `scope=repository:${fx.b}/r${i}:pull`).join("&")}`, {}],
  status: 400,
  code: "invalid_scope",
});
add({
  name: "token request for 17 repositories the caller does not hold",
  request: () => [`/token?service=${SERVICE}&${Array.from({ length: 17 }, (_, i) => `scope=repository:${fx.b}/r${i}:pull`).join("&")}`, { headers: { Authorization: basic(fx.reader.username, fx.reader.secret) } }],
  status: 400,
  code: "invalid_scope",
});

// ---------------------------------------------------------------------------------------------------------
let fiveHundreds = 0;
let traces = 0;

beforeAll(async () => {
  fx.a = (await createNamespace()).name;
  fx.b = (await createNamespace()).name;
  const writer = await createServiceAccount(fx.a, "writer", [{ namespace: fx.a, role: "write" }]);
  const reader = await createServiceAccount(fx.a, "reader", [{ namespace: fx.a, role: "read" }]);
  fx.writer = { username: writer.username, secret: writer.token };
  fx.reader = { username: reader.username, secret: reader.token };
  fx.writerToken = await tokenFor(fx.writer, [`repository:${fx.a}/app:pull,push`]);
  fx.readerToken = await tokenFor(fx.reader, [`repository:${fx.a}/app:pull`]);
  const bToken = await adminToken(`${fx.b}/app`);
  const aToken = await adminToken(`${fx.a}/app`);
  fx.aAdminToken = aToken;
  fx.bImage = await pushImage(`${fx.b}/app`, "v1", bToken);
  fx.bOnlyBlob = await pushBlob(`${fx.b}/app`, randomBytes(333), bToken);
  fx.aImage = await pushImage(`${fx.a}/app`, "v1", aToken);
  const start = (repository: string, t: string) => call(`/v2/${repository}/blobs/uploads/`, { method: "POST", headers: bearer(t) });
  fx.bSession = (await start(`${fx.b}/app`, bToken)).headers.get("Docker-Upload-UUID")!;
  const aSession = (await start(`${fx.a}/app`, aToken)).headers.get("Location")!;
  await call(aSession, { method: "PATCH", headers: bearer(aToken), body: "0123456789" });
  fx.aSession = aSession.split("/").at(-1)!;
  const { keys } = JSON.parse(env.SIGNING_KEYS) as { keys: JWK[] };
  fx.registryKid = await calculateJwkThumbprint({ kty: keys[0]!.kty, crv: keys[0]!.crv, x: keys[0]!.x, y: keys[0]!.y });
  fx.registryKey = (await importJWK(keys[0]!, "ES256")) as CryptoKey;
});

afterAll(() => {
  console.log(`hostile-input corpus: ${cases.length} cases, ${fiveHundreds} 5xx, ${traces} stored traces`);
});

describe("hostile-input corpus", () => {
  it("has at least 200 cases", () => {
    expect(cases.length).toBeGreaterThanOrEqual(200);
  });

  it.each(cases.map((c) => [c.name, c] as const))("%s", { timeout: 30_000 }, async (_name, c) => {
    const before = await storageSnapshot();
    const [path, init] = await c.request();
    const response = await call(path, init);
    const body = await response.text();
    if (response.status >= 500) fiveHundreds += 1;
    const statuses = [c.status].flat();
    expect(statuses, `${response.status}: ${body.slice(0, 300)}`).toContain(response.status);
    if (body && (response.headers.get("Content-Type") ?? "").includes("json")) {
      expect(response.headers.get("X-Content-Type-Options")).toBe("nosniff");
      const parsed = JSON.parse(body) as { errors?: { code: string }[]; error?: string | { code: string } };
      if (c.code) {
        const code = parsed.errors?.[0]?.code ?? (typeof parsed.error === "string" ? parsed.error : parsed.error?.code);
        expect(code, body.slice(0, 300)).toBe(c.code);
      }
    }
    // No internals: stack frames, file paths, exception class names.
    expect(body).not.toMatch(/\bat .+\.(ts|js):\d+|\/src\/|TypeError|RangeError|SyntaxError/);
    await c.check?.(response, body);
    const after = await storageSnapshot();
    if (JSON.stringify(after) !== JSON.stringify(before)) traces += 1;
    expect(after).toEqual(before);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Workload identity federation (SECURITY.md "Workload identity federation"): OIDC tokens presented for a service
// account with a trust policy. A refusal is the ordinary 401 (the rule goes to the audit log, which the storage
// snapshot leaves aside); a malformed exchange is 400; a hostile policy body is 400 and stores nothing. The issuer
// is the local one on 127.0.0.1 (test/support/oidc-issuer.mjs); its keys are made in the beforeAll below.
const fed = {} as {
  account: string;
  issuer: string;
  sign: (claims: Record<string, unknown>, options?: { kid?: string; header?: Record<string, unknown> }) => Promise<string>;
  claims: (overrides?: Record<string, unknown>) => Record<string, unknown>;
  publicJwk: JWK;
  kid: string;
  stranger: (claims: Record<string, unknown>) => Promise<string>;
  /** A token accepted once already; its policy allows a single use. */
  used: string;
};
const FED_AUDIENCE = "https://registry.test";
const fedGet = (secret: () => Promise<string> | string, username = () => fed.account) => async (): Promise<[string, RequestInit]> => [
  `/token?service=${SERVICE}`,
  { headers: { Authorization: basic(username(), await secret()) } },
];
const exchange = (fields: () => Promise<Record<string, string>> | Record<string, string>) => async (): Promise<[string, RequestInit]> => [
  "/token",
  {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ service: SERVICE, grant_type: "urn:ietf:params:oauth:grant-type:token-exchange", ...(await fields()) }).toString(),
  },
];
const fedNow = () => Math.floor(Date.now() / 1000);
const federationRefusals: [string, () => Promise<string> | string][] = [
  ["alg none", () => `${b64url({ alg: "none", typ: "JWT", kid: fed.kid })}.${b64url(fed.claims())}.`],
  ["alg none with a signature", () => `${b64url({ alg: "none", kid: fed.kid })}.${b64url(fed.claims())}.c2ln`],
  ["HS256 keyed with the JWKS's JSON", () => new SignJWT(fed.claims()).setProtectedHeader({ alg: "HS256", kid: fed.kid }).sign(new TextEncoder().encode(JSON.stringify(fed.publicJwk)))],
  ["HS256 keyed with the modulus", () => new SignJWT(fed.claims()).setProtectedHeader({ alg: "HS256", kid: fed.kid }).sign(new TextEncoder().encode(fed.publicJwk.n!))],
  ["PS256", async () => new SignJWT(fed.claims()).setProtectedHeader({ alg: "PS256", kid: fed.kid }).sign((await generateKeyPair("PS256")).privateKey)],
  ["EdDSA", async () => new SignJWT(fed.claims()).setProtectedHeader({ alg: "EdDSA", kid: fed.kid }).sign((await generateKeyPair("EdDSA")).privateKey)],
  ["unknown kid", () => fed.sign(fed.claims(), { kid: "no-such-kid" })],
  ["kid of 1,000 characters", () => fed.sign(fed.claims(), { kid: "k".repeat(1000) })],
  ["jku header naming the signer's own key set", async () => new SignJWT(fed.claims()).setProtectedHeader({ alg: "RS256", kid: fed.kid, jku: "https://attacker.example/jwks.json" }).sign((await generateKeyPair("RS256")).privateKey)],
  ["crit header naming an unknown extension", () => fed.sign(fed.claims()).then((jwt) => `${b64url({ alg: "RS256", kid: fed.kid, crit: ["x-ext"], "x-ext": 1 })}.${jwt.split(".")[1]}.${jwt.split(".")[2]}`)],
  ["another issuer", () => fed.stranger(fed.claims({ iss: "https://token.actions.githubusercontent.com" }))],
  ["the trusted issuer named, another issuer's key", () => fed.stranger(fed.claims())],
  ["iss as an object", () => fed.sign(fed.claims({ iss: { url: fed.issuer } }))],
  ["iss with a trailing slash", () => fed.sign(fed.claims({ iss: `${fed.issuer}/` }))],
  ["another audience", () => fed.sign(fed.claims({ aud: "https://elsewhere.example" }))],
  ["aud as a number", () => fed.sign(fed.claims({ aud: 42 }))],
  ["aud array of 300", () => fed.sign(fed.claims({ aud: Array.from({ length: 300 }, (_, i) => `a${i}`) }))],
  ["sub as an array", () => fed.sign(fed.claims({ sub: ["repo:octo-org/octo-repo:ref:refs/heads/main"] }))],
  ["another subject", () => fed.sign(fed.claims({ sub: "repo:octo-org/octo-repo:ref:refs/heads/evil" }))],
  ["subject glob metacharacters", () => fed.sign(fed.claims({ sub: "repo:*:ref:refs/heads/*" }))],
  ["expired", () => fed.sign(fed.claims({ iat: fedNow() - 600, exp: fedNow() - 120 }))],
  ["exp as a string", () => fed.sign(fed.claims({ exp: String(fedNow() + 300) }))],
  ["not yet valid", () => fed.sign(fed.claims({ nbf: fedNow() + 600, exp: fedNow() + 900 }))],
  ["issued in the future", () => fed.sign(fed.claims({ iat: fedNow() + 3600, exp: fedNow() + 7200 }))],
  ["too old though unexpired", () => fed.sign(fed.claims({ iat: fedNow() - 7200, exp: fedNow() + 300 }))],
  ["replayed past its window", () => fed.used],
  ["truncated", () => fed.sign(fed.claims()).then((jwt) => jwt.slice(0, -10))],
  ["payload not JSON", () => `${b64url({ alg: "RS256", kid: fed.kid })}.${btoa("not json").replace(/=+$/, "")}.AAAA`],
  ["payload a JSON array", () => `${b64url({ alg: "RS256", kid: fed.kid })}.${b64url([1, 2])}.AAAA`],
  ["header with alg only, garbage parts", () => `${b64url({ alg: "RS256" })}.!!!.???`],
  ["four parts", () => fed.sign(fed.claims()).then((jwt) => `${jwt}.AAAA`)],
];
for (const [label, secret] of federationRefusals) {
  add({ name: `federation, Basic: ${label}`, request: fedGet(secret), status: 401, code: "invalid_grant" });
}
for (const [label, secret] of federationRefusals.filter(([label]) => /none|HS256|unknown kid|another issuer|another audience|expired|replayed/.test(label))) {
  add({
    name: `federation, password grant: ${label}`,
    request: async () => ["/token", { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ service: SERVICE, grant_type: "password", username: fed.account, password: await secret() }).toString() }],
    status: 401,
    code: "invalid_grant",
  });
  const idTokenType = "urn:ietf:params:oauth:token-type:id_token";
  add({ name: `federation, token exchange: ${label}`, request: exchange(async () => ({ subject_token: await secret(), subject_token_type: idTokenType, account: fed.account })), status: [400, 401] });
}
add({
  name: "federation, password grant: 8 KiB of claims",
  request: async () => ["/token", { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ service: SERVICE, grant_type: "password", username: fed.account, password: await fed.sign(fed.claims({ padding: "p".repeat(8000) })) }).toString() }],
  status: 401,
  code: "invalid_grant",
});
add({ name: "federation: a valid ID token for an unknown account", request: fedGet(() => fed.sign(fed.claims()), () => "12345678|nobody-here"), status: 401, code: "invalid_grant" });
add({ name: "federation: a valid ID token for a web user", request: fedGet(() => fed.sign(fed.claims()), () => "someuser"), status: 401, code: "invalid_grant" });
const exchangeAbuse: [string, () => Promise<Record<string, string>> | Record<string, string>, number, string][] = [
  ["no subject_token", () => ({ subject_token_type: "urn:ietf:params:oauth:token-type:id_token", account: fed.account }), 400, "invalid_request"],
  ["no account", async () => ({ subject_token: await fed.sign(fed.claims()), subject_token_type: "urn:ietf:params:oauth:token-type:id_token" }), 400, "invalid_request"],
  ["a SAML subject type", async () => ({ subject_token: await fed.sign(fed.claims()), subject_token_type: "urn:ietf:params:oauth:token-type:saml2", account: fed.account }), 400, "invalid_request"],
  ["an account outside the grammar", async () => ({ subject_token: await fed.sign(fed.claims()), subject_token_type: "urn:ietf:params:oauth:token-type:jwt", account: `x|${"y".repeat(3000)}` }), 400, "invalid_request"],
  ["a subject_token that is not a JWT", () => ({ subject_token: "opaque-token", subject_token_type: "urn:ietf:params:oauth:token-type:jwt", account: fed.account }), 400, "invalid_request"],
  ["an actor token", async () => ({ subject_token: await fed.sign(fed.claims()), subject_token_type: "urn:ietf:params:oauth:token-type:jwt", account: fed.account, actor_token: "x" }), 400, "invalid_request"],
  ["a valid ID token for an unknown account", async () => ({ subject_token: await fed.sign(fed.claims()), subject_token_type: "urn:ietf:params:oauth:token-type:jwt", account: "12345678|nobody-here" }), 401, "invalid_grant"],
];
for (const [label, fields, status, code] of exchangeAbuse) add({ name: `federation, token exchange: ${label}`, request: exchange(fields), status, code });
const policyPath = () => `/admin/v1/service-accounts/${encodeURIComponent(fed.account)}/trust-policies`;
const policyBodies: [string, () => unknown][] = [
  ["javascript: issuer", () => ({ issuer: "javascript:alert(1)", audiences: ["a"], subject: "s" })],
  ["issuer with credentials", () => ({ issuer: "https://user:pw@issuer.example", audiences: ["a"], subject: "s" })],
  ["http issuer off loopback", () => ({ issuer: "http://169.254.169.254/latest", audiences: ["a"], subject: "s" })],
  ["file issuer", () => ({ issuer: "file:///etc/passwd", audiences: ["a"], subject: "s" })],
  ["issuer of 10,000 characters", () => ({ issuer: `https://${"i".repeat(10000)}.example`, audiences: ["a"], subject: "s" })],
  ["audiences not an array", () => ({ issuer: "https://issuer.example", audiences: "a", subject: "s" })],
  ["1,000 audiences", () => ({ issuer: "https://issuer.example", audiences: Array.from({ length: 1000 }, (_, i) => `a${i}`), subject: "s" })],
  ["subject of only wildcards", () => ({ issuer: "https://issuer.example", audiences: ["a"], subject: "***" })],
  ["subject missing", () => ({ issuer: "https://issuer.example", audiences: ["a"] })],
  ["500 claim rules", () => ({ issuer: "https://issuer.example", audiences: ["a"], subject: "s", claims: Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`c${i}`, "v"])) })],
  ["nested claim rule", () => ({ issuer: "https://issuer.example", audiences: ["a"], subject: "s", claims: { a: { b: "c" } } })],
  ["claims an array", () => ({ issuer: "https://issuer.example", audiences: ["a"], subject: "s", claims: ["x"] })],
  ["algorithm none", () => ({ issuer: "https://issuer.example", audiences: ["a"], subject: "s", algorithms: ["none"] })],
  ["algorithm HS256", () => ({ issuer: "https://issuer.example", audiences: ["a"], subject: "s", algorithms: ["RS256", "HS256"] })],
  ["negative token age", () => ({ issuer: "https://issuer.example", audiences: ["a"], subject: "s", maxTokenAgeSeconds: -1 })],
  ["fractional replay window", () => ({ issuer: "https://issuer.example", audiences: ["a"], subject: "s", replayWindowSeconds: 1.5 })],
  ["an id chosen by the caller", () => ({ id: "mine", issuer: "https://issuer.example", audiences: ["a"], subject: "s" })],
  ["grants smuggled in", () => ({ issuer: "https://issuer.example", audiences: ["a"], subject: "s", grants: [{ namespace: "x", role: "admin" }] })],
  ["a JSON array body", () => [{ issuer: "https://issuer.example", audiences: ["a"], subject: "s" }]],
];
for (const [label, body] of policyBodies) {
  add({ name: `trust policy body: ${label}`, request: () => [policyPath(), { method: "PUT", headers: adminJson(), body: JSON.stringify(body()) }], status: 400, code: "invalid_request" });
}
add({ name: "trust policy: a form body", request: () => [policyPath(), { method: "PUT", headers: { ...adminJson(), "Content-Type": "application/x-www-form-urlencoded" }, body: "issuer=https://x" }], status: 415, code: "unsupported_media_type" });
add({ name: "trust policy: unknown policy id", request: () => [`${policyPath()}/nope`, { method: "DELETE", headers: adminJson() }], status: 404, code: "not_found" });
add({ name: "trust policy: index out of range", request: () => [`${policyPath()}/99`, { method: "PUT", headers: adminJson(), body: JSON.stringify({ issuer: "https://issuer.example", audiences: ["a"], subject: "s" }) }], status: 404, code: "not_found" });
add({ name: "trust policy: another account's policies without credentials", request: () => [policyPath(), {}], status: 401, code: "unauthorized" });
add({ name: "trust policy: as the account itself (not an administrator)", request: () => [policyPath(), { headers: { Authorization: basic(fx.writer.username, fx.writer.secret) } }], status: 403, code: "forbidden" });
add({ name: "trust policy: unknown account", request: () => ["/admin/v1/service-accounts/12345678%7Cnobody/trust-policies", { headers: adminJson() }], status: 404, code: "not_found" });

beforeAll(async () => {
  const { TestIssuer, githubClaims } = await import("../helpers/oidc");
  const issuer = await TestIssuer.create("RS256");
  const stranger = await TestIssuer.create("RS256");
  const account = await createServiceAccount(fx.a, "federated", [{ namespace: fx.a, role: "write" }]);
  const headers = adminJson();
  const put = (body: unknown) => call(`/admin/v1/service-accounts/${encodeURIComponent(account.username)}/trust-policies`, { method: "PUT", headers, body: JSON.stringify(body) });
  const added = await put({ issuer: issuer.issuer, audiences: [FED_AUDIENCE], subject: "repo:octo-org/octo-repo:ref:refs/heads/main", replayWindowSeconds: 0, maxTokenAgeSeconds: 3600 });
  if (added.status !== 201) throw new Error(`trust policy: ${added.status} ${await added.text()}`);
  Object.assign(fed, {
    account: account.username,
    issuer: issuer.issuer,
    kid: issuer.currentKid,
    publicJwk: issuer.publicJwk(),
    sign: (claims: Record<string, unknown>, options?: { kid?: string; header?: Record<string, unknown> }) => issuer.sign(claims, options),
    claims: (overrides: Record<string, unknown> = {}) => githubClaims(issuer.issuer, FED_AUDIENCE, overrides),
    stranger: (claims: Record<string, unknown>) => stranger.sign({ ...claims }, { kid: issuer.currentKid }),
  });
  // One accepted use, so that its replay is refused; wait until its first-use record is stored (written after
  // the answer), so that no case's storage snapshot sees it appear.
  fed.used = await issuer.sign(githubClaims(issuer.issuer, FED_AUDIENCE));
  const first = await call(`/token?service=${SERVICE}`, { headers: { Authorization: basic(fed.account, fed.used) } });
  if (first.status !== 200) throw new Error(`federated login: ${first.status} ${await first.text()}`);
  for (let i = 0; i < 50 && (await env.REGISTRY_KV.list({ prefix: "oidc-token:" })).keys.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  if ((await env.REGISTRY_KV.list({ prefix: "oidc-token:" })).keys.length === 0) throw new Error("the first use was not recorded");
});
