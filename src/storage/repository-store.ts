/**
 * Repository state as the Worker sees it: writes and consistent reads go to the repository's ledger (a
 * Durable Object); pulls read what the ledger published to Workers KV, the edge read path.
 *
 * KV is eventually consistent and caches misses (platform.md §1: "negative lookups are cached", no
 * read-your-writes), so every KV miss falls back to the ledger: a cached negative can never turn content
 * that exists into a 404. A KV hit may be stale only in one way: a tag that moved or content deleted within
 * KV's propagation time (docs/storage-schema.md "Consistency"). Reads whose answer decides a write, and
 * lists (a KV list cannot tell a miss), go to the ledger.
 */
import type { BlobRecord } from "./blob-index";
import { kvKeys } from "./keys";
import { listAll } from "./kv-list";
import {
  ledgerFor,
  type BlobDeleteResult,
  type ManifestPush,
  type ManifestPushResult,
  type ReferrerDescriptor,
  type RepositoryLedger,
  type RepositoryRecord,
  type StoredManifest,
  type TagMove,
} from "./repository-ledger";

export type { BlobRecord, ManifestPush, ReferrerDescriptor, RepositoryRecord, StoredManifest, TagMove };

interface ManifestMetadata {
  mediaType: string;
  size: number;
}

/** A tag's KV value is a copy of its manifest, so a pull by tag is one KV read; the metadata names it. */
interface TagMetadata {
  digest: string;
  mediaType: string;
}

export interface RepositoryStoreOptions {
  /** Read tags through the ledger on every pull (consistent everywhere, one Durable Object request each). */
  consistentTagReads: boolean;
}

export class RepositoryStore {
  constructor(
    private readonly kv: KVNamespace,
    private readonly ledgers: DurableObjectNamespace<RepositoryLedger>,
    private readonly options: RepositoryStoreOptions = { consistentTagReads: false },
  ) {}

  private ledger(repository: string): DurableObjectStub<RepositoryLedger> {
    return ledgerFor(this.ledgers, repository);
  }

  // ---- edge reads: KV, with the ledger behind every miss ----

  async getRepository(name: string): Promise<RepositoryRecord | null> {
    return (await this.kv.get<RepositoryRecord>(kvKeys.repository(name), "json")) ?? (await this.ledger(name).getRepository(name));
  }

  /**
   * The blob as linked into `repository`; null where the repository does not contain it. `consistent` (for
   * a client that writes the repository and must see its own writes) asks the ledger alone; so below.
   */
  async getBlobLink(repository: string, digest: string, consistent = false): Promise<BlobRecord | null> {
    const published = consistent ? null : await this.kv.get<BlobRecord>(kvKeys.blobLink(repository, digest), "json");
    return published ?? (await this.ledger(repository).getBlobLink(digest));
  }

  async getManifest(repository: string, digest: string, consistent = false): Promise<StoredManifest | null> {
    if (!consistent) {
      const { value, metadata } = await this.kv.getWithMetadata<ManifestMetadata>(kvKeys.manifest(repository, digest), "arrayBuffer");
      if (value !== null && metadata) return { bytes: value, mediaType: metadata.mediaType };
    }
    return this.ledger(repository).getManifest(digest);
  }

  /** The manifest a tag points at and its digest: one KV read on a warm location (unless CONSISTENT_TAG_READS). */
  async getTaggedManifest(repository: string, tag: string, consistent = false): Promise<(StoredManifest & { digest: string }) | null> {
    if (!consistent && !this.options.consistentTagReads) {
      const { value, metadata } = await this.kv.getWithMetadata<TagMetadata>(kvKeys.tag(repository, tag), "arrayBuffer");
      if (value !== null && metadata) return { bytes: value, mediaType: metadata.mediaType, digest: metadata.digest };
    }
    return this.ledger(repository).getTaggedManifest(tag);
  }

  /** Every repository name, from KV (the catalog: eventually consistent, like any KV list). */
  async listRepositories(): Promise<string[]> {
    const prefix = kvKeys.repositoryPrefix;
    return (await listAll(this.kv, prefix)).map((key) => key.name.slice(prefix.length));
  }

  // ---- consistent reads: the ledger ----

  /** Tags after `after` in lexical order, at most `limit`. */
  listTags(repository: string, after: string, limit: number): Promise<string[]> {
    return this.ledger(repository).listTags(after, limit);
  }

  listReferrers(repository: string, subject: string): Promise<ReferrerDescriptor[]> {
    return this.ledger(repository).listReferrers(subject);
  }

  tagHistory(repository: string, tag?: string): Promise<TagMove[]> {
    return this.ledger(repository).tagHistory(tag);
  }

  // ---- writes: one ledger transaction each ----

  /** Sets a repository's visibility (creating its record if needed). */
  async putRepository(record: RepositoryRecord): Promise<RepositoryRecord> {
    return this.ledger(record.name).setVisibility(record.name, record.public);
  }

  putManifest(repository: string, push: ManifestPush): Promise<ManifestPushResult> {
    return this.ledger(repository).putManifest(repository, push);
  }

  deleteTag(repository: string, tag: string, actor: string): Promise<boolean> {
    return this.ledger(repository).deleteTag(repository, tag, actor);
  }

  deleteManifest(repository: string, digest: string, actor: string): Promise<boolean> {
    return this.ledger(repository).deleteManifest(repository, digest, actor);
  }

  deleteBlobLink(repository: string, digest: string): Promise<BlobDeleteResult> {
    return this.ledger(repository).deleteBlobLink(repository, digest);
  }

  /** Links a blob of `from` into `repository` (spec.md "Mounting a blob"); null when `from` lacks it. */
  async mountBlob(repository: string, from: string, digest: string): Promise<BlobRecord | null> {
    const record = await this.ledger(from).getBlobLink(digest);
    if (record) await this.ledger(repository).linkBlob(repository, digest, record);
    return record;
  }
}
