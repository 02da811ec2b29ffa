/**
 * Protocol defects 9–12 of issue 10, as tables of real requests against workerd: Worker-served blob
 * downloads (RFC 9110 ranges and preconditions), lookups of impossible manifest references, mounts without
 * pull on `from`, and denials that name the missing access.
 */
import { beforeAll, describe, expect, it } from "vitest";
import {
  OCI_MANIFEST,
  adminToken,
  bearer,
  call,
  createNamespace,
  createServiceAccount,
  digestOf,
  expectOciError,
  pushBlob,
  pushImage,
  randomBytes,
  repositoryFixture,
  tokenFor,
} from "../helpers/registry";

let ns: string;
let repo: string;
let token: string;

beforeAll(async () => ({ ns, repo, token } = await repositoryFixture("target")));

// Defect 9 ---------------------------------------------------------------------------------------------

const SIZE = 2048;
const dl = {} as { bytes: Uint8Array; path: string; etag: string; lastModified: string };

/** A signed download path for a fresh 2,048-byte blob, with its validators. */
async function downloadFixture(): Promise<void> {
  dl.bytes = randomBytes(SIZE);
  const digest = await pushBlob(repo, dl.bytes, token);
  const redirect = await call(`/v2/${repo}/blobs/${digest}`, { headers: bearer(token) });
  expect(redirect.status).toBe(307);
  const location = new URL(redirect.headers.get("Location")!);
  dl.path = `${location.pathname}${location.search}`;
  const head = await call(dl.path, { method: "HEAD" });
  expect(head.status).toBe(200);
  dl.etag = head.headers.get("ETag")!;
  // Checked by its own case below, so the other cases fail only for their own reason.
  dl.lastModified = head.headers.get("Last-Modified") ?? "";
  expect(dl.etag).toMatch(/^"[^"]+"$/);
}

const PAST = "Mon, 01 Jan 1990 00:00:00 GMT";
const FUTURE = "Fri, 01 Jan 2100 00:00:00 GMT";

/** Rows named "kept: …" answered correctly before the fix and guard it; every other row failed before. */
interface DownloadCase {
  name: string;
  method?: "GET" | "HEAD";
  headers: () => Record<string, string>;
  status: number;
  /** Content-Range expected (absent when undefined). */
  contentRange?: string;
  /** For 200/206 GETs: the [start, end) of the blob the body must equal. */
  body?: [number, number];
}

