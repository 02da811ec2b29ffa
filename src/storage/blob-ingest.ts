/**
 * Blobs that come from another registry (imports, the pull-through mirror), stored through the same
 * interfaces as a push: a blob the repository links already costs nothing; one stored for any repository is
 * linked (as a mount: the namespace's quota decides) without fetching a byte; any other is streamed from its
 * source into an upload session (storage/blob-uploads.ts: R2 bytes hashed as they stream, the digest verified
 * at the finish, the quota reserved first), so a wrong byte stores nothing and a layer is never buffered whole.
 *
 * A blob larger than a transfer's `chunkBytes` is fetched in byte ranges of that size into one upload session,
 * saved after each range (the ledger keeps the offset and the resumable hash; storage/blob-writer.ts). When an
 * invocation's `bytesLeft` runs out, the session's id is kept in `sessions` and IngestDeferredError thrown: the
 * next invocation (the cron trigger) claims the session and continues at its offset.
 */
import { blobIndexFor, type BlobIndex } from "./blob-index";
import { QuotaExceededError, type BlobUploads } from "./blob-uploads";
import { ledgerFor, type RepositoryLedger } from "./repository-ledger";

/** How a blob came to be in the repository. */
export type IngestOutcome = "present" | "linked" | "stored";

/** Where the bytes come from, opened only when they must be fetched: whole, or a byte range (inclusive). */
export type BlobSource = (range?: { start: number; end: number }) => Promise<{ body: ReadableStream<Uint8Array>; size: number | undefined }>;

/** How much one invocation may move in ranges, and the sessions of blobs begun by earlier ones (digest → upload id). */
export interface TransferBudget {
  chunkBytes: number;
  bytesLeft: number;
  sessions: Record<string, string>;
}

/** The invocation's budget ran out in the middle of a large blob: its session is kept for the next one. */
export class IngestDeferredError extends Error {
  override name = "IngestDeferredError";
}

/** The source sent a different length than the descriptor declares. */
export class BlobSizeMismatchError extends Error {
  override name = "BlobSizeMismatchError";
}

export class BlobIngest {
  constructor(
    private readonly uploads: BlobUploads,
    private readonly ledgers: DurableObjectNamespace<RepositoryLedger>,
    private readonly blobIndex: DurableObjectNamespace<BlobIndex>,
  ) {}

  /** Makes blob `digest` (`sha256:…`, `size` bytes) part of `repository`. */
  async ingest(repository: string, digest: string, size: number, open: BlobSource, budget?: TransferBudget): Promise<IngestOutcome> {
    const ledger = ledgerFor(this.ledgers, repository);
    if (await ledger.getBlobLink(digest)) return "present";
    const record = await blobIndexFor(this.blobIndex, digest).get();
    if (record && record.size === size) {
      const linked = await ledger.mountBlob(repository, digest, record);
      if (linked && "denied" in linked) throw new QuotaExceededError(linked.denied);
      // null: the record was collected meanwhile; the bytes are fetched below.
      if (linked) return "linked";
    }
    if (budget && size > budget.chunkBytes) return this.ingestInRanges(repository, digest, size, open, budget);
    const source = await open();
    if (source.size !== undefined && source.size !== size) {
      await source.body.cancel();
      throw new BlobSizeMismatchError(`blob ${digest}: the source sends ${source.size} bytes, the manifest says ${size}`);
    }
    const handle = await this.uploads.start(repository);
    try {
      // A body longer or shorter than `size` is refused as it streams (BlobTooLargeError, BodyReadError);
      // finish() closes the session and discards the bytes when they do not hash to `digest`.
      await this.uploads.receive(handle, source.body, { declaredLength: size, maxBytes: size }, digest);
      await this.uploads.finish(handle, digest);
      return "stored";
    } catch (error) {
      await source.body.cancel().catch(() => undefined);
      // A session left open (the body failed before the finish) is cancelled; a closed one is already gone.
      await this.uploads.cancel(repository, handle.session.state.id).catch(() => undefined);
      throw error;
    }
  }

  /** A large blob, range by range into one saved session, resumed from `budget.sessions` when one was begun. */
  private async ingestInRanges(repository: string, digest: string, size: number, open: BlobSource, budget: TransferBudget): Promise<IngestOutcome> {
    const begun = budget.sessions[digest];
    let handle = begun !== undefined ? await this.uploads.claim(repository, begun).catch(() => undefined) : undefined;
    handle ??= await this.uploads.start(repository);
    budget.sessions[digest] = handle.session.state.id;
    for (;;) {
      const offset = handle.session.state.offset;
      const end = Math.min(offset + budget.chunkBytes, size) - 1;
      if (budget.bytesLeft <= 0 && offset < size) throw new IngestDeferredError(`blob ${digest}: ${offset} of ${size} bytes stored; continued by the next run`);
      const source = await open({ start: offset, end });
      const length = end - offset + 1;
      await this.uploads.receive(handle, source.body, { declaredLength: length, maxBytes: length });
      budget.bytesLeft -= length;
      if (end + 1 >= size) {
        // The digest is checked over every range: a mismatch closes the session and stores nothing.
        delete budget.sessions[digest];
        await this.uploads.finish(handle, digest);
        return "stored";
      }
      await this.uploads.save(handle);
      handle = await this.uploads.claim(repository, handle.session.state.id);
    }
  }
}
