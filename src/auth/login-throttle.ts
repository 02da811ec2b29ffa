/**
 * Brute-force throttling of credential checks with the Workers rate-limiting binding (counted per Cloudflare
 * location, platform.md §7). Only failures count, so successful logins are never throttled. Two counters:
 * per client address (every kind of credential) and per account (password accounts only: see
 * GuardedLogin for who is exempt from an account's lock). Once failures on a key pass its limit, the key
 * is locked for the period: attempts are refused with 429 without checking the secret, so a lucky guess is
 * not revealed. Locks are kept in isolate memory; each isolate learns one from the binding on its next failure.
 */
import { BoundedMap } from "../storage/bounded-map";
import type { RateLimiter } from "../config/env";

/** Both limiters count over 60 s (wrangler.toml `[[ratelimits]]`). */
export const THROTTLE_PERIOD_SECONDS = 60;
const MAX_LOCKS = 10_000;

/** What an attempt is counted against: an account key (password accounts only) and the client address. */
export interface ThrottleKeys {
  account?: string;
  client?: string;
}

export class LoginThrottle {
  private readonly lockedUntil = new BoundedMap<string, number>(MAX_LOCKS);

  constructor(
    private readonly perAccount: RateLimiter | undefined,
    private readonly perClient: RateLimiter | undefined,
  ) {}

  /** Seconds until the client's lock frees, or undefined. */
  clientRetryAfter(client: string | undefined, now = Date.now()): number | undefined {
    return client ? this.remaining(clientKey(client), now) : undefined;
  }

  /** Seconds until the account's lock frees, or undefined. */
  accountRetryAfter(account: string, now = Date.now()): number | undefined {
    return this.remaining(accountKey(account), now);
  }

  /** Counts a failure against each key given; a key whose limit it passes is locked for the period. */
  async recordFailure(keys: ThrottleKeys, now = Date.now()): Promise<void> {
    const checks: Promise<void>[] = [];
    if (keys.account !== undefined) checks.push(this.count(this.perAccount, accountKey(keys.account), now));
    // Without Cloudflare's client address (local development) there is no per-client key.
    if (keys.client) checks.push(this.count(this.perClient, clientKey(keys.client), now));
    await Promise.all(checks);
  }

  private remaining(key: string, now: number): number | undefined {
    const until = this.lockedUntil.get(key) ?? 0;
    return until > now ? Math.ceil((until - now) / 1000) : undefined;
  }

  private async count(limiter: RateLimiter | undefined, key: string, now: number): Promise<void> {
    if (!limiter || (await limiter.limit({ key })).success) return;
    this.lockedUntil.set(key, now + THROTTLE_PERIOD_SECONDS * 1000);
  }
}

const accountKey = (account: string) => `account:${account.slice(0, 256)}`;
const clientKey = (client: string) => `client:${client.slice(0, 64)}`;
