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
import { recordLifecycleAction } from "./audit-log";
import { BlobIndex, blobIndexFor, type BlobRecord } from "./blob-index";
import { BlobTooLargeError, BlobWriter, BodyReadError } from "./blob-writer";
import { r2Keys } from "./keys";
import { QuotaExceededError } from "./namespace-usage";
import { ABANDONED_UPLOAD_MS, ledgerFor, namespaceHolderFor, type RepositoryLedger, type UploadChange } from "./repository-ledger";
import { putStreamedObject } from "./streamed-object";
import { Sha256 } from "../crypto/sha256";
import { uploadStorageConfig, type UploadStorageConfig } from "../config/config";
import { blobObjectMetadata, discardUploadBytes, type UploadSession, type UploadState } from "./upload-state";

export { BlobTooLargeError, BodyReadError } from "./blob-writer";
export { QuotaExceededError } from "./namespace-usage";

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
/** Ledger checks per orphan sweep (each one Durable Object request, some a blob index request too). */
const ORPHAN_CHECKS_PER_RUN = 100;
/** `blobs/` list pages per orphan sweep (R2 lists ≤ 1,000 keys per call, platform.md §4). */
const ORPHAN_PAGES_PER_RUN = 10;

/** What one orphan sweep did. */
export interface OrphanSweepReport {
  /** Objects old enough that their writer's ledger was asked about them. */
  checked: number;
  /** Orphans deleted, and their bytes. */
  deleted: number;
  deletedBytes: number;
  /** Objects found named by a blob record (marked: not asked about again). */
  marked: number;
  /** The sweep reached the end of `blobs/` (the next one starts over). */
  wrapped: boolean;
}

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
  async receive(handle: UploadHandle, body: ReadableStream<Uint8Array> | null, bodyLimits: BodyLimits, digest?: string): Promise<void> {
    const hasBody = body !== null && bodyLimits.declaredLength !== 0;
    // The namespace's quota, before a byte is stored (docs/lifecycle.md "Quotas and usage").
    const limits = hasBody ? await this.reserve(handle, bodyLimits, digest) : { ...bodyLimits, beyond: undefined };
    try {
      await this.receiveBody(handle, body, limits, hasBody);
    } catch (error) {
      // Nothing of this body is kept: the reservation shrinks back to what the session holds, so a refused or
      // broken request does not hold the namespace's room until the session is abandoned.
      if (hasBody) await this.shrinkReservation(handle).catch(() => undefined);
      // A body of undeclared length capped at the quota's room: its next byte is the quota's refusal.
      if (error instanceof BlobTooLargeError && limits.beyond) throw new QuotaExceededError(limits.beyond);
      throw error;
    }
  }

  /**
   * Reserves the session's bytes after this body in its namespace's quota: exactly the declared length (the
   * request is refused when it does not fit), or for a body of undeclared length as much as fits, the body
   * being capped there. With the digest known (a single-request upload), bytes the namespace holds cost nothing.
   */
  private async reserve(handle: UploadHandle, limits: BodyLimits, digest?: string): Promise<BodyLimits & { beyond?: QuotaExceededError["denial"] }> {
    const offset = handle.session.state.offset;
    const declared = limits.declaredLength !== undefined;
    const reserved = await this.holder(handle.repository).reserveNamespaceBytes({
      repository: handle.repository,
      id: handle.session.state.id,
      minBytes: declared ? offset + limits.maxBytes : offset,
      maxBytes: offset + limits.maxBytes,
      ...(declared && digest !== undefined ? { digest } : {}),
    });
    if (!reserved.ok) throw new QuotaExceededError(reserved.denial);
    if (reserved.grantedBytes >= offset + limits.maxBytes) return limits;
    return { ...limits, maxBytes: reserved.grantedBytes - offset, beyond: reserved.beyond };
  }

  /** The session's reservation back to the bytes it has saved (none: released). */
  private async shrinkReservation(handle: UploadHandle): Promise<void> {
    const { id, offset } = handle.session.state;
    const holder = this.holder(handle.repository);
    if (offset === 0) await holder.releaseNamespaceReservation(id);
    else await holder.reserveNamespaceBytes({ repository: handle.repository, id, minBytes: 0, maxBytes: offset });
  }

  private async receiveBody(handle: UploadHandle, body: ReadableStream<Uint8Array> | null, limits: BodyLimits, hasBody: boolean): Promise<void> {
    const session = handle.session;
    // (hasBody implies a body: receive() decided it.)
    if (session.state.offset === 0 && session.state.wholeObjectSha256 === undefined && hasBody) {
      const blobKey = r2Keys.blobData(crypto.randomUUID());
      handle.written.push(blobKey);
      const stored = await this.receiveOneObject(blobKey, body!, limits, session.state);
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
        const received = await writer.append(body!, limits.maxBytes);
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
    if (actual === digest) {
      // The final quota check: the blob's exact size, pinned to its digest (free if the namespace holds it).
      const reserved = await this.holder(handle.repository).reserveNamespaceBytes({
        repository: handle.repository,
        id: state.id,
        minBytes: state.offset,
        maxBytes: state.offset,
        digest,
      });
      if (!reserved.ok) {
        await this.closeAndDiscard(handle);
        throw new QuotaExceededError(reserved.denial);
      }
    }
    const finishing = actual === digest ? { digest, state: finalState } : undefined;
    const change = await this.ledger(handle.repository).closeUpload(state.id, handle.lease, finishing);
    if (change !== "ok") {
      await this.dropWritten(handle);
      throw changeError(change, state.id);
    }
    if (actual !== digest) {
      await this.discardClosed(handle);
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
    await this.holder(repository).releaseNamespaceReservation(id);
  }

  /** Ends a received session without a blob (the quota refused its finish): closed, bytes deleted, reservation released. */
  private async closeAndDiscard(handle: UploadHandle): Promise<void> {
    const change = await this.ledger(handle.repository).closeUpload(handle.session.state.id, handle.lease);
    if (change !== "ok") {
      await this.dropWritten(handle);
      throw changeError(change, handle.session.state.id);
    }
    await this.discardClosed(handle);
  }

  /** After this request closed its session without a blob: its bytes, old and new, are this request's alone to delete. */
  private async discardClosed(handle: UploadHandle): Promise<void> {
    const state = handle.session.state;
    await handle.writer?.discard();
    await this.deleteObjects([state.wholeObjectSha256 !== undefined ? state.blobKey : undefined, handle.replaced, handle.claimedTail, ...handle.written]);
    await this.holder(handle.repository).releaseNamespaceReservation(state.id);
  }

  /**
   * Records closed bytes in the blob index and links the blob: the first complete upload of a digest wins;
   * bytes that lose are deleted (no record names them). Public so tests can force interleavings with GC.
   */
  async settle(repository: string, id: string, digest: string, candidate: BlobRecord): Promise<BlobRecord> {
    // The blob index lists this repository among the digest's links before the ledger commits the link, so
    // garbage collection never frees bytes a ledger links (storage/blob-index.ts).
    const record = await blobIndexFor(this.blobIndex, digest).claim(candidate, repository);
    // Likewise the namespace's usage counts the link before the ledger commits it; its reservation goes.
    await this.holder(repository).commitNamespaceLink(repository, digest, record.seq, record.size, id);
    await this.ledger(repository).finishUpload(repository, id, digest, record, candidate.key);
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

  /**
   * The cron trigger's sweep of objects left by requests that died (orphaned tails, then blob objects), with
   * one audit record per run that deleted anything (`gc.orphans`, actor `gc`: counts and bytes).
   */
  async sweepAfterCrashes(options: { graceMs: number; now?: number }, auditKv: KVNamespace): Promise<{ tails: number; blobs: OrphanSweepReport }> {
    const tails = await this.sweepOrphanTails(options.now);
    const blobs = await this.sweepOrphanBlobObjects(options);
    if (tails > 0 || blobs.deleted > 0) {
      await recordLifecycleAction(auditKv, {
        action: "gc.orphans",
        detail: `deleted ${blobs.deleted} orphaned blob objects (${blobs.deletedBytes} bytes) and ${tails} orphaned upload tails; checked ${blobs.checked} objects`,
      });
    }
    return { tails, blobs };
  }

  /**
   * Deletes blob objects (`blobs/<id>`) a request wrote and died before recording anywhere (run by the cron
   * trigger, docs/lifecycle.md "Objects left by crashed requests"). Each object names the repository and the
   * upload session that wrote it (its custom metadata); one older than any live session (ABANDONED_UPLOAD_MS
   * plus slack) and than the GC grace period is deleted only if that repository's ledger holds neither the
   * session (open or finishing) nor a blob record it won that still names the object (`claimed_objects`,
   * checked with the blob index). Recording happens within one ledger call of the write, so an object that
   * old with no record has none to come. Objects without metadata (written before it was set) are never
   * touched. One found referenced gets a marker (r2Keys.referencedBlob), so later sweeps skip it.
   *
   * Bounded per run: at most ORPHAN_CHECKS_PER_RUN ledger checks and ORPHAN_PAGES_PER_RUN list pages, resuming
   * where the previous run stopped (r2Keys.orphanSweepPosition) and starting over at the end.
   */
  async sweepOrphanBlobObjects(options: { graceMs: number; now?: number }): Promise<OrphanSweepReport> {
    const now = options.now ?? Date.now();
    const cutoff = now - Math.max(ABANDONED_UPLOAD_MS + ORPHAN_TAIL_MARGIN_MS, options.graceMs);
    const saved = await this.bucket.get(r2Keys.orphanSweepPosition);
    let position = saved ? await saved.text() : undefined;
    const report: OrphanSweepReport = { checked: 0, deleted: 0, deletedBytes: 0, marked: 0, wrapped: false };
    let cursor: string | undefined;
    pages: for (let page = 0; page < ORPHAN_PAGES_PER_RUN; page++) {
      // `include` (honoured since compatibility date 2022-08-04, platform.md §2) is missing from the types.
      const options: R2ListOptions = cursor === undefined ? { prefix: r2Keys.blobsPrefix, startAfter: position } : { prefix: r2Keys.blobsPrefix, cursor };
      const listing = await this.bucket.list({ ...options, include: ["customMetadata"] } as R2ListOptions);
      cursor = listing.truncated ? listing.cursor : undefined;
      const markers = await this.markersAfter(position);
      for (const object of listing.objects) {
        const owner = object.customMetadata;
        const candidate = object.uploaded.getTime() < cutoff && owner?.repository !== undefined && owner.upload !== undefined && !markers.has(object.key);
        if (candidate) {
          if (report.checked >= ORPHAN_CHECKS_PER_RUN) break pages;
          report.checked += 1;
          const verdict = await this.orphanVerdict(object.key, owner.repository!, owner.upload!);
          if (verdict === "orphan") {
            await this.bucket.delete(object.key);
            report.deleted += 1;
            report.deletedBytes += object.size;
          } else if (verdict === "referenced") {
            await this.bucket.put(r2Keys.referencedBlob(object.key), new Uint8Array(0));
            report.marked += 1;
          }
        }
        position = object.key;
      }
      if (!listing.truncated) {
        position = undefined;
        report.wrapped = true;
        break;
      }
    }
    if (position === undefined) await this.bucket.delete(r2Keys.orphanSweepPosition);
    else await this.bucket.put(r2Keys.orphanSweepPosition, position);
    return report;
  }

  /** Markers of blob objects after `position` (one list page: an object past it is simply checked again). */
  private async markersAfter(position: string | undefined): Promise<Set<string>> {
    const prefix = r2Keys.referencedPrefix;
    const listing = await this.bucket.list({ prefix: `${prefix}${r2Keys.blobsPrefix}`, startAfter: position === undefined ? undefined : r2Keys.referencedBlob(position) });
    return new Set(listing.objects.map((object) => object.key.slice(prefix.length)));
  }

  /**
   * Whether a blob object is in use ("session": its upload session is still open or finishing), named by the
   * blob record its session won ("referenced"), no longer named by it ("released": the record was collected or
   * another upload won; the blob index deletes its own bytes, so this run leaves it and forgets the claim), or
   * needed by nothing ("orphan").
   */
  private async orphanVerdict(key: string, repository: string, upload: string): Promise<"session" | "referenced" | "released" | "orphan"> {
    const ledger = this.ledger(repository);
    const reference = await ledger.objectReference(upload, key);
    if (reference.session) return "session";
    if (reference.digest === null) return "orphan";
    const record = await blobIndexFor(this.blobIndex, reference.digest).get();
    if (record?.key === key) return "referenced";
    await ledger.forgetClaimedObject(key);
    return "released";
  }

  private ledger(repository: string): DurableObjectStub<RepositoryLedger> {
    return ledgerFor(this.ledgers, repository);
  }

  /** The holder of the repository's namespace: its storage use and quota (storage/namespace-usage.ts). */
  private holder(repository: string): DurableObjectStub<RepositoryLedger> {
    return namespaceHolderFor(this.ledgers, repository);
  }

  private async receiveOneObject(key: string, body: ReadableStream<Uint8Array>, limits: BodyLimits, owner: UploadState): Promise<{ sha256: string; size: number }> {
    const declared = limits.declaredLength;
    // platform.md §4: one put holds at most 5 GiB − 5 MiB; a longer declared body goes to multipart parts.
    if (declared !== undefined && declared > 0 && declared === limits.maxBytes && declared <= this.storage.singlePutMaxBytes) {
      return { sha256: await putStreamedObject(this.bucket, key, body, declared, blobObjectMetadata(owner)), size: declared };
    }
    // No usable length (a layer compressed on the fly), or too long for one put: multipart parts completed
    // within this request.
    const state = { ...newState(owner.repository), id: owner.id, blobKey: key };
    const writer = new BlobWriter(this.bucket, { state, tail: new Uint8Array(0) }, this.storage.partBytes, "native");
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
