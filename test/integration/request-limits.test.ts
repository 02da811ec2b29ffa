/**
 * MAX_REQUEST_BODY_BYTES (issue 13): upload bodies over the limit, declared or streamed, get 413 with an OCI
 * error naming the limit and the push command; nothing is stored and the session stays continuable in
 * smaller chunks. Upload-session answers advertise OCI-Chunk-Max-Length. The limit is lowered to 1 MiB by
 * calling the Worker's entry with a copy of `env` (services are built per env object), as production would
 * be configured through wrangler.toml [vars].
 */
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../../src/index";
import { parseConfig, ConfigError } from "../../src/config/config";
import { ORIGIN, bearer, call, digestOf, expectOciError, randomBytes, repositoryFixture } from "../helpers/registry";

const LIMIT = 1024 * 1024;
const limitedEnv = { ...env, MAX_REQUEST_BODY_BYTES: String(LIMIT) };

let repo: string;
let token: string;

beforeAll(async () => ({ repo, token } = await repositoryFixture()));

/** A request to the Worker configured with the 1 MiB limit. */
function limited(path: string, init: RequestInit = {}): Promise<Response> {
  return worker.fetch(new Request(`${ORIGIN}${path}`, { redirect: "manual", ...init }) as never, limitedEnv as never, createExecutionContext());
}

/**
 * A body of no declared length, as skopeo sends a layer compressed on the fly. An IdentityTransformStream
 * makes it a byte stream, as a request body from the network is (the registry reads it with a BYOB reader).
 */
function streamed(bytes: Uint8Array, piece = 256 * 1024): ReadableStream<Uint8Array> {
  const { readable, writable } = new IdentityTransformStream();
  void (async () => {
    const writer = writable.getWriter();
    for (let offset = 0; offset < bytes.length; offset += piece) await writer.write(bytes.subarray(offset, offset + piece));
    await writer.close();
  })();
  return readable;
}

async function startSession(): Promise<Response> {
  const response = await limited(`/v2/${repo}/blobs/uploads/`, { method: "POST", headers: bearer(token) });
  expect(response.status).toBe(202);
  return response;
}

const patch = (location: string, body: BodyInit, headers: Record<string, string> = {}) =>
  limited(location, { method: "PATCH", headers: { ...bearer(token), ...headers }, body });

const status = (location: string) => limited(location, { headers: bearer(token) });

async function blobObjectCount(): Promise<number> {
  return (await env.REGISTRY_BUCKET.list({ prefix: "blobs/" })).objects.length;
}

/** Checks a 413 from the limit: the OCI error, its message, and the session headers when there is one. */
async function expectTooLarge(response: Response, location?: string, offset = 0): Promise<void> {
  const headers = response.headers;
  const error = await expectOciError(response, 413, "SIZE_INVALID");
  expect(error.message).toContain(`limit of ${LIMIT} bytes`);
  expect(error.message).toContain("npx edge-registry push");
  expect(headers.get("OCI-Chunk-Max-Length")).toBe(String(LIMIT));
  if (location !== undefined) {
    expect(headers.get("Location")).toBe(location);
    expect(headers.get("Range")).toBe(`0-${Math.max(offset - 1, 0)}`);
    expect(error.detail).toMatchObject({ limit: LIMIT, offset });
  }
}

/** Finishes a session with `rest` in chunks within the limit and checks the stored bytes' digest. */
async function continueAndFinish(location: string, bytes: Uint8Array, from: number): Promise<void> {
  for (let offset = from; offset < bytes.length; offset += LIMIT) {
    const chunk = bytes.subarray(offset, Math.min(offset + LIMIT, bytes.length));
    const response = await patch(location, chunk, {
      "Content-Length": String(chunk.length),
      "Content-Range": `${offset}-${offset + chunk.length - 1}`,
    });
    expect(response.status, await response.clone().text()).toBe(202);
    expect(response.headers.get("Range")).toBe(`0-${offset + chunk.length - 1}`);
  }
  const digest = await digestOf(bytes);
  const finished = await limited(`${location}?digest=${digest}`, { method: "PUT", headers: { ...bearer(token), "Content-Length": "0" } });
  expect(finished.status, await finished.clone().text()).toBe(201);
  const redirect = await limited(`/v2/${repo}/blobs/${digest}`, { headers: bearer(token) });
  expect(redirect.status).toBe(307);
  const url = new URL(redirect.headers.get("Location")!);
  const data = await limited(`${url.pathname}${url.search}`);
  expect(await digestOf(new Uint8Array(await data.arrayBuffer()))).toBe(digest);
}

