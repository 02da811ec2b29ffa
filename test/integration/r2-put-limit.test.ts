/**
 * Blobs over R2's single-put limit (platform.md §4: one put ≤ 5 GiB − 5 MiB; parts 5 MiB–5 GiB, all but the last
 * the same size): no path stores more than UPLOAD_SINGLE_PUT_MAX_BYTES with one put; longer bodies become
 * multipart objects, served with Range like any other. The thresholds are lowered through the Worker's vars
 * (UPLOAD_SINGLE_PUT_MAX_BYTES 6 MiB, UPLOAD_PART_BYTES 5 MiB, R2's smallest part, which local R2 enforces too),
 * so a blob of a few MiB takes exactly the code path of a layer over 5 GiB. Real local R2, nothing skipped.
 */
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../../src/index";
import { parseConfig, ConfigError } from "../../src/config/config";
import { ORIGIN, bearer, digestOf, randomBytes, repositoryFixture } from "../helpers/registry";

const MiB = 1024 * 1024;
const PART = 5 * MiB;
const SINGLE_PUT_MAX = 6 * MiB;
const thresholdEnv = { ...env, UPLOAD_PART_BYTES: String(PART), UPLOAD_SINGLE_PUT_MAX_BYTES: String(SINGLE_PUT_MAX) };

let repo: string;
let token: string;

beforeAll(async () => ({ repo, token } = await repositoryFixture()));

/** A request to the Worker configured with the lowered thresholds. */
function call(path: string, init: RequestInit = {}): Promise<Response> {
  return worker.fetch(new Request(`${ORIGIN}${path}`, { redirect: "manual", ...init }) as never, thresholdEnv as never, createExecutionContext());
}

/** The R2 object holding a blob of this size (sizes are unique within this file). */
async function storedObject(size: number): Promise<R2Object> {
  const listed = await env.REGISTRY_BUCKET.list({ prefix: "blobs/" });
  const matches = listed.objects.filter((object) => object.size === size);
  expect(matches).toHaveLength(1);
  return matches[0]!;
}

/** The signed URL the blob GET redirects to (path and query, for the Worker itself). */
async function blobUrl(digest: string): Promise<string> {
  const redirect = await call(`/v2/${repo}/blobs/${digest}`, { headers: bearer(token) });
  expect(redirect.status).toBe(307);
  const url = new URL(redirect.headers.get("Location")!);
  return `${url.pathname}${url.search}`;
}

/** Every byte served, and ranges across part boundaries, equal what was pushed. */
async function expectServedWithRanges(digest: string, bytes: Uint8Array): Promise<void> {
  const url = await blobUrl(digest);
  const whole = await call(url);
  expect(whole.status).toBe(200);
  expect(await digestOf(new Uint8Array(await whole.arrayBuffer()))).toBe(digest);
  for (const [start, end] of [
    [PART - 10, PART + 9], // across the first part boundary
    [2 * PART - 1, 2 * PART], // the last byte of part 2 and the first of part 3
    [0, 0],
    [bytes.length - 100, bytes.length - 1],
  ] as const) {
    const ranged = await call(url, { headers: { Range: `bytes=${start}-${end}` } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get("Content-Range")).toBe(`bytes ${start}-${end}/${bytes.length}`);
    expect(new Uint8Array(await ranged.arrayBuffer())).toEqual(bytes.subarray(start, end + 1));
  }
  const suffix = await call(url, { headers: { Range: "bytes=-4096" } });
  expect(suffix.status).toBe(206);
  expect(new Uint8Array(await suffix.arrayBuffer())).toEqual(bytes.subarray(bytes.length - 4096));
}

/** A multipart object's ETag ends with `-<number of parts>` (platform.md §4); one put's is a plain MD5. */
const partsOf = (object: R2Object) => Number(/-(\d+)$/.exec(object.etag)?.[1] ?? 1);

describe("a body longer than one put may hold", () => {
  it("a monolithic POST ?digest= with its length declared becomes a multipart object of equal parts, served with Range", async () => {
    const bytes = randomBytes(2 * PART + 3 * MiB + 123);
    const digest = await digestOf(bytes);
    const response = await call(`/v2/${repo}/blobs/uploads/?digest=${digest}`, {
      method: "POST",
      headers: { ...bearer(token), "Content-Length": String(bytes.length), "Content-Type": "application/octet-stream" },
      body: bytes,
    });
    expect(response.status, await response.clone().text()).toBe(201);
    const object = await storedObject(bytes.length);
    expect(partsOf(object)).toBe(3);
    await expectServedWithRanges(digest, bytes);
  });

  it("a first PATCH over the bound, then more chunks: multipart throughout, finished and served with Range", async () => {
    const bytes = randomBytes(2 * PART + 4 * MiB + 7);
    const started = await call(`/v2/${repo}/blobs/uploads/`, { method: "POST", headers: bearer(token) });
    expect(started.status).toBe(202);
    const location = started.headers.get("Location")!;
    const cuts = [0, SINGLE_PUT_MAX + 1, 2 * PART + 1, bytes.length];
    for (let index = 0; index + 1 < cuts.length; index++) {
      const chunk = bytes.subarray(cuts[index]!, cuts[index + 1]!);
      const patched = await call(location, {
        method: "PATCH",
        headers: { ...bearer(token), "Content-Length": String(chunk.length), "Content-Range": `${cuts[index]}-${cuts[index + 1]! - 1}` },
        body: chunk,
      });
      expect(patched.status, await patched.clone().text()).toBe(202);
    }
    const digest = await digestOf(bytes);
    const finished = await call(`${location}?digest=${digest}`, { method: "PUT", headers: { ...bearer(token), "Content-Length": "0" } });
    expect(finished.status, await finished.clone().text()).toBe(201);
    const object = await storedObject(bytes.length);
    expect(partsOf(object)).toBe(3);
    await expectServedWithRanges(digest, bytes);
  });

  it("a body at the bound is still one put: the bound is what switches paths", async () => {
    const bytes = randomBytes(SINGLE_PUT_MAX);
    const digest = await digestOf(bytes);
    const response = await call(`/v2/${repo}/blobs/uploads/?digest=${digest}`, {
      method: "POST",
      headers: { ...bearer(token), "Content-Length": String(bytes.length), "Content-Type": "application/octet-stream" },
      body: bytes,
    });
    expect(response.status).toBe(201);
    expect(partsOf(await storedObject(bytes.length))).toBe(1);
  });
});

describe("configuration", () => {
  it("defaults to R2's limits: one put up to 5 GiB − 5 MiB, 16 MiB parts", () => {
    expect(parseConfig(env as never).uploadStorage).toEqual({ singlePutMaxBytes: 5 * 1024 ** 3 - 5 * MiB, partBytes: 16 * MiB });
  });

  it("refuses a single-put bound over R2's, and parts under 5 MiB or over the single-put bound", () => {
    for (const vars of [
      { UPLOAD_SINGLE_PUT_MAX_BYTES: String(5 * 1024 ** 3) },
      { UPLOAD_PART_BYTES: String(5 * MiB - 1) },
      { UPLOAD_PART_BYTES: String(7 * MiB), UPLOAD_SINGLE_PUT_MAX_BYTES: String(6 * MiB) },
    ]) {
      expect(() => parseConfig({ ...env, ...vars } as never)).toThrow(ConfigError);
    }
  });
});
