/**
 * Records when a principal last obtained a token without a KV write per token request (KV takes one
 * write per second per key): each isolate writes a principal's time at most once per resolution window.
 */
import { BoundedMap } from "../storage/bounded-map";
import type { IdentityStore } from "../storage/identity-store";
import type { PrincipalId } from "../model/principal";

/** "Last used" is accurate to 15 minutes. */
export const LAST_USED_RESOLUTION_SECONDS = 15 * 60;
const MAX_TRACKED = 4096;

export class LastUsedTracker {
  private readonly written = new BoundedMap<PrincipalId, number>(MAX_TRACKED);

  constructor(private readonly identities: IdentityStore) {}

  /** A write to run in the background, or undefined when this isolate wrote recently. */
  touch(principal: PrincipalId, now = Date.now()): Promise<void> | undefined {
    const last = this.written.get(principal);
    if (last !== undefined && now - last < LAST_USED_RESOLUTION_SECONDS * 1000) return undefined;
    this.written.set(principal, now);
    return this.identities.putLastUsed(principal, new Date(now).toISOString());
  }
}
