/**
 * Streams upload bytes into R2 with bounded memory: bytes are cut into fixed-size multipart parts (R2
 * wants every part but the last the same size, ≥ 5 MiB) and each part is hashed while it uploads, so
 * request bodies of any length, with or without Content-Length, are accepted. Memory stays at about one part.
 * The hash is resumable (saved with the session, for bytes spread over requests) or native (DigestStream,
 * for bytes committed within the request that received them).
 */
import { DEFAULT_UPLOAD_PART_BYTES } from "../config/config";
import { NativeSha256 } from "../crypto/native-sha256";
import { Sha256 } from "../crypto/sha256";
import { blobObjectMetadata, type UploadSession } from "./upload-state";

/** 16 MiB parts (the default of UPLOAD_PART_BYTES): R2's 10,000-part limit then allows blobs up to 156 GiB. */
export const PART_SIZE = DEFAULT_UPLOAD_PART_BYTES;
/** platform.md §4: at most 10,000 parts. */
const MAX_PARTS = 10_000;
/** Most bytes one read asks for. */
export const READ_RUN_BYTES = 1024 * 1024;
export const BLOB_HTTP_METADATA: R2HTTPMetadata = { contentType: "application/octet-stream" };

export class BlobTooLargeError extends Error {
  override name = "BlobTooLargeError";
}

/** The request body failed mid-stream (the client disconnected or sent a broken chunked body). */
export class BodyReadError extends Error {
  override name = "BodyReadError";
}

/**
 * Reads `body` with a BYOB reader in runs of up to READ_RUN_BYTES (workerd's readAtLeast), so a body that
 * arrives in 4 KiB pieces costs a few hundred reads, not 100,000+. `into` gives the view each run fills;
 * `run` receives it, filled (the reader transfers the buffer, even on the last, empty read: adopt this one).
 * Returns the bytes read; a body past `maxBytes` is BlobTooLargeError, a broken or cancelled one BodyReadError.
 */
export async function readInRuns(
  body: ReadableStream<Uint8Array>,
  into: () => Uint8Array,
  run: (bytes: Uint8Array) => Promise<void> | void,
  maxBytes = Number.POSITIVE_INFINITY,
): Promise<number> {
  const reader = body.getReader({ mode: "byob" });
  let received = 0;
  try {
    for (;;) {
      const view = into();
      const { done, value } = await reader.readAtLeast(view.length, view).catch((error: unknown) => {
        throw new BodyReadError(error instanceof Error ? error.message : String(error));
      });
      if (!value) throw new BodyReadError("request body was cancelled");
      received += value.length;
      if (received > maxBytes) throw new BlobTooLargeError("body longer than declared");
      await run(value);
      if (done) return received;
    }
  } finally {
    reader.releaseLock();
  }
}

export class BlobWriter {
  /** Resumable (saved with the session) unless the writer was made to commit within one request. */
  private readonly hash: Sha256 | NativeSha256;
  private buffer: Uint8Array;
  private filled: number;
  /** Bytes of the buffer already fed to the hash (the carried-over tail was hashed by its request). */
  private hashed: number;
  /** Whether this request created the multipart upload (no saved state knows it yet). */
  private createdMultipart = false;

  constructor(
    private readonly bucket: R2Bucket,
    private readonly session: UploadSession,
    private readonly partSize = PART_SIZE,
    /** "native": the bytes are committed in the same request, so hash with DigestStream; no snapshot() then. */
    hashing: "resumable" | "native" = "resumable",
  ) {
    this.hash = hashing === "native" ? new NativeSha256() : Sha256.resume(session.state.hash);
    this.buffer = new Uint8Array(partSize);
    this.buffer.set(session.tail);
    this.filled = session.tail.length;
    this.hashed = this.filled;
  }

