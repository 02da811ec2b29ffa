/**
 * First use of each federated token (SECURITY.md "Workload identity federation", replay): a token is
 * accepted again only within its trust policy's replay window after its first use, and never after its
 * `exp` (the verifier checks that). The first-use time is kept in three layers, each checked in turn:
 *
 *  - isolate memory (exact within the isolate);
 *  - the data center's Cache API (platform.md §6: shared by the isolates of one data center, not replicated);
 *  - Workers KV (`oidc-token:<hash>`, expiring with the token): global, but eventually consistent
 *    (platform.md §1), so another location may not see a first use made elsewhere for up to about 60 s.
 *
 * So within one location the window is enforced; across locations a token may be accepted as "first used"
 * once more per location within KV's propagation time, and each such location then enforces its own window.
 * A strongly consistent store (a Durable Object) would close that gap at the cost of a Durable Object
 * request on every federated login; the window being a mitigation, not the authentication, we chose not to.
 */
import { BoundedMap } from "../storage/bounded-map";
import { kvKeys } from "../storage/keys";

const MAX_MEMORY_ENTRIES = 10_000;
/** KV refuses an expirationTtl under 60 s (platform.md §1). */
const MIN_KV_TTL_SECONDS = 60;
const CACHE_ORIGIN = "https://oidc-replay.edge-registry.invalid";

export interface FirstUse {
  /** When the token was first accepted (ms). */
  firstUsedAt: number;
  /** This is the first use seen anywhere this guard can see. */
  fresh: boolean;
}

export class ReplayGuard {
  private readonly memory = new BoundedMap<string, { firstUsedAt: number; expiresAt: number }>(MAX_MEMORY_ENTRIES);

  constructor(
    private readonly kv: KVNamespace,
    private readonly cache: Cache | undefined,
  ) {}

  /**
   * Records and returns the first use of token `id` (a hash: never the token), valid until `expiresAt`
   * (ms). Writes beyond isolate memory run in `background` after the answer.
   */
  async firstUse(id: string, expiresAt: number, now: number, background: (work: Promise<unknown>) => void): Promise<FirstUse> {
    const held = this.memory.get(id);
    if (held && held.expiresAt > now) return { firstUsedAt: held.firstUsedAt, fresh: false };
    const seen = (await this.fromCache(id)) ?? (await this.fromKv(id));
    if (seen !== undefined) {
      this.remember(id, seen, expiresAt);
      return { firstUsedAt: seen, fresh: false };
    }
    this.remember(id, now, expiresAt);
    const ttlSeconds = Math.max(MIN_KV_TTL_SECONDS, Math.ceil((expiresAt - now) / 1000) + 60);
    background(
      Promise.allSettled([
        this.cache?.put(cacheKey(id), new Response(String(now), { headers: { "Cache-Control": `max-age=${ttlSeconds}` } })),
        this.kv.put(kvKeys.federatedToken(id), String(now), { expirationTtl: ttlSeconds }),
      ]),
    );
    return { firstUsedAt: now, fresh: true };
  }

  private remember(id: string, firstUsedAt: number, expiresAt: number): void {
    // Full: expired entries go first; the map evicts the oldest only if none has expired.
    if (this.memory.size >= MAX_MEMORY_ENTRIES) for (const [key, entry] of this.memory) if (entry.expiresAt <= Date.now()) this.memory.delete(key);
    this.memory.set(id, { firstUsedAt, expiresAt });
  }

  private async fromCache(id: string): Promise<number | undefined> {
    if (!this.cache) return undefined;
    try {
      const response = await this.cache.match(cacheKey(id));
      return response ? parseTime(await response.text()) : undefined;
    } catch {
      return undefined;
    }
  }

  private async fromKv(id: string): Promise<number | undefined> {
    const value = await this.kv.get(kvKeys.federatedToken(id));
    return value === null ? undefined : parseTime(value);
  }
}

function cacheKey(id: string): Request {
  return new Request(`${CACHE_ORIGIN}/${id}`);
}

function parseTime(text: string): number | undefined {
  const value = Number(text);
  return Number.isSafeInteger(value) && value > 0 ? value : undefined;
}
