/**
 * Incremental SHA-256 (FIPS 180-4) whose state can be saved and resumed.
 *
 * WebCrypto's DigestStream cannot export its state, but a blob upload spans several
 * requests (POST, PATCH…, PUT), each of which must hash only the bytes it carries.
 * The state (8 words, the unhashed remainder of < 64 bytes and the byte count) fits
 * in a few hundred bytes of JSON stored with the upload session.
 */
import { fromBase64 } from "./bytes";

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
]);

const INITIAL_STATE = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/** The serializable state of an unfinished hash. */
export interface Sha256State {
  /** The eight working words, as unsigned integers. */
  h: number[];
  /** Bytes fed so far. */
  length: number;
  /** Bytes fed but not yet hashed (fewer than 64), base64. */
  pending: string;
}

export class Sha256 {
  private readonly h = new Int32Array(INITIAL_STATE);
  private readonly w = new Int32Array(64);
  private readonly block = new Uint8Array(64);
  private blockLength = 0;
  private length = 0;

  static resume(state: Sha256State): Sha256 {
    const hash = new Sha256();
    if (state.h.length !== 8) throw new Error("invalid SHA-256 state");
    hash.h.set(state.h);
    const pending = fromBase64(state.pending);
    if (pending.length >= 64 || state.length % 64 !== pending.length) throw new Error("invalid SHA-256 state");
    hash.block.set(pending);
    hash.blockLength = pending.length;
    hash.length = state.length;
    return hash;
  }

  /** Bytes fed so far. */
  get bytesHashed(): number {
    return this.length;
  }

  save(): Sha256State {
    let pending = "";
    for (let i = 0; i < this.blockLength; i++) pending += String.fromCharCode(this.block[i]!);
    return { h: Array.from(this.h, (word) => word >>> 0), length: this.length, pending: btoa(pending) };
  }

  update(data: Uint8Array): void {
    let offset = 0;
    this.length += data.length;
    if (this.blockLength > 0) {
      const take = Math.min(64 - this.blockLength, data.length);
      this.block.set(data.subarray(0, take), this.blockLength);
      this.blockLength += take;
      offset = take;
      if (this.blockLength < 64) return;
      this.compress(this.block, 0, 64);
      this.blockLength = 0;
    }
    const wholeBlocksEnd = offset + Math.floor((data.length - offset) / 64) * 64;
    if (wholeBlocksEnd > offset) this.compress(data, offset, wholeBlocksEnd);
    offset = wholeBlocksEnd;
    if (offset < data.length) {
      this.block.set(data.subarray(offset));
      this.blockLength = data.length - offset;
    }
  }

  /** Finishes the hash and returns the lowercase hex digest; the instance must not be reused. */
  digestHex(): string {
    const bitLength = this.length * 8;
    const padding = new Uint8Array(((this.blockLength < 56 ? 56 : 120) - this.blockLength) + 8);
    padding[0] = 0x80;
    const view = new DataView(padding.buffer);
    view.setUint32(padding.length - 8, Math.floor(bitLength / 0x100000000));
    view.setUint32(padding.length - 4, bitLength >>> 0);
    const length = this.length;
    this.update(padding);
    this.length = length;
    let hex = "";
    for (const word of this.h) hex += (word >>> 0).toString(16).padStart(8, "0");
    return hex;
  }

  /** Hashes the 64-byte blocks in data[start, end); the working words stay in locals across blocks. */
  private compress(data: Uint8Array, start: number, end: number): void {
    const w = this.w;
    const h = this.h;
    let h0 = h[0]!, h1 = h[1]!, h2 = h[2]!, h3 = h[3]!, h4 = h[4]!, h5 = h[5]!, h6 = h[6]!, h7 = h[7]!;
    for (let offset = start; offset < end; offset += 64) {
      for (let i = 0; i < 16; i++) {
        const j = offset + i * 4;
        w[i] = (data[j]! << 24) | (data[j + 1]! << 16) | (data[j + 2]! << 8) | data[j + 3]!;
      }
      for (let i = 16; i < 64; i++) {
        const x = w[i - 15]!;
        const y = w[i - 2]!;
        const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
        const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
        w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0;
      }
      let a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, hh = h7;
      for (let i = 0; i < 64; i++) {
        const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        const ch = (e & f) ^ (~e & g);
        const t1 = (hh + S1 + ch + K[i]! + w[i]!) | 0;
        const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        const maj = (a & b) ^ (a & c) ^ (b & c);
        hh = g;
        g = f;
        f = e;
        e = (d + t1) | 0;
        d = c;
        c = b;
        b = a;
        a = (t1 + S0 + maj) | 0;
      }
      h0 = (h0 + a) | 0;
      h1 = (h1 + b) | 0;
      h2 = (h2 + c) | 0;
      h3 = (h3 + d) | 0;
      h4 = (h4 + e) | 0;
      h5 = (h5 + f) | 0;
      h6 = (h6 + g) | 0;
      h7 = (h7 + hh) | 0;
    }
    h[0] = h0;
    h[1] = h1;
    h[2] = h2;
    h[3] = h3;
    h[4] = h4;
    h[5] = h5;
    h[6] = h6;
    h[7] = h7;
  }
}