const FULL: [number, number] = [0, SIZE];
const downloadCases: DownloadCase[] = [
  // Unsatisfiable ranges: RFC 9110 §14.1.1, §15.5.17.
  { name: "Range bytes=10240- (past the end) → 416 */2048", headers: () => ({ Range: "bytes=10240-" }), status: 416, contentRange: `bytes */${SIZE}` },
  { name: "Range bytes=2048- (first-pos = length) → 416", headers: () => ({ Range: "bytes=2048-" }), status: 416, contentRange: `bytes */${SIZE}` },
  { name: "Range bytes=-0 (empty suffix) → 416", headers: () => ({ Range: "bytes=-0" }), status: 416, contentRange: `bytes */${SIZE}` },
  { name: "Range bytes=99999999999999999999- → 416", headers: () => ({ Range: "bytes=99999999999999999999-" }), status: 416, contentRange: `bytes */${SIZE}` },
  // Invalid ranges are ignored: RFC 9110 §14.2.
  { name: "Range bytes=10-5 (inverted) → 200 full", headers: () => ({ Range: "bytes=10-5" }), status: 200, body: FULL },
  { name: "Range bytes=abc → 200 full", headers: () => ({ Range: "bytes=abc" }), status: 200, body: FULL },
  { name: "Range bytes=- → 200 full", headers: () => ({ Range: "bytes=-" }), status: 200, body: FULL },
  { name: "Range items=0-1 (unknown unit) → 200 full", headers: () => ({ Range: "items=0-1" }), status: 200, body: FULL },
  { name: "Range with two ranges (not supported) → 200 full", headers: () => ({ Range: "bytes=0-1,5-6" }), status: 200, body: FULL },
  { name: "Range bytes=1-2-3 → 200 full", headers: () => ({ Range: "bytes=1-2-3" }), status: 200, body: FULL },
  // Valid single ranges.
  { name: "kept: Range bytes=100-199 → 206", headers: () => ({ Range: "bytes=100-199" }), status: 206, contentRange: `bytes 100-199/${SIZE}`, body: [100, 200] },
  { name: "kept: Range bytes=-100 (suffix) → 206 last 100", headers: () => ({ Range: "bytes=-100" }), status: 206, contentRange: `bytes 1948-2047/${SIZE}`, body: [1948, 2048] },
  { name: "kept: Range bytes=-5000 (suffix longer than the blob) → 206 whole", headers: () => ({ Range: "bytes=-5000" }), status: 206, contentRange: `bytes 0-2047/${SIZE}`, body: FULL },
  { name: "kept: Range bytes=2000-99999 (last-pos clamped) → 206", headers: () => ({ Range: "bytes=2000-99999" }), status: 206, contentRange: `bytes 2000-2047/${SIZE}`, body: [2000, 2048] },
  { name: "kept: Range bytes=2047- → 206 one byte", headers: () => ({ Range: "bytes=2047-" }), status: 206, contentRange: `bytes 2047-2047/${SIZE}`, body: [2047, 2048] },
  { name: "kept: Range BYTES=0-0 (unit is case-insensitive) → 206", headers: () => ({ Range: "BYTES=0-0" }), status: 206, contentRange: `bytes 0-0/${SIZE}`, body: [0, 1] },
  // Preconditions: RFC 9110 §13.1, evaluated in §13.2.2's order, before Range.
  { name: "If-Match other tag → 412", headers: () => ({ "If-Match": '"other"' }), status: 412 },
  { name: "If-Match weak own tag (strong comparison) → 412", headers: () => ({ "If-Match": `W/${dl.etag}` }), status: 412 },
  { name: "kept: If-Match own tag → 200", headers: () => ({ "If-Match": dl.etag }), status: 200, body: FULL },
  { name: "kept: If-Match in a list → 200", headers: () => ({ "If-Match": `"a", ${dl.etag}` }), status: 200, body: FULL },
  { name: "kept: If-Match * → 200", headers: () => ({ "If-Match": "*" }), status: 200, body: FULL },
  { name: "If-Unmodified-Since in the past → 412", headers: () => ({ "If-Unmodified-Since": PAST }), status: 412 },
  { name: "kept: If-Unmodified-Since in the future → 200", headers: () => ({ "If-Unmodified-Since": FUTURE }), status: 200, body: FULL },
  { name: "kept: If-Unmodified-Since ignored with a matching If-Match → 200", headers: () => ({ "If-Match": dl.etag, "If-Unmodified-Since": PAST }), status: 200, body: FULL },
  { name: "If-Match failing wins over Range → 412", headers: () => ({ "If-Match": '"other"', Range: "bytes=0-9" }), status: 412 },
  { name: "kept: If-None-Match own tag → 304", headers: () => ({ "If-None-Match": dl.etag }), status: 304 },
  { name: "kept: If-None-Match weak own tag (weak comparison) → 304", headers: () => ({ "If-None-Match": `W/${dl.etag}` }), status: 304 },
  { name: "kept: If-None-Match * → 304", headers: () => ({ "If-None-Match": "*" }), status: 304 },
  { name: "kept: If-None-Match other tag → 200", headers: () => ({ "If-None-Match": '"other"' }), status: 200, body: FULL },
  { name: "kept: If-None-Match matching with an unsatisfiable Range → 304", headers: () => ({ "If-None-Match": dl.etag, Range: "bytes=10240-" }), status: 304 },
  { name: "kept: If-Modified-Since in the future → 304", headers: () => ({ "If-Modified-Since": FUTURE }), status: 304 },
  { name: "If-Modified-Since = Last-Modified → 304", headers: () => ({ "If-Modified-Since": dl.lastModified }), status: 304 },
  { name: "kept: If-Modified-Since asctime-date in the future → 304", headers: () => ({ "If-Modified-Since": "Fri Jan  1 00:00:00 2100" }), status: 304 },
  { name: "kept: If-Modified-Since in the past → 200", headers: () => ({ "If-Modified-Since": PAST }), status: 200, body: FULL },
  { name: "kept: If-Modified-Since not a date → ignored, 200", headers: () => ({ "If-Modified-Since": "yesterday" }), status: 200, body: FULL },
  { name: "kept: If-Modified-Since ignored with a non-matching If-None-Match → 200", headers: () => ({ "If-None-Match": '"other"', "If-Modified-Since": FUTURE }), status: 200, body: FULL },
  // If-Range: RFC 9110 §13.1.5.
  { name: "kept: If-Range own tag → Range honoured, 206", headers: () => ({ "If-Range": dl.etag, Range: "bytes=0-9" }), status: 206, contentRange: `bytes 0-9/${SIZE}`, body: [0, 10] },
  { name: "If-Range other tag → Range ignored, 200", headers: () => ({ "If-Range": '"other"', Range: "bytes=0-9" }), status: 200, body: FULL },
  { name: "If-Range weak own tag → Range ignored, 200", headers: () => ({ "If-Range": `W/${dl.etag}`, Range: "bytes=0-9" }), status: 200, body: FULL },
  { name: "kept: If-Range = Last-Modified → 206", headers: () => ({ "If-Range": dl.lastModified, Range: "bytes=0-9" }), status: 206, contentRange: `bytes 0-9/${SIZE}`, body: [0, 10] },
  { name: "If-Range older date → Range ignored, 200", headers: () => ({ "If-Range": PAST, Range: "bytes=0-9" }), status: 200, body: FULL },
  { name: "If-Range other tag with an unsatisfiable Range → 200 full", headers: () => ({ "If-Range": '"other"', Range: "bytes=10240-" }), status: 200, body: FULL },
  // HEAD: the same preconditions, no body; Range is defined for GET only (RFC 9110 §14.2).
  { name: "HEAD If-Match other tag → 412", method: "HEAD", headers: () => ({ "If-Match": '"other"' }), status: 412 },
  { name: "HEAD If-Unmodified-Since in the past → 412", method: "HEAD", headers: () => ({ "If-Unmodified-Since": PAST }), status: 412 },
  { name: "HEAD If-None-Match own tag → 304", method: "HEAD", headers: () => ({ "If-None-Match": dl.etag }), status: 304 },
  { name: "HEAD If-Modified-Since in the future → 304", method: "HEAD", headers: () => ({ "If-Modified-Since": FUTURE }), status: 304 },
  { name: "kept: HEAD with a Range → 200, Range ignored", method: "HEAD", headers: () => ({ Range: "bytes=10240-" }), status: 200 },
];

