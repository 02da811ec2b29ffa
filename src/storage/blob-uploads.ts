/**
 * Upload byte handling behind one interface (receive, save, finish, cancel): registry handlers call it and
 * never touch R2 or build keys. Session state is kept by the repository ledger; bytes are in R2.
 *
 * Invariants (issue: cross-tenant blob poisoning), each enforced where noted:
 * - A session's changes apply one at a time, in order: every request claims the session first and may save
 *   only while its claim is the newest (RepositoryLedger.claimUpload/saveUpload).
 * - A finished or cancelled session can never be continued: closeUpload ends it before any of its bytes
 *   are completed, linked or deleted, and only the request holding the newest claim can close it.
 * - Bytes a blob record points at are never deleted: a request deletes only objects it wrote itself and no
 *   record names, or objects of a session it alone has closed or whose newer state it alone has saved;
 *   only the closer of a session claims its bytes in the blob index.
 * - Garbage collection never frees bytes a repository links (docs/lifecycle.md): the claim adds the
 *   repository to the digest's links in the blob index before the ledger commits the link (settle), and
 *   the index deletes bytes only after removing the record, so a claim racing it wins a fresh record.
 */
import { BlobIndex, blobIndexFor, type BlobRecord } from "./blob-index";
import { BlobWriter, BodyReadError } from "./blob-writer";
import { r2Keys } from "./keys";
import { ABANDONED_UPLOAD_MS, ledgerFor, type RepositoryLedger, type UploadChange } from "./repository-ledger";
import { putStreamedObject } from "./streamed-object";
import { Sha256 } from "../crypto/sha256";
import { uploadStorageConfig, type UploadStorageConfig } from "../config/config";
import { discardUploadBytes, type UploadSession, type UploadState } from "./upload-state";

export { BlobTooLargeError, BodyReadError } from "./blob-writer";

/** The session was finished, cancelled or never existed in this repository. */
export class UploadUnknownError extends Error {
  override name = "UploadUnknownError";
}

/** A newer request on the same session claimed it while this one was receiving bytes. */
export class UploadSupersededError extends Error {
  override name = "UploadSupersededError";
}

/** The received bytes do not hash to the digest the client named; the session is gone. */
export class DigestMismatchError extends Error {
  override name = "DigestMismatchError";
  constructor(readonly actual: string) {
    super(`received bytes hash to ${actual}`);
  }
}

/** One request's hold on a session: the state it claimed, and what it received (not yet saved). */
export interface UploadHandle {
  repository: string;
  lease: string;
  session: UploadSession;
  /** The tail object of the claimed state: the next saved state no longer needs it. */
  claimedTail?: string;
  /** Set by receive(): a resumable writer holding the new bytes. */
  writer?: BlobWriter;
  /** Objects this request wrote that no saved state names yet (deleted if it loses its claim). */
  written: string[];
  /** An object the new state no longer needs (a first request's object copied into parts). */
  replaced?: string;
}

/** What a request body may carry into a session. */
export interface BodyLimits {
  /** Content-Length as declared, if any. */
  declaredLength?: number;
  /** Most bytes accepted (the Content-Range length, else the declared length). */
  maxBytes: number;
}

/** Slack past the ledger's abandonment time before a tail object counts as orphaned. */
const ORPHAN_TAIL_MARGIN_MS = 3600 * 1000;

function newState(repository: string): UploadState {
  const id = crypto.randomUUID();
  return {
    id,
    repository,
    createdAt: new Date().toISOString(),
    offset: 0,
    blobKey: r2Keys.blobData(id),
    parts: [],
    hash: new Sha256().save(),
  };
}

export class BlobUploads {
  constructor(
    private readonly bucket: R2Bucket,
    private readonly ledgers: DurableObjectNamespace<RepositoryLedger>,
    private readonly blobIndex: DurableObjectNamespace<BlobIndex>,
    /** Part size and single-put bound; the defaults are production's (config/config.ts). */
    private readonly storage: UploadStorageConfig = uploadStorageConfig({}),
  ) {}

  /** Starts a session, claimed by the calling request. */
  async start(repository: string): Promise<UploadHandle> {
    const state = newState(repository);
    const lease = crypto.randomUUID();
    await this.ledger(repository).createUpload(repository, state, lease);
    return { repository, lease, session: { state, tail: new Uint8Array(0) }, written: [] };
  }

  /** Claims an open session for this request, or throws UploadUnknownError. */
  async claim(repository: string, id: string): Promise<UploadHandle> {
    const claimed = await this.ledger(repository).claimUpload(id, crypto.randomUUID());
    if (!claimed) throw new UploadUnknownError(id);
    const tail = claimed.state.tailKey ? await this.bucket.get(claimed.state.tailKey) : null;
    if (claimed.state.tailKey && !tail) throw new Error(`upload ${id}: tail object ${claimed.state.tailKey} is missing`);
    const session = { state: claimed.state, tail: tail ? new Uint8Array(await tail.arrayBuffer()) : new Uint8Array(0) };
    return { repository, lease: claimed.lease, session, claimedTail: claimed.state.tailKey, written: [] };
  }

