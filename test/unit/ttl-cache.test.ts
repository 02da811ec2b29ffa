import { describe, expect, it } from "vitest";
import { TtlCache } from "../../src/storage/ttl-cache";

function clock(start = 1_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe("TtlCache", () => {
  it("serves a value until its time to live has passed, absent values included", async () => {
    const time = clock();
    const cache = new TtlCache<string | null>(10_000, 10, time.now);
    let loads = 0;
    const load = async () => (++loads, null);
    expect(await cache.getOrLoad("a", load)).toBeNull();
    time.advance(9_999);
    expect(await cache.getOrLoad("a", load)).toBeNull();
    expect(loads).toBe(1);
    time.advance(1);
    await cache.getOrLoad("a", load);
    expect(loads).toBe(2);
  });

  it("drops a deleted key at once", async () => {
    const cache = new TtlCache<number>(10_000, 10);
    cache.set("a", 1);
    cache.delete("a");
    expect(cache.get("a")).toBeUndefined();
    expect(await cache.getOrLoad("a", async () => 2)).toBe(2);
  });

  it("does not cache a load that overlapped a delete (it may have read the old value)", async () => {
    const cache = new TtlCache<string>(10_000, 10);
    let finish!: (value: string) => void;
    const loading = cache.getOrLoad("a", () => new Promise((resolve) => (finish = resolve)));
    cache.delete("a");
    finish("old");
    expect(await loading).toBe("old");
    expect(cache.get("a")).toBeUndefined();
  });

  it("evicts the oldest entry past its size bound", () => {
    const cache = new TtlCache<number>(10_000, 2);
    cache.set("a", 1);
    cache.set("b", 2);
    cache.set("c", 3);
    expect(cache.get("a")).toBeUndefined();
    expect(cache.get("b")).toEqual({ value: 2 });
    expect(cache.get("c")).toEqual({ value: 3 });
  });
});
