import { describe, expect, it } from "vitest";
import { toHex } from "../../src/crypto/bytes";
import { Sha256 } from "../../src/crypto/sha256";

async function nativeHex(bytes: Uint8Array): Promise<string> {
  return toHex(await crypto.subtle.digest("SHA-256", bytes));
}

function bytesOf(length: number, seed = 7): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 131 + seed) & 0xff;
  return bytes;
}

describe("Sha256", () => {
  it.each([0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000, 70_000])("matches WebCrypto for %i bytes", async (length) => {
    const data = bytesOf(length);
    const hash = new Sha256();
    hash.update(data);
    expect(hash.digestHex()).toBe(await nativeHex(data));
  });

  it("gives the same digest when split anywhere and resumed from saved JSON state", async () => {
    const data = bytesOf(5000);
    for (const cuts of [[1], [63, 64], [100, 101, 4999], [0, 2500, 2500]]) {
      let hash = new Sha256();
      let offset = 0;
      for (const cut of cuts) {
        hash.update(data.subarray(offset, cut));
        offset = cut;
        hash = Sha256.resume(JSON.parse(JSON.stringify(hash.save())));
      }
      hash.update(data.subarray(offset));
      expect(hash.digestHex()).toBe(await nativeHex(data));
    }
  });

  it("refuses a corrupted state", () => {
    const state = new Sha256().save();
    expect(() => Sha256.resume({ ...state, h: [1, 2, 3] })).toThrow();
    expect(() => Sha256.resume({ ...state, length: 3 })).toThrow();
  });
});