  /** An open session's state without claiming it (upload status). */
  async status(repository: string, id: string): Promise<UploadState> {
    const state = await this.ledger(repository).getUpload(id);
    if (!state) throw new UploadUnknownError(id);
    return state;
  }

  /**
   * Receives a request body into the session (nothing is saved yet). The first request of a session is
   * stored as one complete object under a fresh key, hashed natively: streamed into one put where its length
   * is declared, else through multipart parts completed within the request. This is the whole upload for
   * podman, skopeo, docker and containerd. Later requests go through BlobWriter's multipart parts and
   * resumable SHA-256; the first request's object is copied into a fresh multipart upload once.
   */
  async receive(handle: UploadHandle, body: ReadableStream<Uint8Array> | null, limits: BodyLimits): Promise<void> {
    const session = handle.session;
    const hasBody = body !== null && limits.declaredLength !== 0;
    if (session.state.offset === 0 && session.state.wholeObjectSha256 === undefined && hasBody) {
      const blobKey = r2Keys.blobData(crypto.randomUUID());
      handle.written.push(blobKey);
      const stored = await this.receiveOneObject(blobKey, body, limits);
      handle.session = { state: { ...session.state, blobKey, offset: stored.size, wholeObjectSha256: stored.sha256 }, tail: new Uint8Array(0) };
      return;
    }
    if (!hasBody && session.state.wholeObjectSha256 !== undefined) return;
    let writer = new BlobWriter(this.bucket, session, this.storage.partBytes);
    try {
      if (session.state.wholeObjectSha256 !== undefined) {
        handle.replaced = session.state.blobKey;
        writer = await this.copyIntoWriter(session);
      }
      if (hasBody) {
        const received = await writer.append(body, limits.maxBytes);
        if (limits.declaredLength !== undefined && received < limits.declaredLength) {
          throw new BodyReadError(`got ${received} of ${limits.declaredLength} bytes`);
        }
      }
    } catch (error) {
      await writer.abandon();
      throw error;
    }
    handle.writer = writer;
    handle.session = writer.snapshot();
  }

  /** Saves what this request received as the session's new state; throws if a newer request claimed it. */
  async save(handle: UploadHandle): Promise<UploadState> {
    const state = { ...handle.session.state };
    delete state.tailKey;
    if (handle.session.tail.length > 0) {
      state.tailKey = r2Keys.uploadTail(state.id, handle.lease);
      await this.bucket.put(state.tailKey, handle.session.tail);
      handle.written.push(state.tailKey);
    }
    const change = await this.ledger(handle.repository).saveUpload(state.id, handle.lease, state);
    if (change !== "ok") {
      await this.dropWritten(handle);
      throw changeError(change, state.id);
    }
    // The saved state names none of these any more; no blob record can name them (only a closer claims).
    await this.deleteObjects([handle.claimedTail, handle.replaced]);
    return state;
  }

  /**
   * Finishes the session as blob `digest` (`sha256:<hex>`): closes it, completes its bytes, records them in
   * the blob index (the first upload of a digest wins; a later one is deleted) and links the blob into the
   * repository. Throws DigestMismatchError (the session is then gone) or a claim error.
   */
  async finish(handle: UploadHandle, digest: string): Promise<BlobRecord> {
    const state = handle.session.state;
    if (!handle.writer && state.wholeObjectSha256 === undefined) throw new Error("finish() needs receive() first");
    const actual = `sha256:${handle.writer ? await handle.writer.digestHex() : state.wholeObjectSha256}`;
    const { tailKey: _tail, ...finalState } = state;
    const finishing = actual === digest ? { digest, state: finalState } : undefined;
    const change = await this.ledger(handle.repository).closeUpload(state.id, handle.lease, finishing);
    if (change !== "ok") {
      await this.dropWritten(handle);
      throw changeError(change, state.id);
    }
    if (actual !== digest) {
      // The session is closed: its bytes, old and new, are this request's alone to delete.
      await handle.writer?.discard();
      await this.deleteObjects([state.wholeObjectSha256 !== undefined ? state.blobKey : undefined, handle.replaced, handle.claimedTail, ...handle.written]);
      throw new DigestMismatchError(actual);
    }
    await handle.writer?.commit(digest.slice("sha256:".length));
    const record = await this.settle(handle.repository, state.id, digest, { key: state.blobKey, size: state.offset });
    await this.deleteObjects([handle.replaced, handle.claimedTail]);
    return record;
  }

