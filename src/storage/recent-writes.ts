/**
 * What was just written here: markers in the location's cache (Cache API, per data center, platform.md §6)
 * kept for KV's staleness window, shared by every isolate of the location. KV gives no read-your-writes, not
 * even in the writing location, and serves a value read before a write for 60 s (platform.md §1); while a
 * marker lives, reads of what it names in that location go to the ledger. Other locations see the change
 * within the documented bounds (docs/storage-schema.md "Consistency", SECURITY.md "Revocation window").
 */
import { cacheKeys } from "./keys";
import { TtlCache } from "./ttl-cache";

/** KV may serve a value read before a write for 60 s (platform.md §1); the marker outlives that. */
export const RECENT_WRITE_SECONDS = 65;

/**
 * A repository written in this location: a client that just pushed, moved a tag or deleted sees its own
 * write even with a pull-only token. A removal (manifest, tag or blob DELETE) is marked apart, since only
 * then may KV still hold something that no longer exists (storage/repository-store.ts ReadFreshness).
 */
export class RecentWrites {
  constructor(private readonly cache: Cache) {}

  /** Whether the repository was written here lately (any write). */
  async has(repository: string): Promise<boolean> {
    return (await this.cache.match(cacheKeys.recentWrite(repository))) !== undefined;
  }

  /** Whether something was removed from the repository here lately. */
  async hasRemovals(repository: string): Promise<boolean> {
    return (await this.cache.match(cacheKeys.recentRemoval(repository))) !== undefined;
  }

  async mark(repository: string, kind: "addition" | "removal"): Promise<void> {
    const marker = () => new Response("", { headers: { "Cache-Control": `max-age=${RECENT_WRITE_SECONDS}` } });
    const puts = [this.cache.put(cacheKeys.recentWrite(repository), marker())];
    if (kind === "removal") puts.push(this.cache.put(cacheKeys.recentRemoval(repository), marker()));
    await Promise.all(puts);
  }
}

/** KV's read cache (60 s, platform.md §1) plus the identity ledger's publication delay, with a margin. */
export const RECENT_IDENTITY_CHANGE_SECONDS = 70;
/** Markers a single change sets at most (each is a subrequest, platform.md §6); more keys rely on the isolate's memory and the revocation window. */
export const MAX_MARKERS_PER_CHANGE = 50;
const ISOLATE_MEMORY_SIZE = 1024;
const CHANGED_AT = "X-Changed-At";

/**
 * Identity records (by KV key) changed lately, and when: in this isolate's memory, and in the location's
 * cache for every other isolate there, so a disable, rotation or grant removal acknowledged by the admin API
 * holds at once for every login in that location, not only in the isolate that made it.
 */
export class RecentIdentityChanges {
  private readonly isolate = new TtlCache<number>(RECENT_IDENTITY_CHANGE_SECONDS * 1000, ISOLATE_MEMORY_SIZE);

  /** `cache` is absent where the runtime has no Cache API; then only this isolate knows. */
  constructor(private readonly cache: Cache | undefined) {}

  /** When `kvKey` was last changed here (ms since the epoch), or undefined when not within the window. */
  async changedAt(kvKey: string): Promise<number | undefined> {
    const here = this.isolate.get(kvKey);
    if (here) return here.value;
    const marker = await this.cache?.match(cacheKeys.recentIdentityChange(kvKey));
    const at = Number(marker?.headers.get(CHANGED_AT));
    return marker && Number.isFinite(at) ? at : undefined;
  }

  /**
   * Records a change of each key, made now. Never throws: the change is committed, and a marker the cache
   * refused leaves only the revocation window (logged).
   */
  async mark(kvKeys: string[]): Promise<void> {
    const now = Date.now();
    for (const key of kvKeys) this.isolate.set(key, now);
    if (!this.cache) return;
    const headers = { "Cache-Control": `max-age=${RECENT_IDENTITY_CHANGE_SECONDS}`, [CHANGED_AT]: String(now) };
    const puts = kvKeys.slice(0, MAX_MARKERS_PER_CHANGE).map((key) => this.cache!.put(cacheKeys.recentIdentityChange(key), new Response("", { headers })));
    const failed = (await Promise.allSettled(puts)).filter((result) => result.status === "rejected");
    if (failed.length > 0) console.warn(JSON.stringify({ event: "identity_change_marker_failed", count: failed.length, error: String((failed[0] as PromiseRejectedResult).reason).slice(0, 200) }));
  }
}
