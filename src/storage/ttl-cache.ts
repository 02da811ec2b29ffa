/**
 * A small per-isolate cache with a time to live and a size bound (oldest entry evicted first).
 * It holds values, absent ones included, so a miss and a hit of a lookup cost the same afterwards.
 */
import { BoundedMap } from "./bounded-map";

export class TtlCache<V> {
  private readonly entries: BoundedMap<string, { value: V; expiresAt: number }>;
  /** Counts deletes, so a load that overlapped one does not cache what may be the old value. */
  private deletes = 0;

  constructor(
    private readonly ttlMs: number,
    maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {
    this.entries = new BoundedMap(maxEntries);
  }

  /** The cached value, or undefined when there is none or it expired. */
  get(key: string): { value: V } | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (this.now() >= entry.expiresAt) {
      this.entries.delete(key);
      return undefined;
    }
    return { value: entry.value };
  }

  set(key: string, value: V): void {
    // Deleted first, so that a refreshed entry is the newest.
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: this.now() + this.ttlMs });
  }

  delete(key: string): void {
    this.deletes++;
    this.entries.delete(key);
  }

  /** Returns the cached value or loads, caches and returns it. */
  async getOrLoad(key: string, load: () => Promise<V>): Promise<V> {
    const cached = this.get(key);
    if (cached) return cached.value;
    const deletesBefore = this.deletes;
    const value = await load();
    if (this.deletes === deletesBefore) this.set(key, value);
    return value;
  }
}
