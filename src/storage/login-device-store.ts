/**
 * Client addresses that have signed in successfully as a password principal (OWASP Authentication Cheat
 * Sheet, "device cookies", with the client address as the device: command-line clients keep no cookie).
 * Such an address is exempt from the principal's account lock (auth/guarded-login.ts). Only a keyed hash
 * of the address is stored (HMAC under the pepper, cut to 128 bits), never the address itself.
 *
 * One key per principal and address, written on a success when absent or older than REFRESH_AFTER_MS (so a
 * busy client does not write on every login), expiring after DEVICE_TTL_SECONDS without such a refresh.
 * KV is eventually consistent: a device remembered moments ago in another location may read as unknown
 * there, which only means the account lock applies to it, as it did before its first success.
 */
import { BoundedMap } from "./bounded-map";
import type { Hmac } from "../crypto/secrets";
import type { PrincipalId } from "../model/principal";
import { kvKeys } from "./keys";

/** A device is forgotten after 90 days without a successful sign-in. */
export const DEVICE_TTL_SECONDS = 90 * 24 * 3600;
const REFRESH_AFTER_MS = 30 * 24 * 3600 * 1000;
const MEMO_SIZE = 4096;

export class LoginDeviceStore {
  /** Per isolate: keys known to be stored, with the time they were written. */
  private readonly known = new BoundedMap<string, number>(MEMO_SIZE);

  constructor(
    private readonly kv: KVNamespace,
    private readonly hmac: Hmac,
  ) {}

  async isKnown(principal: PrincipalId, address: string): Promise<boolean> {
    return (await this.writtenAt(await this.key(principal, address))) !== undefined;
  }

  /** Records a successful sign-in from `address`; writes only when the record is missing or old. */
  async remember(principal: PrincipalId, address: string, now = Date.now()): Promise<void> {
    const key = await this.key(principal, address);
    const written = await this.writtenAt(key);
    if (written !== undefined && now - written < REFRESH_AFTER_MS) return;
    try {
      await this.kv.put(key, new Date(now).toISOString(), { expirationTtl: DEVICE_TTL_SECONDS });
    } catch (error) {
      // platform.md §1: one write per second per key; a concurrent sign-in from the same address (another
      // isolate or location) may just have written it. Never fail a successful sign-in for this record.
      console.warn(JSON.stringify({ event: "login_device_write_dropped", error: String(error).slice(0, 200) }));
      return;
    }
    this.memo(key, now);
  }

  private async key(principal: PrincipalId, address: string): Promise<string> {
    return kvKeys.loginDevice(principal, (await this.hmac.signHex(address)).slice(0, 32));
  }

  private async writtenAt(key: string): Promise<number | undefined> {
    const memo = this.known.get(key);
    if (memo !== undefined) return memo;
    const value = await this.kv.get(key);
    const time = value === null ? NaN : Date.parse(value);
    if (Number.isNaN(time)) return undefined;
    this.memo(key, time);
    return time;
  }

  private memo(key: string, time: number): void {
    this.known.set(key, time);
  }
}
