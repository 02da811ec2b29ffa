/**
 * An upload session's state, kept by the repository ledger (storage/repository-ledger.ts). The bytes
 * themselves are in R2: parts of a multipart upload or one complete object at `blobKey`, and a tail of fewer
 * than one part's bytes in an object of its own (`tailKey`, a fresh key per saved state).
 */
import type { Sha256State } from "../crypto/sha256";

export interface UploadState {
  id: string;
  repository: string;
  createdAt: string;
  /** Bytes received so far (parts, or the one object, plus tail). */
  offset: number;
  /** R2 key the blob bytes are written to. */
  blobKey: string;
  /** Set once the first full part was flushed. */
  multipartUploadId?: string;
  parts: R2UploadedPart[];
  /** SHA-256 over every byte received so far (unused while wholeObjectSha256 is set). */
  hash: Sha256State;
  /**
   * Set when the bytes so far arrived in one request and were stored as one complete object at blobKey:
   * their SHA-256, hex. Such a session has no multipart upload and no tail.
   */
  wholeObjectSha256?: string;
  /** R2 key of the tail bytes not yet in a part; absent when there are none. */
  tailKey?: string;
}

/** A session as a request works on it: its state and its tail bytes. */
export interface UploadSession {
  state: UploadState;
  tail: Uint8Array;
}

/** Deletes a session's stored bytes: its multipart upload, its one object and its tail. */
export async function discardUploadBytes(bucket: R2Bucket, state: UploadState): Promise<void> {
  if (state.multipartUploadId) await bucket.resumeMultipartUpload(state.blobKey, state.multipartUploadId).abort().catch(() => undefined);
  const objects = [state.wholeObjectSha256 !== undefined ? state.blobKey : undefined, state.tailKey].filter((key): key is string => key !== undefined);
  if (objects.length > 0) await bucket.delete(objects);
}

/**
 * Custom metadata of every blob object an upload writes (R2 `blobs/<id>`): who wrote it, so the orphan sweep
 * can ask that repository's ledger whether a session or a blob record still needs it (docs/lifecycle.md).
 */
export function blobObjectMetadata(state: Pick<UploadState, "id" | "repository">): Record<string, string> {
  return { repository: state.repository, upload: state.id };
}
