/**
 * Where a repository was just written: a marker in the location's cache (Cache API, per data center,
 * platform.md §6) kept for KV's staleness window. While it lives, reads of that repository in that location
 * go to the ledger, so a client that just pushed, moved a tag or deleted sees its own write even with a
 * pull-only token: KV gives no read-your-writes, not even in the writing location (platform.md §1). Other
 * locations see the change within the documented bound (docs/storage-schema.md "Consistency").
 */
import { cacheKeys } from "./keys";

/** KV may serve a value read before a write for 60 s (platform.md §1); the marker outlives that. */
export const RECENT_WRITE_SECONDS = 65;

export class RecentWrites {
  constructor(private readonly cache: Cache) {}

  async has(repository: string): Promise<boolean> {
    return (await this.cache.match(cacheKeys.recentWrite(repository))) !== undefined;
  }

  async mark(repository: string): Promise<void> {
    const marker = new Response("", { headers: { "Cache-Control": `max-age=${RECENT_WRITE_SECONDS}` } });
    await this.cache.put(cacheKeys.recentWrite(repository), marker);
  }
}