  /** Cancels a session and deletes its bytes; throws UploadUnknownError for an unknown one. */
  async cancel(repository: string, id: string): Promise<void> {
    const handle = await this.claim(repository, id);
    const change = await this.ledger(repository).closeUpload(id, handle.lease);
    if (change !== "ok") throw changeError(change, id);
    await discardUploadBytes(this.bucket, handle.session.state);
  }

  /**
   * Records closed bytes in the blob index and links the blob: the first complete upload of a digest wins;
   * bytes that lose are deleted (no record names them). Public so tests can force interleavings with GC.
   */
  async settle(repository: string, id: string, digest: string, candidate: BlobRecord): Promise<BlobRecord> {
    // The blob index lists this repository among the digest's links before the ledger commits the link, so
    // garbage collection never frees bytes a ledger links (storage/blob-index.ts).
    const record = await blobIndexFor(this.blobIndex, digest).claim(candidate, repository);
    await this.ledger(repository).finishUpload(repository, id, digest, record);
    if (record.key !== candidate.key) await this.bucket.delete(candidate.key);
    return { key: record.key, size: record.size };
  }

  /**
   * Deletes tail objects older than any live session could have (run by the cron trigger): each saved state
   * writes a fresh tail and the ledger drops sessions idle for ABANDONED_UPLOAD_MS, so an older tail belongs
   * to no session (a request that died between writing its tail and saving its state).
   */
  async sweepOrphanTails(now = Date.now()): Promise<number> {
    const cutoff = now - ABANDONED_UPLOAD_MS - ORPHAN_TAIL_MARGIN_MS;
    let cursor: string | undefined;
    let deleted = 0;
    do {
      const page = await this.bucket.list({ prefix: r2Keys.uploadsPrefix, cursor });
      const stale = page.objects.filter((object) => object.uploaded.getTime() < cutoff).map((object) => object.key);
      if (stale.length > 0) await this.bucket.delete(stale);
      deleted += stale.length;
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
    return deleted;
  }

  private ledger(repository: string): DurableObjectStub<RepositoryLedger> {
    return ledgerFor(this.ledgers, repository);
  }

  private async receiveOneObject(key: string, body: ReadableStream<Uint8Array>, limits: BodyLimits): Promise<{ sha256: string; size: number }> {
    const declared = limits.declaredLength;
    // platform.md §4: one put holds at most 5 GiB − 5 MiB; a longer declared body goes to multipart parts.
    if (declared !== undefined && declared > 0 && declared === limits.maxBytes && declared <= this.storage.singlePutMaxBytes) {
      return { sha256: await putStreamedObject(this.bucket, key, body, declared), size: declared };
    }
    // No usable length (a layer compressed on the fly), or too long for one put: multipart parts completed
    // within this request.
    const writer = new BlobWriter(this.bucket, { state: { ...newState(""), blobKey: key }, tail: new Uint8Array(0) }, this.storage.partBytes, "native");
    try {
      const size = await writer.append(body, limits.maxBytes);
      if (declared !== undefined && size < declared) throw new BodyReadError(`got ${size} of ${declared} bytes`);
      const sha256 = await writer.digestHex();
      await writer.commit(sha256);
      return { sha256, size };
    } catch (error) {
      await writer.abandon();
      throw error;
    }
  }

  /** Moves a session's one-object bytes into a new multipart upload (fresh key), rehashing them resumably. */
  private async copyIntoWriter(session: UploadSession): Promise<BlobWriter> {
    const object = await this.bucket.get(session.state.blobKey);
    if (!object) throw new Error(`upload ${session.state.id}: stored object ${session.state.blobKey} is missing`);
    const { wholeObjectSha256: _dropped, ...state } = session.state;
    const writer = new BlobWriter(
      this.bucket,
      {
        state: { ...state, offset: 0, blobKey: r2Keys.blobData(crypto.randomUUID()), multipartUploadId: undefined, parts: [], hash: new Sha256().save() },
        tail: new Uint8Array(0),
      },
      this.storage.partBytes,
    );
    try {
      await writer.append(object.body);
    } catch (error) {
      await writer.abandon();
      throw error;
    }
    return writer;
  }

  /** After losing the claim: drops what this request wrote, never what a saved state names. */
  private async dropWritten(handle: UploadHandle): Promise<void> {
    await handle.writer?.abandon();
    await this.deleteObjects(handle.written);
  }

  private async deleteObjects(keys: (string | undefined)[]): Promise<void> {
    const present = [...new Set(keys.filter((key): key is string => key !== undefined))];
    if (present.length > 0) await this.bucket.delete(present);
  }
}

function changeError(change: Exclude<UploadChange, "ok">, id: string): Error {
  return change === "gone" ? new UploadUnknownError(id) : new UploadSupersededError(id);
}
