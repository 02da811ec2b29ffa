/**
 * Blobs that come from another registry (imports, the pull-through mirror), stored through the same
 * interfaces as a push: a blob the repository links already costs nothing; one stored for any repository is
 * linked (as a mount: the namespace's quota decides) without fetching a byte; any other is streamed from its
 * source into an upload session (storage/blob-uploads.ts: R2 bytes hashed as they stream, the digest verified
 * at the finish, the quota reserved first), so a wrong byte stores nothing and a layer is never buffered whole.
 */
import { blobIndexFor, type BlobIndex } from "./blob-index";
import { QuotaExceededError, type BlobUploads } from "./blob-uploads";
import { ledgerFor, type RepositoryLedger } from "./repository-ledger";

/** How a blob came to be in the repository. */
export type IngestOutcome = "present" | "linked" | "stored";

/** Where the bytes come from, opened only when they must be fetched. */
export type BlobSource = () => Promise<{ body: ReadableStream<Uint8Array>; size: number | undefined }>;

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
  async ingest(repository: string, digest: string, size: number, open: BlobSource): Promise<IngestOutcome> {
    const ledger = ledgerFor(this.ledgers, repository);
    if (await ledger.getBlobLink(digest)) return "present";
    const record = await blobIndexFor(this.blobIndex, digest).get();
    if (record && record.size === size) {
      const linked = await ledger.mountBlob(repository, digest, record);
      if (linked && "denied" in linked) throw new QuotaExceededError(linked.denied);
      // null: the record was collected meanwhile; the bytes are fetched below.
      if (linked) return "linked";
    }
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
}