describe("defect 9: Worker-served blob downloads (RFC 9110 ranges and preconditions)", () => {
  beforeAll(downloadFixture);

  it("answers carry Last-Modified, the validator If-Modified-Since and If-Range dates are compared with", async () => {
    const response = await call(dl.path);
    await response.arrayBuffer();
    expect(response.headers.get("Last-Modified")).toMatch(/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
  });

  it.each(downloadCases)("$name", async ({ method = "GET", headers, status, contentRange, body }) => {
    const response = await call(dl.path, { method, headers: headers() });
    const bytes = new Uint8Array(await response.arrayBuffer());
    expect(response.status).toBe(status);
    expect(response.headers.get("Content-Range")).toBe(contentRange ?? null);
    expect(response.headers.get("ETag")).toBe(dl.etag);
    if (method === "HEAD" || body === undefined) {
      expect(bytes.length).toBe(0);
      if (method === "HEAD" && status === 200) expect(response.headers.get("Content-Length")).toBe(String(SIZE));
      return;
    }
    expect(response.headers.get("Content-Length")).toBe(String(body[1] - body[0]));
    expect(bytes).toEqual(dl.bytes.slice(body[0], body[1]));
  });
});

// Defect 10 --------------------------------------------------------------------------------------------

const IMPOSSIBLE_REFERENCES = [".INVALID_MANIFEST_NAME", "-tag", "t".repeat(129), "sha256:zz", "sha256:", `md5:${"a".repeat(32)}`, `sha256:${"A".repeat(64)}`];

describe("defect 10: manifest lookups with an impossible reference", () => {
  const lookups = IMPOSSIBLE_REFERENCES.flatMap((reference) => (["GET", "HEAD", "DELETE"] as const).map((method) => ({ method, reference })));

  it.each(lookups)("$method $reference → 404 MANIFEST_UNKNOWN", async ({ method, reference }) => {
    const response = await call(`/v2/${repo}/manifests/${reference}`, { method, headers: bearer(token) });
    if (method === "HEAD") {
      expect(response.status).toBe(404);
      expect(await response.text()).toBe("");
    } else {
      await expectOciError(response, 404, "MANIFEST_UNKNOWN");
    }
  });

  const pushes: [string, string][] = [
    [".INVALID_MANIFEST_NAME", "MANIFEST_INVALID"],
    ["-tag", "MANIFEST_INVALID"],
    ["sha256:zz", "DIGEST_INVALID"],
    [`md5:${"a".repeat(32)}`, "DIGEST_INVALID"],
  ];
  it.each(pushes)("kept: PUT %s stays 400 %s", async (reference, code) => {
    const response = await call(`/v2/${repo}/manifests/${reference}`, {
      method: "PUT",
      headers: { ...bearer(token), "Content-Type": OCI_MANIFEST },
      body: JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: {}, layers: [] }),
    });
    await expectOciError(response, 400, code);
  });

  it("kept: valid references still resolve: GET by tag and digest → 200", async () => {
    const image = await pushImage(repo, "v1", token);
    for (const reference of ["v1", image.digest]) {
      const response = await call(`/v2/${repo}/manifests/${reference}`, { headers: { ...bearer(token), Accept: OCI_MANIFEST } });
      expect(response.status).toBe(200);
      expect(response.headers.get("Docker-Content-Digest")).toBe(image.digest);
    }
  });
});