  /**
   * Appends a stream; returns the bytes it carried. Stops with an error past `maxBytes`.
   * Bytes are read straight into the part buffer (readInRuns).
   */
  async append(body: ReadableStream<Uint8Array>, maxBytes = Number.POSITIVE_INFINITY): Promise<number> {
    const received = await readInRuns(
      body,
      () => new Uint8Array(this.buffer.buffer, this.filled, Math.min(this.partSize - this.filled, READ_RUN_BYTES)),
      async (run) => {
        this.buffer = new Uint8Array(run.buffer, 0, this.partSize);
        this.filled += run.length;
        if (this.filled === this.partSize) await this.flushPart();
      },
      maxBytes,
    );
    await this.hashPending(this.filled);
    this.session.state.offset += received;
    return received;
  }

  /** The session as it stands after the appended bytes, ready to be saved. */
  snapshot(): UploadSession {
    if (this.hash instanceof NativeSha256) throw new Error("a natively hashed upload cannot be resumed: commit it instead");
    return {
      state: { ...this.session.state, hash: this.hash.save() },
      tail: this.buffer.slice(0, this.filled),
    };
  }

  /** The hex SHA-256 of everything received; call once, after the last append. */
  async digestHex(): Promise<string> {
    return this.hash.digestHex();
  }

  /** Writes the remaining tail and makes the blob object visible at `state.blobKey`. */
  async commit(sha256Hex: string): Promise<void> {
    const state = this.session.state;
    const tail = this.buffer.subarray(0, this.filled);
    if (!state.multipartUploadId) {
      // Smaller than one part (which is within the single-put limit): a single put, which R2 verifies against the digest too.
      await this.bucket.put(state.blobKey, tail, { httpMetadata: BLOB_HTTP_METADATA, customMetadata: blobObjectMetadata(state), sha256: sha256Hex });
      return;
    }
    const upload = this.bucket.resumeMultipartUpload(state.blobKey, state.multipartUploadId);
    if (tail.length > 0) state.parts.push(await upload.uploadPart(state.parts.length + 1, tail));
    await upload.complete(state.parts);
  }

  /**
   * After a failed request: a multipart upload this request created is known to no saved state, so it is
   * aborted rather than leaked; one from an earlier request stays, for the client to resume.
   */
  async abandon(): Promise<void> {
    if (this.hash instanceof NativeSha256) await this.hash.abort();
    if (this.createdMultipart) await this.discard().catch(() => undefined);
  }

  /** Aborts the multipart upload, leaving no object behind. */
  async discard(): Promise<void> {
    const { blobKey, multipartUploadId } = this.session.state;
    if (multipartUploadId) await this.bucket.resumeMultipartUpload(blobKey, multipartUploadId).abort();
  }

  /**
   * Uploads the full buffer as the next part and hashes its unhashed bytes while the upload is in flight.
   * The request body is not read again until the part is stored: reading the body while a subrequest
   * is in flight made local workerd reset the client connection after large uploads.
   */
  private async flushPart(): Promise<void> {
    const state = this.session.state;
    if (state.parts.length + 1 > MAX_PARTS - 1) throw new BlobTooLargeError("blob exceeds the registry's size limit");
    if (!state.multipartUploadId) {
      const upload = await this.bucket.createMultipartUpload(state.blobKey, { httpMetadata: BLOB_HTTP_METADATA, customMetadata: blobObjectMetadata(state) });
      state.multipartUploadId = upload.uploadId;
      this.createdMultipart = true;
    }
    const upload = this.bucket.resumeMultipartUpload(state.blobKey, state.multipartUploadId);
    const uploading = upload.uploadPart(state.parts.length + 1, this.buffer);
    // Observed below; a hash failure first must not leave this rejection unhandled.
    uploading.catch(() => undefined);
    await this.hashPending(this.partSize);
    state.parts.push(await uploading);
    this.buffer = new Uint8Array(this.partSize);
    this.filled = 0;
    this.hashed = 0;
  }

  /** Feeds buffer bytes [hashed, end) to the hash. */
  private async hashPending(end: number): Promise<void> {
    if (end > this.hashed) await this.hash.update(this.buffer.subarray(this.hashed, end));
    this.hashed = end;
  }
}
