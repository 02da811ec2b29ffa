/**
 * Brute-force throttling of credential checks, per account and per client address, with the Workers
 * rate-limiting binding (counted per Cloudflare location). Only failures count, so successful logins and
 * other accounts are never affected. Once failures on a key pass the limit, that key is locked for the
 * period: attempts on it are refused with 429 without checking the secret, so a lucky guess is not
 * revealed. The lock is kept in isolate memory; each isolate learns it from the binding on its next failure.
 */
export interface RateLimiter {
  limit(options: { key: string }): Promise<{ success: boolean }>;
}

/** Both limiters count over 60 s (wrangler.toml `[[ratelimits]]`). */
export const THROTTLE_PERIOD_SECONDS = 60;
const MAX_LOCKS = 10_000;

export class LoginThrottle {
  private readonly lockedUntil = new Map<string, number>();

  constructor(
    private readonly perAccount: RateLimiter | undefined,
    private readonly perClient: RateLimiter | undefined,
  ) {}

  /** Seconds until a locked key frees, or undefined when the attempt may proceed. */
  retryAfter(account: string, client: string | undefined, now = Date.now()): number | undefined {
    const until = Math.max(this.lockedUntil.get(accountKey(account)) ?? 0, client ? (this.lockedUntil.get(clientKey(client)) ?? 0) : 0);
    return until > now ? Math.ceil((until - now) / 1000) : undefined;
  }

  /** Counts a failure; returns the lock's Retry-After when this failure passed a limit. */
  async recordFailure(account: string, client: string | undefined, now = Date.now()): Promise<number | undefined> {
    const checks: Promise<boolean>[] = [this.count(this.perAccount, accountKey(account), now)];
    // Without Cloudflare's client address (local development) there is no per-client key.
    if (client) checks.push(this.count(this.perClient, clientKey(client), now));
    return (await Promise.all(checks)).some(Boolean) ? THROTTLE_PERIOD_SECONDS : undefined;
  }

  private async count(limiter: RateLimiter | undefined, key: string, now: number): Promise<boolean> {
    if (!limiter || (await limiter.limit({ key })).success) return false;
    if (this.lockedUntil.size >= MAX_LOCKS) this.lockedUntil.delete(this.lockedUntil.keys().next().value!);
    this.lockedUntil.set(key, now + THROTTLE_PERIOD_SECONDS * 1000);
    return true;
  }
}

const accountKey = (account: string) => `account:${account.slice(0, 256)}`;
const clientKey = (client: string) => `client:${client}`;
