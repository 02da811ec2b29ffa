/**
 * Test-only model of production Workers KV as seen from one Cloudflare location, wrapped around a real
 * `KVNamespace` (miniflare's, which is strongly consistent). Never imported by src/: it makes the test
 * substrate stricter, it mocks nothing (every value still comes from, and goes to, the real binding).
 *
 * Rules modelled (/work/shared/reference/platform.md §1, "How KV works", "Read key-value pairs", "List keys",
 * "Limits"):
 *  - reads, including misses, are cached per location for a TTL (60 s by default);
 *  - a location's own writes are not visible to its own later reads (read-your-writes "not guaranteed");
 *  - list results are cached per location the same way (by prefix, limit and cursor; a page the location
 *    has not listed yet is read fresh, so it may show the location's own writes: lenient there);
 *  - one write per second per key, across all locations: a second write is refused with a 429.
 * Several locations over one state = several `ProductionKv` instances with their own `KvLocation` and one
 * shared `KvWriteRate`.
 */

/** Production's default and minimum `cacheTtl`, in seconds: the TTL the model scales. */
const PRODUCTION_CACHE_TTL_SECONDS = 60;
export const DEFAULT_TTL_MS = PRODUCTION_CACHE_TTL_SECONDS * 1000;

type ValueType = "text" | "json" | "arrayBuffer" | "stream";

interface CachedValue {
  /** The raw bytes, or null for a miss (negative lookups are cached too: platform.md §1 [how]). */
  bytes: Uint8Array | null;
  metadata: unknown;
  expiresAt: number;
}

interface CachedList {
  result: KVNamespaceListResult<unknown>;
  expiresAt: number;
}

/** One location's KV cache (values and list pages), shared by every wrapper of that location. */
export class KvLocation {
  readonly values = new Map<string, CachedValue>();
  readonly lists = new Map<string, CachedList>();
  constructor(readonly name: string) {}

  /** Counts, for tests and diagnostics. */
  readonly stats = { hits: 0, misses: 0, refusedWrites: 0 };
}

/** The one-write-per-second-per-key rule, global across locations (platform.md §1 [lim]). */
export class KvWriteRate {
  private readonly lastWrite = new Map<string, number>();
  constructor(readonly intervalMs = 1000) {}

  /** Records a write to `key` at `now`, or throws as production does when the key was written < 1 s ago. */
  admit(key: string, now: number, method: "PUT" | "DELETE"): void {
    const last = this.lastWrite.get(key);
    if (last !== undefined && now - last < this.intervalMs) {
      // Production's binding error for a rate-limited write ("KV PUT failed: 429 Too Many Requests"); the
      // model adds which key and when it was last written, for the engineer reading the log.
      throw new Error(`KV ${method} failed: 429 Too Many Requests (production-KV model: key "${key}" written ${now - last} ms before)`);
    }
    this.lastWrite.set(key, now);
    if (this.lastWrite.size > 10_000) this.prune(now);
  }

  private prune(now: number): void {
    for (const [key, at] of this.lastWrite) if (now - at >= this.intervalMs) this.lastWrite.delete(key);
  }
}

export interface ProductionKvOptions {
  location: KvLocation;
  writeRate: KvWriteRate;
  /** How long a read (or miss, or list page) stays cached at the location; default 60 s. */
  ttlMs?: number;
  /** Clock in ms; tests pass their own. */
  now?: () => number;
}

const decoder = new TextDecoder();

export class ProductionKv implements KVNamespace {
  private readonly location: KvLocation;
  private readonly writeRate: KvWriteRate;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(
    private readonly raw: KVNamespace,
    options: ProductionKvOptions,
  ) {
    this.location = options.location;
    this.writeRate = options.writeRate;
    this.ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
    this.now = options.now ?? Date.now;
  }

  // The overloads of KVNamespace are many; one implementation handles them all.
  get(key: any, options?: any): Promise<any> {
    const { type, cacheTtl } = readOptions(options);
    if (Array.isArray(key)) return this.getMany(key, type, cacheTtl, false);
    return this.read(key, cacheTtl).then((entry) => decode(entry.bytes, type));
  }

  getWithMetadata(key: any, options?: any): Promise<any> {
    const { type, cacheTtl } = readOptions(options);
    if (Array.isArray(key)) return this.getMany(key, type, cacheTtl, true);
    return this.read(key, cacheTtl).then((entry) => ({
      value: decode(entry.bytes, type),
      metadata: entry.bytes === null ? null : structuredClone(entry.metadata ?? null),
      cacheStatus: null,
    }));
  }

  async list<Metadata = unknown>(options: KVNamespaceListOptions = {}): Promise<KVNamespaceListResult<Metadata, string>> {
    const cacheKey = JSON.stringify([options.prefix ?? null, options.limit ?? null, options.cursor ?? null]);
    const cached = this.location.lists.get(cacheKey);
    // List results are cached like reads: changes "may take up to 60 seconds" to show (platform.md §1 [list]).
    if (cached && cached.expiresAt > this.now()) {
      this.location.stats.hits += 1;
      return structuredClone(cached.result) as KVNamespaceListResult<Metadata, string>;
    }
    this.location.stats.misses += 1;
    const result = await this.raw.list<unknown>(options);
    this.location.lists.set(cacheKey, { result: structuredClone(result), expiresAt: this.now() + this.ttlMs });
    return result as KVNamespaceListResult<Metadata, string>;
  }

