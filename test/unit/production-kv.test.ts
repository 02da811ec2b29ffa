/**
 * The production-KV model (test/support/production-kv.ts) over the real local KV binding: per-location
 * caching of reads, misses and lists for the TTL, no read-your-writes, one write per second per key across
 * locations. Time is a test clock, so nothing here waits.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { KvLocation, KvWriteRate, ProductionKv } from "../support/production-kv";

let clock = 0;
let writeRate: KvWriteRate;
let prefix: string;
let run = 0;

/** A location over the shared raw binding and the shared write rate. */
function at(name: string, ttlMs = 60_000): KVNamespace {
  return new ProductionKv(env.REGISTRY_KV, { location: new KvLocation(name), writeRate, ttlMs, now: () => clock });
}

beforeEach(() => {
  clock = 1_000_000;
  writeRate = new KvWriteRate();
  run += 1;
  prefix = `pkv${run}:`;
});

describe("reads and misses are cached per location", () => {
  it("a cached miss hides another location's write until the TTL ends", async () => {
    const a = at("a");
    const b = at("b");
    expect(await a.get(`${prefix}k`)).toBeNull();
    await b.put(`${prefix}k`, "v1");
    expect(await a.get(`${prefix}k`)).toBeNull();
    clock += 59_999;
    expect(await a.get(`${prefix}k`)).toBeNull();
    clock += 1;
    expect(await a.get(`${prefix}k`)).toBe("v1");
  });

  it("a cached value hides a later value; an uncached location reads the newest", async () => {
    const a = at("a");
    await env.REGISTRY_KV.put(`${prefix}k`, "old");
    expect(await a.get(`${prefix}k`)).toBe("old");
    await env.REGISTRY_KV.put(`${prefix}k`, "new");
    expect(await a.get(`${prefix}k`, "text")).toBe("old");
    expect(await at("b").get(`${prefix}k`)).toBe("new");
    clock += 60_000;
    expect(await a.get(`${prefix}k`)).toBe("new");
  });

  it("the TTL is configurable, and a read's cacheTtl lengthens it in proportion", async () => {
    const a = at("a", 1000);
    expect(await a.get(`${prefix}short`)).toBeNull();
    expect(await a.get(`${prefix}long`, { type: "text", cacheTtl: 120 })).toBeNull();
    await env.REGISTRY_KV.put(`${prefix}short`, "s");
    await env.REGISTRY_KV.put(`${prefix}long`, "l");
    clock += 1000;
    expect(await a.get(`${prefix}short`)).toBe("s");
    expect(await a.get(`${prefix}long`)).toBeNull();
    clock += 1000;
    expect(await a.get(`${prefix}long`)).toBe("l");
  });

  it("a cacheTtl below 60 s is refused, as production refuses it", async () => {
    await expect(at("a").get(`${prefix}k`, { type: "text", cacheTtl: 30 })).rejects.toThrow();
  });
});

describe("a location's own writes are not visible to its own reads", () => {
  it("a put after a miss keeps reading as the miss for the TTL", async () => {
    const a = at("a");
    await a.put(`${prefix}k`, "v1");
    expect(await a.get(`${prefix}k`)).toBeNull();
    expect(await env.REGISTRY_KV.get(`${prefix}k`)).toBe("v1");
    clock += 60_000;
    expect(await a.get(`${prefix}k`)).toBe("v1");
  });

  it("a put over a value keeps reading as the old value; a delete too", async () => {
    const a = at("a");
    await env.REGISTRY_KV.put(`${prefix}k`, "old", { metadata: { n: 1 } });
    await env.REGISTRY_KV.put(`${prefix}d`, "kept");
    await a.put(`${prefix}k`, "new", { metadata: { n: 2 } });
    await a.delete(`${prefix}d`);
    expect(await a.getWithMetadata(`${prefix}k`)).toEqual({ value: "old", metadata: { n: 1 }, cacheStatus: null });
    expect(await a.get(`${prefix}d`)).toBe("kept");
    expect(await env.REGISTRY_KV.get(`${prefix}d`)).toBeNull();
    clock += 60_000;
    expect(await a.getWithMetadata(`${prefix}k`)).toEqual({ value: "new", metadata: { n: 2 }, cacheStatus: null });
    expect(await a.get(`${prefix}d`)).toBeNull();
  });

  it("another location that had not read the key sees the write", async () => {
    await at("a").put(`${prefix}k`, "v1");
    expect(await at("b").get(`${prefix}k`)).toBe("v1");
  });
});

