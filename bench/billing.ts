/**
 * Benchmark-only counters of billable operations (issue 11 item 7): wrappers around the Worker's KV, R2
 * and Durable Object bindings that count each call by its billing class and pass it on unchanged.
 * Classes follow /work/shared/reference/platform.md:
 *   KV (§1): reads (misses too), writes, deletes, lists — each billed per key / per call.
 *   Durable Objects (§2 [price]): each request to a stub (fetch or RPC method call) is one request.
 *   R2 (§4 [rp]): class A = put, list, createMultipartUpload, uploadPart, complete (copy is put/uploadPart);
 *                 class B = get, head; free = delete, abort.
 * Counters live on globalThis so that the Worker and the Durable Objects of this isolate add to one set.
 */

export interface Costs {
  kvRead: number;
  kvWrite: number;
  kvDelete: number;
  kvList: number;
  doRequest: number;
  r2ClassA: number;
  r2ClassB: number;
  r2Free: number;
  /** Per method, for reading a surprising figure ("kv.get", "r2.put", "do.REPOSITORY_LEDGER.commit", …). */
  byMethod: Record<string, number>;
}

const COSTS = Symbol.for("edge-registry.bench.costs");
const zero = (): Costs => ({ kvRead: 0, kvWrite: 0, kvDelete: 0, kvList: 0, doRequest: 0, r2ClassA: 0, r2ClassB: 0, r2Free: 0, byMethod: {} });
const store = globalThis as Record<symbol, Costs | undefined>;

export function costs(): Costs {
  return (store[COSTS] ??= zero());
}

export function resetCosts(): void {
  store[COSTS] = zero();
}

function count(field: Exclude<keyof Costs, "byMethod">, method: string, n = 1): void {
  const current = costs();
  current[field] += n;
  current.byMethod[method] = (current.byMethod[method] ?? 0) + n;
}

/** KV: every read is billed, a miss included; a bulk get is counted per key (billed per key: unverified). */
export function countedKv(kv: KVNamespace): KVNamespace {
  const counted = {
    get(key: string | string[], options?: unknown) {
      count("kvRead", "kv.get", Array.isArray(key) ? key.length : 1);
      return (kv.get as (k: unknown, o?: unknown) => Promise<unknown>)(key, options);
    },
    getWithMetadata(key: string | string[], options?: unknown) {
      count("kvRead", "kv.getWithMetadata", Array.isArray(key) ? key.length : 1);
      return (kv.getWithMetadata as (k: unknown, o?: unknown) => Promise<unknown>)(key, options);
    },
    list(options?: KVNamespaceListOptions) {
      count("kvList", "kv.list");
      return kv.list(options);
    },
    put(key: string, value: string | ArrayBuffer | ArrayBufferView | ReadableStream, options?: KVNamespacePutOptions) {
      count("kvWrite", "kv.put");
      return kv.put(key, value, options);
    },
    delete(key: string) {
      count("kvDelete", "kv.delete");
      return kv.delete(key);
    },
  };
  return counted as unknown as KVNamespace;
}

function countedMultipart(upload: R2MultipartUpload): R2MultipartUpload {
  return {
    get key() {
      return upload.key;
    },
    get uploadId() {
      return upload.uploadId;
    },
    uploadPart(partNumber: number, value: Parameters<R2MultipartUpload["uploadPart"]>[1], options?: R2UploadPartOptions) {
      count("r2ClassA", "r2.uploadPart");
      return upload.uploadPart(partNumber, value, options);
    },
    complete(parts: R2UploadedPart[]) {
      count("r2ClassA", "r2.completeMultipartUpload");
      return upload.complete(parts);
    },
    abort() {
      count("r2Free", "r2.abortMultipartUpload");
      return upload.abort();
    },
  } as R2MultipartUpload;
}

export function countedBucket(bucket: R2Bucket): R2Bucket {
  const counted = {
    head(key: string) {
      count("r2ClassB", "r2.head");
      return bucket.head(key);
    },
    get(key: string, options?: R2GetOptions) {
      count("r2ClassB", "r2.get");
      return bucket.get(key, options);
    },
    put(key: string, value: Parameters<R2Bucket["put"]>[1], options?: R2PutOptions) {
      // A put refused by a condition is billed as class A too (platform.md §4 [rp]).
      count("r2ClassA", "r2.put");
      return bucket.put(key, value, options);
    },
    list(options?: R2ListOptions) {
      count("r2ClassA", "r2.list");
      return bucket.list(options);
    },
    delete(keys: string | string[]) {
      count("r2Free", "r2.delete");
      return bucket.delete(keys);
    },
    async createMultipartUpload(key: string, options?: R2MultipartOptions) {
      count("r2ClassA", "r2.createMultipartUpload");
      return countedMultipart(await bucket.createMultipartUpload(key, options));
    },
    resumeMultipartUpload(key: string, uploadId: string) {
      // Resuming is local (no request); its uploadPart/complete/abort are counted.
      return countedMultipart(bucket.resumeMultipartUpload(key, uploadId));
    },
  };
  return counted as unknown as R2Bucket;
}

/** A stub whose every method call (fetch or RPC) counts one Durable Object request. */
function countedStub<T extends object>(stub: T, binding: string): T {
  return new Proxy(stub, {
    get(target, property) {
      const value = (target as Record<PropertyKey, unknown>)[property];
      if (typeof value !== "function" || property === "then" || typeof property === "symbol") return value;
      return (...args: unknown[]) => {
        count("doRequest", `do.${binding}.${property}`);
        // Reflect.apply, never value.apply: on an RPC stub, `.apply` would be one more remote property.
        return Reflect.apply(value as (...a: unknown[]) => unknown, target, args);
      };
    },
  });
}

export function countedNamespace<T extends DurableObjectNamespace<any>>(namespace: T, binding: string): T {
  return new Proxy(namespace, {
    get(target, property) {
      const value = (target as Record<PropertyKey, unknown>)[property];
      if (typeof value !== "function") return value;
      if (property === "get" || property === "getByName") {
        return (...args: unknown[]) => countedStub(Reflect.apply(value as (...a: unknown[]) => object, target, args), binding);
      }
      if (property === "jurisdiction") {
        return (...args: unknown[]) => countedNamespace(Reflect.apply(value as (...a: unknown[]) => T, target, args), binding);
      }
      return (...args: unknown[]) => Reflect.apply(value as (...a: unknown[]) => unknown, target, args);
    },
  });
}
