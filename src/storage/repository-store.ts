/**
 * Repository metadata in KV: repositories, tags, manifests, blob links, the global blob index and
 * referrers (docs/storage-schema.md).
 *
 * Consistency: KV is eventually consistent across locations and allows one write per second per key.
 * A push writes each key once (blob links and manifests are immutable, content-addressed values);
 * only a tag is rewritten, and clients do not move one tag more than once a second. A write is visible
 * at once in the location that made it, which is where the same client continues its push; other
 * locations may see a new tag up to ~60 s late, as with any CDN-cached registry.
 */
import { kvKeys } from "./keys";
import { listAll } from "./kv-list";

export interface RepositoryRecord {
  name: string;
  public: boolean;
  createdAt: string;
}

/** Where a blob's bytes are in R2; shared by every repository that links the digest. */
export interface BlobRecord {
  key: string;
  size: number;
}

export interface StoredManifest {
  bytes: ArrayBuffer;
  mediaType: string;
}

interface ManifestMetadata {
  mediaType: string;
  size: number;
}

/** A tag's value is a copy of its manifest, so a pull by tag is one KV read; the metadata names it. */
interface TagMetadata {
  digest: string;
  mediaType: string;
}

/** An OCI descriptor as the referrers API lists it. */
export interface ReferrerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** KV metadata is limited to 1024 bytes of JSON; larger descriptors are read from the value. */
const MAX_METADATA_BYTES = 1024;

export class RepositoryStore {
  constructor(private readonly kv: KVNamespace) {}

  getRepository(name: string): Promise<RepositoryRecord | null> {
    return this.kv.get<RepositoryRecord>(kvKeys.repository(name), "json");
  }

  async putRepository(record: RepositoryRecord): Promise<void> {
    await this.kv.put(kvKeys.repository(record.name), JSON.stringify(record));
  }

  /** Every repository name, in KV's key order. */
  async listRepositories(): Promise<string[]> {
    const prefix = kvKeys.repositoryPrefix;
    return (await listAll(this.kv, prefix)).map((key) => key.name.slice(prefix.length));
  }

  getBlob(digest: string): Promise<BlobRecord | null> {
    return this.kv.get<BlobRecord>(kvKeys.blob(digest), "json");
  }

  async putBlob(digest: string, record: BlobRecord): Promise<void> {
    await this.kv.put(kvKeys.blob(digest), JSON.stringify(record));
  }

  /** The blob as linked into `repository`; null where the repository does not contain it. */
  getBlobLink(repository: string, digest: string): Promise<BlobRecord | null> {
    return this.kv.get<BlobRecord>(kvKeys.blobLink(repository, digest), "json");
  }

  async putBlobLink(repository: string, digest: string, record: BlobRecord): Promise<void> {
    await this.kv.put(kvKeys.blobLink(repository, digest), JSON.stringify(record));
  }

  async deleteBlobLink(repository: string, digest: string): Promise<void> {
    await this.kv.delete(kvKeys.blobLink(repository, digest));
  }

  async putBlobReferences(repository: string, manifest: string, blobs: string[]): Promise<void> {
    await Promise.all(blobs.map((blob) => this.kv.put(kvKeys.blobReference(repository, blob, manifest), "")));
  }

  async deleteBlobReferences(repository: string, manifest: string, blobs: string[]): Promise<void> {
    await Promise.all(blobs.map((blob) => this.kv.delete(kvKeys.blobReference(repository, blob, manifest))));
  }

  /** Digests of the repository's manifests that reference a blob (at most `limit`). */
  async manifestsReferencing(repository: string, blob: string, limit = 10): Promise<string[]> {
    const prefix = kvKeys.blobReferencePrefix(repository, blob);
    const page = await this.kv.list({ prefix, limit });
    return page.keys.map((key) => key.name.slice(prefix.length));
  }

  async getManifest(repository: string, digest: string): Promise<StoredManifest | null> {
    const { value, metadata } = await this.kv.getWithMetadata<ManifestMetadata>(
      kvKeys.manifest(repository, digest),
      "arrayBuffer",
    );
    if (value === null || !metadata) return null;
    return { bytes: value, mediaType: metadata.mediaType };
  }

  async hasManifest(repository: string, digest: string): Promise<boolean> {
    const { value } = await this.kv.getWithMetadata(kvKeys.manifest(repository, digest), "stream");
    await value?.cancel();
    return value !== null;
  }

  async putManifest(repository: string, digest: string, manifest: StoredManifest): Promise<void> {
    const metadata: ManifestMetadata = { mediaType: manifest.mediaType, size: manifest.bytes.byteLength };
    await this.kv.put(kvKeys.manifest(repository, digest), manifest.bytes, { metadata });
  }

  async deleteManifest(repository: string, digest: string): Promise<void> {
    await this.kv.delete(kvKeys.manifest(repository, digest));
  }

  /** The digest a tag points at, without reading the manifest. */
  async getTag(repository: string, tag: string): Promise<string | null> {
    const { value, metadata } = await this.kv.getWithMetadata<TagMetadata>(kvKeys.tag(repository, tag), "stream");
    await value?.cancel();
    return metadata?.digest ?? null;
  }

  /** The manifest a tag points at and its digest, in one KV read. */
  async getTaggedManifest(repository: string, tag: string): Promise<(StoredManifest & { digest: string }) | null> {
    const { value, metadata } = await this.kv.getWithMetadata<TagMetadata>(kvKeys.tag(repository, tag), "arrayBuffer");
    if (value === null || !metadata) return null;
    return { bytes: value, mediaType: metadata.mediaType, digest: metadata.digest };
  }

  /** Points a tag at a manifest: the value is the manifest itself (immutable for its digest). */
  async putTag(repository: string, tag: string, digest: string, manifest: StoredManifest): Promise<void> {
    const metadata: TagMetadata = { digest, mediaType: manifest.mediaType };
    await this.kv.put(kvKeys.tag(repository, tag), manifest.bytes, { metadata });
  }

  async deleteTag(repository: string, tag: string): Promise<void> {
    await this.kv.delete(kvKeys.tag(repository, tag));
  }

  /** Every tag of a repository with the digest it points at, in lexical order (KV lists sort by key). */
  async listTags(repository: string): Promise<{ tag: string; digest: string }[]> {
    const prefix = kvKeys.tagPrefix(repository);
    const keys = await listAll<TagMetadata>(this.kv, prefix);
    return keys.map((key) => ({ tag: key.name.slice(prefix.length), digest: key.metadata?.digest ?? "" }));
  }

  async putReferrer(repository: string, subject: string, descriptor: ReferrerDescriptor): Promise<void> {
    const json = JSON.stringify(descriptor);
    const metadata = new TextEncoder().encode(json).length <= MAX_METADATA_BYTES ? descriptor : null;
    await this.kv.put(kvKeys.referrer(repository, subject, descriptor.digest), json, { metadata });
  }

  async deleteReferrer(repository: string, subject: string, referrer: string): Promise<void> {
    await this.kv.delete(kvKeys.referrer(repository, subject, referrer));
  }

  async listReferrers(repository: string, subject: string): Promise<ReferrerDescriptor[]> {
    const keys = await listAll<ReferrerDescriptor>(this.kv, kvKeys.referrerPrefix(repository, subject));
    const descriptors = await Promise.all(
      keys.map(async (key) => key.metadata ?? (await this.kv.get<ReferrerDescriptor>(key.name, "json"))),
    );
    return descriptors.filter((descriptor): descriptor is ReferrerDescriptor => descriptor !== null);
  }
}