  async put(key: string, value: string | ArrayBuffer | ArrayBufferView | ReadableStream, options?: KVNamespacePutOptions): Promise<void> {
    this.admitWrite(key, "PUT");
    await this.pinPreWriteValue(key);
    await this.raw.put(key, value, options);
  }

  async delete(key: string): Promise<void> {
    this.admitWrite(key, "DELETE");
    await this.pinPreWriteValue(key);
    await this.raw.delete(key);
  }

  private admitWrite(key: string, method: "PUT" | "DELETE"): void {
    try {
      // Same-key writes: 1 per second, on every plan, counted globally (platform.md §1 [lim]).
      this.writeRate.admit(key, this.now(), method);
    } catch (error) {
      this.location.stats.refusedWrites += 1;
      throw error;
    }
  }

  /**
   * Read-your-writes is "not guaranteed" even in the writing location (platform.md §1 [how]): the model
   * keeps serving what the location had, or caches the pre-write value (or miss) when it had nothing.
   */
  private async pinPreWriteValue(key: string): Promise<void> {
    if (this.fresh(key)) return;
    await this.fetchInto(key, undefined);
  }

  private fresh(key: string): CachedValue | undefined {
    const cached = this.location.values.get(key);
    return cached && cached.expiresAt > this.now() ? cached : undefined;
  }

  private async read(key: string, cacheTtl: number | undefined): Promise<CachedValue> {
    // `cacheTtl` is an integer ≥ 60 (platform.md §1 [read]); miniflare does not check it on every path.
    if (cacheTtl !== undefined && !(Number.isInteger(cacheTtl) && cacheTtl >= PRODUCTION_CACHE_TTL_SECONDS)) {
      throw new Error(`KV GET failed: 400 Invalid cache_ttl of ${cacheTtl}. Cache TTL must be at least ${PRODUCTION_CACHE_TTL_SECONDS}.`);
    }
    const cached = this.fresh(key);
    // Reads, misses included, are served from the location's cache until it expires (platform.md §1 [how][read]).
    if (cached) {
      this.location.stats.hits += 1;
      return cached;
    }
    this.location.stats.misses += 1;
    return this.fetchInto(key, cacheTtl);
  }

  private async fetchInto(key: string, cacheTtl: number | undefined): Promise<CachedValue> {
    const { value, metadata } =
      cacheTtl === undefined ? await this.raw.getWithMetadata(key, "arrayBuffer") : await this.raw.getWithMetadata(key, { type: "arrayBuffer", cacheTtl });
    // A read with `cacheTtl` is cached that long (≥ 60 s) instead of the default 60 s: scaled to the model's TTL.
    const ttl = (this.ttlMs * Math.max(PRODUCTION_CACHE_TTL_SECONDS, cacheTtl ?? PRODUCTION_CACHE_TTL_SECONDS)) / PRODUCTION_CACHE_TTL_SECONDS;
    const entry: CachedValue = {
      bytes: value === null ? null : new Uint8Array(value),
      metadata: value === null ? null : metadata,
      expiresAt: this.now() + ttl,
    };
    this.location.values.set(key, entry);
    return entry;
  }

  private async getMany(keys: string[], type: ValueType, cacheTtl: number | undefined, withMetadata: boolean): Promise<Map<string, unknown>> {
    // Bulk reads accept text and json only, at most 100 keys (platform.md §1; as the real binding).
    if (type !== "text" && type !== "json") throw new TypeError(`KV bulk get supports "text" and "json", not "${type}"`);
    if (keys.length > 100) throw new RangeError("KV bulk get accepts at most 100 keys");
    const entries = await Promise.all(keys.map((key) => this.read(key, cacheTtl)));
    const result = new Map<string, unknown>();
    keys.forEach((key, index) => {
      const entry = entries[index]!;
      const value = decode(entry.bytes, type);
      result.set(key, withMetadata ? { value, metadata: entry.bytes === null ? null : structuredClone(entry.metadata ?? null), cacheStatus: null } : value);
    });
    return result;
  }
}

function readOptions(options: unknown): { type: ValueType; cacheTtl: number | undefined } {
  if (typeof options === "string") return { type: options as ValueType, cacheTtl: undefined };
  if (options && typeof options === "object") {
    const { type, cacheTtl } = options as { type?: ValueType; cacheTtl?: number };
    return { type: type ?? "text", cacheTtl };
  }
  return { type: "text", cacheTtl: undefined };
}

/** Each read decodes a fresh copy, so no caller can change what the location has cached. */
function decode(bytes: Uint8Array | null, type: ValueType): unknown {
  if (bytes === null) return null;
  switch (type) {
    case "text":
      return decoder.decode(bytes);
    case "json":
      return JSON.parse(decoder.decode(bytes));
    case "arrayBuffer":
      return bytes.slice().buffer;
    case "stream":
      return new Blob([bytes.slice()]).stream();
    default:
      throw new TypeError(`unknown KV value type "${String(type)}"`);
  }
}