describe("chunk headers", () => {
  it("POST 202, PATCH 202 and GET status 204 carry OCI-Chunk-Max-Length and no OCI-Chunk-Min-Length", async () => {
    const started = await startSession();
    expect(started.headers.get("OCI-Chunk-Max-Length")).toBe(String(LIMIT));
    expect(started.headers.has("OCI-Chunk-Min-Length")).toBe(false);
    const location = started.headers.get("Location")!;
    const patched = await patch(location, randomBytes(1000), { "Content-Length": "1000" });
    expect(patched.status).toBe(202);
    expect(patched.headers.get("OCI-Chunk-Max-Length")).toBe(String(LIMIT));
    const polled = await status(location);
    expect(polled.status).toBe(204);
    expect(polled.headers.get("OCI-Chunk-Max-Length")).toBe(String(LIMIT));
    expect(polled.headers.has("OCI-Chunk-Min-Length")).toBe(false);
  });

  it("the default configuration advertises 100,000,000 bytes", async () => {
    const response = await call(`/v2/${repo}/blobs/uploads/`, { method: "POST", headers: bearer(token) });
    expect(response.status).toBe(202);
    expect(response.headers.get("OCI-Chunk-Max-Length")).toBe("100000000");
  });

  it("chunks smaller than R2's 5 MiB part minimum are accepted (no minimum chunk length)", async () => {
    const location = (await startSession()).headers.get("Location")!;
    const bytes = randomBytes(2_500_000);
    // 2.5 MB in 1 MiB chunks, the last one short: every chunk is below R2's part minimum.
    await continueAndFinish(location, bytes, 0);
  });
});