// Defect 11 --------------------------------------------------------------------------------------------

describe("defect 11: cross-repository mount without pull on `from`", () => {
  const mx = {} as { victimRepo: string; secretDigest: string; secretBytes: Uint8Array; pushOnly: string; target: string };

  beforeAll(async () => {
    const victim = (await createNamespace()).name;
    mx.victimRepo = `${victim}/private`;
    mx.secretBytes = randomBytes(64);
    mx.secretDigest = await pushBlob(mx.victimRepo, mx.secretBytes, await adminToken(mx.victimRepo));
    mx.target = `${ns}/target`;
    const pusher = await createServiceAccount(ns, "pusher", [{ namespace: ns, role: "write" }]);
    // Asks for pull on the victim too: the token service leaves it out, as the account holds no grant there.
    mx.pushOnly = await tokenFor({ username: pusher.username, secret: pusher.token }, [`repository:${mx.target}:pull,push`, `repository:${mx.victimRepo}:pull`]);
  });

  const mountCases: { name: string; from: () => string; digest: () => string }[] = [
    { name: "the blob exists in `from`", from: () => mx.victimRepo, digest: () => mx.secretDigest },
    { name: "the blob does not exist in `from`", from: () => mx.victimRepo, digest: () => `sha256:${"5".repeat(64)}` },
    { name: "`from` does not exist", from: () => `${mx.victimRepo}x/none`, digest: () => mx.secretDigest },
  ];

  it.each(mountCases)("push-only token, $name → 202 and an ordinary session; nothing mounted", async ({ from, digest }) => {
    const response = await call(`/v2/${mx.target}/blobs/uploads/?mount=${digest()}&from=${from()}`, { method: "POST", headers: bearer(mx.pushOnly) });
    expect(response.status).toBe(202);
    expect(response.headers.get("WWW-Authenticate")).toBeNull();
    expect(response.headers.get("Docker-Content-Digest")).toBeNull();
    expect(response.headers.get("Range")).toBe("0-0");
    expect(response.headers.get("Location")).toMatch(new RegExp(`^/v2/${mx.target}/blobs/uploads/[0-9a-f-]{36}$`));
    const head = await call(`/v2/${mx.target}/blobs/${mx.secretDigest}`, { method: "HEAD", headers: bearer(mx.pushOnly) });
    expect(head.status).toBe(404);
  });

  it("the session a refused mount returns takes the upload: 201 with the client's own bytes", async () => {
    const started = await call(`/v2/${mx.target}/blobs/uploads/?mount=${mx.secretDigest}&from=${mx.victimRepo}`, { method: "POST", headers: bearer(mx.pushOnly) });
    expect(started.status).toBe(202);
    const done = await call(`${started.headers.get("Location")}?digest=${mx.secretDigest}`, {
      method: "PUT",
      headers: { ...bearer(mx.pushOnly), "Content-Type": "application/octet-stream" },
      body: mx.secretBytes,
    });
    expect(done.status).toBe(201);
    expect(done.headers.get("Docker-Content-Digest")).toBe(await digestOf(mx.secretBytes));
  });

  it("kept: with pull on `from` the mount happens: 201", async () => {
    const both = await adminToken(`${ns}/target`, repo);
    const digest = await pushBlob(repo, randomBytes(80), both);
    const response = await call(`/v2/${ns}/target/blobs/uploads/?mount=${digest}&from=${repo}`, { method: "POST", headers: bearer(both) });
    expect(response.status).toBe(201);
    expect(response.headers.get("Docker-Content-Digest")).toBe(digest);
    expect((await call(`/v2/${ns}/target/blobs/${digest}`, { method: "HEAD", headers: bearer(both) })).status).toBe(200);
  });

  it("kept: without push on the target the mount is still refused: 401", async () => {
    const reader = await createServiceAccount(ns, "mountreader", [{ namespace: ns, role: "read" }]);
    const readOnly = await tokenFor({ username: reader.username, secret: reader.token }, [`repository:${mx.target}:pull,push`, `repository:${repo}:pull`]);
    const response = await call(`/v2/${mx.target}/blobs/uploads/?mount=${mx.secretDigest}&from=${repo}`, { method: "POST", headers: bearer(readOnly) });
    await expectOciError(response, 401, "UNAUTHORIZED");
    expect(response.headers.get("WWW-Authenticate")).toContain(`scope="repository:${mx.target}:pull,push",error="insufficient_scope"`);
  });
});