describe("every value type is served from the cache as a fresh copy", () => {
  it("text, json, arrayBuffer and stream, with and without metadata", async () => {
    const a = at("a");
    const json = { tag: "v1", n: [1, 2] };
    await env.REGISTRY_KV.put(`${prefix}j`, JSON.stringify(json), { metadata: { digest: "sha256:x" } });
    expect(await a.get(`${prefix}j`, "json")).toEqual(json);
    await env.REGISTRY_KV.delete(`${prefix}j`); // the location still has it cached
    expect(await a.get(`${prefix}j`)).toBe(JSON.stringify(json));
    expect(await a.get(`${prefix}j`, { type: "json" })).toEqual(json);
    const buffer = (await a.get(`${prefix}j`, "arrayBuffer")) as ArrayBuffer;
    new Uint8Array(buffer).fill(0); // a caller's change never reaches the cache
    expect(new TextDecoder().decode((await a.get(`${prefix}j`, "arrayBuffer")) as ArrayBuffer)).toBe(JSON.stringify(json));
    const stream = (await a.get(`${prefix}j`, "stream")) as ReadableStream;
    expect(await new Response(stream).text()).toBe(JSON.stringify(json));
    const withMetadata = await a.getWithMetadata<{ tag: string }, { digest: string }>(`${prefix}j`, "json");
    expect(withMetadata.value).toEqual(json);
    expect(withMetadata.metadata).toEqual({ digest: "sha256:x" });
    const streamed = await a.getWithMetadata<{ digest: string }>(`${prefix}j`, "stream");
    expect(await new Response(streamed.value).text()).toBe(JSON.stringify(json));
    expect(streamed.metadata).toEqual({ digest: "sha256:x" });
    // A miss is a miss in every type.
    expect(await a.get(`${prefix}none`, "stream")).toBeNull();
    expect(await a.getWithMetadata(`${prefix}none`, "arrayBuffer")).toEqual({ value: null, metadata: null, cacheStatus: null });
  });

  it("bulk gets go through the same cache", async () => {
    const a = at("a");
    await env.REGISTRY_KV.put(`${prefix}x`, '"x"');
    expect(await a.get(`${prefix}x`)).toBe('"x"');
    await env.REGISTRY_KV.put(`${prefix}x`, '"x2"');
    await env.REGISTRY_KV.put(`${prefix}y`, '"y"');
    const texts = await a.get([`${prefix}x`, `${prefix}y`, `${prefix}z`], "text");
    expect([...texts.entries()]).toEqual([[`${prefix}x`, '"x"'], [`${prefix}y`, '"y"'], [`${prefix}z`, null]]);
    const jsons = await a.getWithMetadata<string, unknown>([`${prefix}x`], "json");
    expect(jsons.get(`${prefix}x`)).toEqual({ value: "x", metadata: null, cacheStatus: null });
  });
});

describe("lists are cached per location", () => {
  it("a listed prefix does not show later keys until the TTL ends, at the location that listed it", async () => {
    const a = at("a");
    await env.REGISTRY_KV.put(`${prefix}tag:1`, "", { metadata: { digest: "d1" } });
    const first = await a.list({ prefix: `${prefix}tag:` });
    expect(first.keys.map((key) => key.name)).toEqual([`${prefix}tag:1`]);
    await a.put(`${prefix}tag:2`, "");
    await env.REGISTRY_KV.delete(`${prefix}tag:1`);
    const again = await a.list<{ digest: string }>({ prefix: `${prefix}tag:` });
    expect(again.keys).toEqual([{ name: `${prefix}tag:1`, metadata: { digest: "d1" } }]);
    expect((await at("b").list({ prefix: `${prefix}tag:` })).keys.map((key) => key.name)).toEqual([`${prefix}tag:2`]);
    clock += 60_000;
    expect((await a.list({ prefix: `${prefix}tag:` })).keys.map((key) => key.name)).toEqual([`${prefix}tag:2`]);
  });

  it("pages are cached by prefix, limit and cursor", async () => {
    const a = at("a");
    for (const n of [1, 2, 3]) await env.REGISTRY_KV.put(`${prefix}p:${n}`, "");
    const page1 = await a.list({ prefix: `${prefix}p:`, limit: 2 });
    expect(page1.list_complete).toBe(false);
    await env.REGISTRY_KV.put(`${prefix}p:0`, "");
    expect((await a.list({ prefix: `${prefix}p:`, limit: 2 })).keys.map((key) => key.name)).toEqual([`${prefix}p:1`, `${prefix}p:2`]);
    expect((await a.list({ prefix: `${prefix}p:`, limit: 3 })).keys.map((key) => key.name)).toEqual([`${prefix}p:0`, `${prefix}p:1`, `${prefix}p:2`]);
  });
});

describe("one write per second per key, across locations", () => {
  it("refuses a second put within a second as production does, and stores nothing", async () => {
    const a = at("a");
    await a.put(`${prefix}k`, "v1");
    await expect(a.put(`${prefix}k`, "v2")).rejects.toThrow("KV PUT failed: 429 Too Many Requests");
    expect(await env.REGISTRY_KV.get(`${prefix}k`)).toBe("v1");
    clock += 999;
    await expect(a.delete(`${prefix}k`)).rejects.toThrow("KV DELETE failed: 429 Too Many Requests");
    clock += 1;
    await a.delete(`${prefix}k`);
    expect(await env.REGISTRY_KV.get(`${prefix}k`)).toBeNull();
  });

  it("counts writes globally: another location's write to the key is refused too", async () => {
    await at("a").put(`${prefix}k`, "a");
    await expect(at("b").put(`${prefix}k`, "b")).rejects.toThrow(/429/);
    await expect(at("durable-objects").delete(`${prefix}k`)).rejects.toThrow(/429/);
    await at("b").put(`${prefix}other`, "b"); // other keys are independent
    expect(await env.REGISTRY_KV.get(`${prefix}k`)).toBe("a");
  });

  it("concurrent writes of one key: the first is stored, the others refused", async () => {
    const results = await Promise.allSettled([1, 2, 3, 4].map((n) => at(`l${n}`).put(`${prefix}k`, String(n))));
    expect(results.map((result) => result.status)).toEqual(["fulfilled", "rejected", "rejected", "rejected"]);
    expect(await env.REGISTRY_KV.get(`${prefix}k`)).toBe("1");
  });
});