describe("bodies over the limit", () => {
  it("PATCH with a declared Content-Length over the limit → 413; the session keeps its bytes and continues", async () => {
    const bytes = randomBytes(LIMIT + 300_000);
    const location = (await startSession()).headers.get("Location")!;
    const first = bytes.subarray(0, 200_000);
    expect((await patch(location, first, { "Content-Length": String(first.length) })).status).toBe(202);
    const before = await blobObjectCount();
    const rest = bytes.subarray(200_000);
    await expectTooLarge(await patch(location, rest, { "Content-Length": String(rest.length) }), location, 200_000);
    expect((await status(location)).headers.get("Range")).toBe(`0-${200_000 - 1}`);
    expect(await blobObjectCount()).toBe(before);
    await continueAndFinish(location, bytes, 200_000);
  });

  it("a Content-Range longer than the limit → 413 before any byte is read", async () => {
    const location = (await startSession()).headers.get("Location")!;
    const response = await patch(location, randomBytes(10), { "Content-Range": `0-${LIMIT}` });
    await expectTooLarge(response, location, 0);
  });

  it("a first PATCH streamed past the limit (no Content-Length) → 413; nothing stored, the session still at 0", async () => {
    const bytes = randomBytes(LIMIT + 512 * 1024);
    const location = (await startSession()).headers.get("Location")!;
    const before = await blobObjectCount();
    await expectTooLarge(await patch(location, streamed(bytes)), location, 0);
    expect((await status(location)).headers.get("Range")).toBe("0-0");
    expect(await blobObjectCount()).toBe(before);
    await continueAndFinish(location, bytes, 0);
  });

  it("a later PATCH streamed past the limit → 413; the session keeps its offset and continues", async () => {
    const bytes = randomBytes(2 * LIMIT + 100_000);
    const location = (await startSession()).headers.get("Location")!;
    const first = bytes.subarray(0, LIMIT);
    expect((await patch(location, first, { "Content-Length": String(LIMIT) })).status).toBe(202);
    const before = await blobObjectCount();
    await expectTooLarge(await patch(location, streamed(bytes.subarray(LIMIT))), location, LIMIT);
    expect((await status(location)).headers.get("Range")).toBe(`0-${LIMIT - 1}`);
    expect(await blobObjectCount()).toBe(before);
    // A chunk within the limit streamed without a length is accepted.
    const second = bytes.subarray(LIMIT, 2 * LIMIT);
    expect((await patch(location, streamed(second))).status).toBe(202);
    await continueAndFinish(location, bytes, 2 * LIMIT);
  });

  it("PUT ?digest= with a body over the limit, declared or streamed → 413; the session continues", async () => {
    const bytes = randomBytes(LIMIT + 4096);
    const digest = await digestOf(bytes);
    const location = (await startSession()).headers.get("Location")!;
    const put = (body: BodyInit, headers: Record<string, string> = {}) =>
      limited(`${location}?digest=${digest}`, { method: "PUT", headers: { ...bearer(token), ...headers }, body });
    await expectTooLarge(await put(bytes, { "Content-Length": String(bytes.length) }), location, 0);
    await expectTooLarge(await put(streamed(bytes)), location, 0);
    expect((await status(location)).headers.get("Range")).toBe("0-0");
    await continueAndFinish(location, bytes, 0);
  });

  it("POST ?digest= declared over the limit → 413 with no session; streamed over it → 413 with a continuable session", async () => {
    const bytes = randomBytes(LIMIT + 4096);
    const digest = await digestOf(bytes);
    const before = await blobObjectCount();
    const post = (body: BodyInit, headers: Record<string, string> = {}) =>
      limited(`/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: "POST", headers: { ...bearer(token), ...headers }, body });
    const declared = await post(bytes, { "Content-Length": String(bytes.length) });
    expect(declared.headers.has("Location")).toBe(false);
    await expectTooLarge(declared);
    const streamedPost = await post(streamed(bytes));
    const location = streamedPost.headers.get("Location")!;
    expect(location).toMatch(new RegExp(`^/v2/${repo}/blobs/uploads/[0-9a-f-]{36}$`));
    await expectTooLarge(streamedPost, location, 0);
    expect(await blobObjectCount()).toBe(before);
    await continueAndFinish(location, bytes, 0);
  });

  it("a streamed body that fills an R2 part of the session's multipart upload before passing the limit → 413; the part is re-sent", async () => {
    // An 11 MiB limit: two chunks make a multipart upload with one 16 MiB part and a 6 MiB tail; the third,
    // streamed past the limit, completes part 2 (16 MiB) before it overflows. The saved state still names
    // one part, so continuing re-sends part 2 (R2 overwrites it) and the blob reads back intact.
    const limit = 11 * 1024 * 1024;
    const elevenEnv = { ...env, MAX_REQUEST_BODY_BYTES: String(limit) };
    const at11 = (path: string, init: RequestInit = {}) =>
      worker.fetch(new Request(`${ORIGIN}${path}`, { redirect: "manual", ...init }) as never, elevenEnv as never, createExecutionContext());
    const bytes = randomBytes(3 * limit);
    const started = await at11(`/v2/${repo}/blobs/uploads/`, { method: "POST", headers: bearer(token) });
    const location = started.headers.get("Location")!;
    for (const offset of [0, limit]) {
      const chunk = bytes.subarray(offset, offset + limit);
      const response = await at11(location, { method: "PATCH", headers: { ...bearer(token), "Content-Length": String(limit) }, body: chunk });
      expect(response.status).toBe(202);
    }
    const overflowing = new Uint8Array(limit + 1024 * 1024);
    overflowing.set(bytes.subarray(2 * limit));
    const refused = await at11(location, { method: "PATCH", headers: bearer(token), body: streamed(overflowing) });
    const error = await expectOciError(refused, 413, "SIZE_INVALID");
    expect(error.message).toContain(`limit of ${limit} bytes`);
    expect((await at11(location, { headers: bearer(token) })).headers.get("Range")).toBe(`0-${2 * limit - 1}`);
    const last = bytes.subarray(2 * limit);
    expect((await at11(location, { method: "PATCH", headers: { ...bearer(token), "Content-Length": String(limit) }, body: last })).status).toBe(202);
    const digest = await digestOf(bytes);
    const finished = await at11(`${location}?digest=${digest}`, { method: "PUT", headers: { ...bearer(token), "Content-Length": "0" } });
    expect(finished.status, await finished.clone().text()).toBe(201);
    const redirect = await at11(`/v2/${repo}/blobs/${digest}`, { headers: bearer(token) });
    const url = new URL(redirect.headers.get("Location")!);
    expect(await digestOf(new Uint8Array(await (await at11(`${url.pathname}${url.search}`)).arrayBuffer()))).toBe(digest);
  }, 60_000);

  it("a body exactly at the limit is accepted", async () => {
    const bytes = randomBytes(LIMIT);
    const digest = await digestOf(bytes);
    const response = await limited(`/v2/${repo}/blobs/uploads/?digest=${digest}`, {
      method: "POST",
      headers: { ...bearer(token), "Content-Length": String(LIMIT) },
      body: bytes,
    });
    expect(response.status).toBe(201);
    const streamedLocation = (await startSession()).headers.get("Location")!;
    expect((await patch(streamedLocation, streamed(bytes))).status).toBe(202);
  });
});

describe("configuration", () => {
  it("MAX_REQUEST_BODY_BYTES defaults to 100,000,000 and must be an integer from 1 MiB to 5 GB", () => {
    expect(parseConfig({ ...env, MAX_REQUEST_BODY_BYTES: undefined }).maxRequestBodyBytes).toBe(100_000_000);
    expect(parseConfig({ ...env, MAX_REQUEST_BODY_BYTES: "200000000" }).maxRequestBodyBytes).toBe(200_000_000);
    for (const bad of ["1000", "12.5", "lots", "6000000000"]) {
      expect(() => parseConfig({ ...env, MAX_REQUEST_BODY_BYTES: bad })).toThrow(ConfigError);
    }
  });

  it("a malformed limit makes the Worker refuse to serve (503)", async () => {
    const response = await worker.fetch(
      new Request(`${ORIGIN}/v2/`) as never,
      { ...env, MAX_REQUEST_BODY_BYTES: "lots" } as never,
      createExecutionContext(),
    );
    expect(response.status).toBe(503);
  });
});
