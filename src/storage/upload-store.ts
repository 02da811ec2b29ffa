/**
 * Blob upload sessions in R2 (never KV: KV allows one write per second per key and is eventually
 * consistent, and the earlier Workers registry lost uploads to that).
 *
 * A session's state is written once per offset, to a new object `uploads/<id>/<offset>` whose body
 * is the state JSON, a newline, then the tail bytes not yet flushed to a multipart part. R2 is strongly
 * consistent, so the newest state is the last key of a list. Each write is to a fresh key, so no key is
 * written twice, and a request that dies midway leaves the previous state intact.
 */
import type { Sha256State } from "../crypto/sha256";
import { r2Keys } from "./keys";

export interface UploadState {
  id: string;
  repository: string;
  createdAt: string;
  /** Bytes received so far (parts plus tail). */
  offset: number;
  /** R2 key the blob bytes are written to. */
  blobKey: string;
  /** Set once the first full part was flushed. */
  multipartUploadId?: string;
  parts: R2UploadedPart[];
  /** SHA-256 over every byte received so far (unused while wholeObjectSha256 is set). */
  hash: Sha256State;
  /**
   * Set when the bytes so far arrived in one request and were stored as one complete object at blobKey
   * (registry/uploads.ts receiveBody): their SHA-256, hex. Such a session has no multipart upload and no tail.
   */
  wholeObjectSha256?: string;
}

export interface UploadSession {
  state: UploadState;
  /** Received bytes not yet in a part (fewer than one part). */
  tail: Uint8Array;
}

const NEWLINE = 0x0a;

function encode(session: UploadSession): Uint8Array {
  const header = new TextEncoder().encode(JSON.stringify(session.state) + "\n");
  const body = new Uint8Array(header.length + session.tail.length);
  body.set(header);
  body.set(session.tail, header.length);
  return body;
}

function decode(bytes: Uint8Array): UploadSession {
  const newline = bytes.indexOf(NEWLINE);
  const state = JSON.parse(new TextDecoder().decode(bytes.subarray(0, newline))) as UploadState;
  return { state, tail: bytes.slice(newline + 1) };
}

export class UploadStore {
  constructor(private readonly bucket: R2Bucket) {}

  /** The newest state of a session, or null for an unknown, finished or cancelled one. */
  async load(id: string): Promise<UploadSession | null> {
    const listing = await this.bucket.list({ prefix: r2Keys.uploadStatePrefix(id) });
    const newest = listing.objects.at(-1);
    if (!newest) return null;
    const object = await this.bucket.get(newest.key);
    if (!object) return null;
    return decode(new Uint8Array(await object.arrayBuffer()));
  }

  /** Writes the session's state at its offset, then drops older states. */
  async save(session: UploadSession): Promise<void> {
    const { id, offset } = session.state;
    await this.bucket.put(r2Keys.uploadState(id, offset), encode(session));
    const listing = await this.bucket.list({ prefix: r2Keys.uploadStatePrefix(id) });
    const current = r2Keys.uploadState(id, offset);
    const stale = listing.objects.map((object) => object.key).filter((key) => key !== current);
    if (stale.length > 0) await this.bucket.delete(stale);
  }

  /** Removes every state object of a session. */
  async delete(id: string): Promise<void> {
    const listing = await this.bucket.list({ prefix: r2Keys.uploadStatePrefix(id) });
    if (listing.objects.length > 0) await this.bucket.delete(listing.objects.map((object) => object.key));
  }
}
