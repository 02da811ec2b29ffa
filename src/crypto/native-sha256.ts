/**
 * SHA-256 by WebCrypto's DigestStream (native, about ten times the JS implementation's speed here) for
 * bytes that all arrive within one request: its state cannot be saved, so it cannot span requests.
 */
import { toHex } from "./bytes";

export class NativeSha256 {
  private readonly stream = new crypto.DigestStream("SHA-256");
  private readonly writer = this.stream.getWriter();

  constructor() {
    // Observed by digestHex(); a request that fails first must not leave these rejections unhandled.
    for (const settled of [this.stream.digest, this.writer.closed]) settled.catch(() => undefined);
  }

  /** Hashes the bytes before it resolves, so the caller may reuse the buffer afterwards. */
  async update(data: Uint8Array): Promise<void> {
    await this.writer.write(data);
  }

  /** Finishes the hash; the instance must not be used afterwards. */
  async digestHex(): Promise<string> {
    await this.writer.close();
    return toHex(await this.stream.digest);
  }

  /** Drops an unfinished hash. */
  async abort(): Promise<void> {
    await this.writer.abort().catch(() => undefined);
  }
}