// Defect 12 --------------------------------------------------------------------------------------------

describe("defect 12: denials name the missing access", () => {
  const dx = {} as { writerAll: string; readerPull: string };

  beforeAll(async () => {
    const writer = await createServiceAccount(ns, "denwriter", [{ namespace: ns, role: "write" }]);
    const reader = await createServiceAccount(ns, "denreader", [{ namespace: ns, role: "read" }]);
    dx.writerAll = await tokenFor({ username: writer.username, secret: writer.token }, [`repository:${repo}:*`, "registry:catalog:*"]);
    dx.readerPull = await tokenFor({ username: reader.username, secret: reader.token }, [`repository:${repo}:pull,push`]);
  });

  const denials: { name: string; request: () => [string, RequestInit]; scope: () => string; message: () => string }[] = [
    {
      name: "DELETE a manifest with write but not delete",
      request: () => [`/v2/${repo}/manifests/sha256:${"b".repeat(64)}`, { method: "DELETE", headers: bearer(dx.writerAll) }],
      scope: () => `repository:${repo}:delete`,
      message: () => `access to repository "${repo}" requires "delete"; the token does not grant it`,
    },
    {
      name: "DELETE a blob with write but not delete",
      request: () => [`/v2/${repo}/blobs/sha256:${"c".repeat(64)}`, { method: "DELETE", headers: bearer(dx.writerAll) }],
      scope: () => `repository:${repo}:delete`,
      message: () => `access to repository "${repo}" requires "delete"; the token does not grant it`,
    },
    {
      name: "POST an upload with pull only",
      request: () => [`/v2/${repo}/blobs/uploads/`, { method: "POST", headers: bearer(dx.readerPull) }],
      scope: () => `repository:${repo}:pull,push`,
      message: () => `access to repository "${repo}" requires "push"; the token does not grant it`,
    },
    {
      name: "GET another repository's tags",
      request: () => [`/v2/${ns}/elsewhere/tags/list`, { headers: bearer(dx.readerPull) }],
      scope: () => `repository:${ns}/elsewhere:pull`,
      message: () => `access to repository "${ns}/elsewhere" requires "pull"; the token does not grant it`,
    },
    {
      name: "POST an upload with a token for another repository",
      request: () => [`/v2/${ns}/elsewhere/blobs/uploads/`, { method: "POST", headers: bearer(dx.readerPull) }],
      scope: () => `repository:${ns}/elsewhere:pull,push`,
      message: () => `access to repository "${ns}/elsewhere" requires "pull" and "push"; the token does not grant them`,
    },
    {
      name: "GET the catalog without registry:catalog:*",
      request: () => ["/v2/_catalog", { headers: bearer(dx.readerPull) }],
      scope: () => "registry:catalog:*",
      message: () => `access to registry "catalog" requires "*"; the token does not grant it`,
    },
  ];

  it.each(denials)("$name → 401 insufficient_scope naming the missing access", async ({ request, scope, message }) => {
    const response = await call(...request());
    const error = await expectOciError(response, 401, "UNAUTHORIZED");
    expect(error.message).toBe(message());
    expect(response.headers.get("WWW-Authenticate")).toContain(`scope="${scope()}",error="insufficient_scope"`);
  });

  const unauthenticated: { name: string; headers: Record<string, string> }[] = [
    { name: "no token", headers: {} },
    { name: "an invalid token", headers: bearer("not.a.token") },
    { name: "Basic credentials", headers: { Authorization: "Basic YTpi" } },
  ];
  it.each(unauthenticated)("kept: $name keeps 401 \"authentication required\"", async ({ headers }) => {
    const response = await call(`/v2/${repo}/manifests/sha256:${"b".repeat(64)}`, { method: "DELETE", headers });
    const error = await expectOciError(response, 401, "UNAUTHORIZED");
    expect(error.message).toBe("authentication required");
    expect(response.headers.get("WWW-Authenticate")).not.toContain("insufficient_scope");
  });
});
