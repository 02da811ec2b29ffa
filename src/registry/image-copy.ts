/**
 * Copies an image from another registry into a repository here (imports and the pull-through mirror):
 * the manifest is fetched and verified by the registry client (upstream/registry-client.ts), validated as a
 * push is (registry/manifest-document.ts), its blobs and child manifests copied first, then recorded by the
 * repository's ledger in one transaction, exactly as a push by a client: the tag's move is in the tag history
 * and the ledger's commit is what notifications see. A failure at any step records no manifest.
 */
import { RegistryError } from "../http/oci-errors";
import { isValidTag, parseDigest } from "../oci/reference";
import type { BlobIngest, TransferBudget } from "../storage/blob-ingest";
import type { RepositoryStore } from "../storage/repository-store";
import { sha256Digest, type UpstreamManifest, type UpstreamRegistry } from "../upstream/registry-client";
import { parseManifest, type ManifestDocument } from "./manifest-document";
import { INDEX_TYPES } from "./media-types";
import { MAX_MANIFEST_REFERENCES } from "./manifests";

/** Most platforms of one index copied (each is an image: its blobs are fetched). */
export const MAX_INDEX_CHILDREN = 64;

/** Where a copy goes. */
export interface CopyTarget {
  repository: string;
  /** The tag to point at the copy; none for a copy by digest. */
  tag?: string;
  /** Who the tag history names (`import:<admin>`, `mirror`). */
  actor: string;
}

export interface CopyResult {
  /** The digest of the manifest fetched upstream (an index even when one platform was kept). */
  sourceDigest: string;
  /** The digest stored here (the tag points at it). */
  digest: string;
  blobsFetched: number;
}

/** A copy refused for what the source holds (not the upstream's availability): reported, never retried blindly. */
export class ImageCopyError extends Error {
  override name = "ImageCopyError";
}

interface RawDescriptor {
  digest?: unknown;
  platform?: { os?: unknown; architecture?: unknown; variant?: unknown };
}

/** `os/arch[/variant]` of an index entry. */
function platformOf(entry: RawDescriptor): string | undefined {
  const platform = entry.platform;
  if (!platform || typeof platform.os !== "string" || typeof platform.architecture !== "string") return undefined;
  return [platform.os, platform.architecture, ...(typeof platform.variant === "string" ? [platform.variant] : [])].join("/");
}

/** Whether an entry's platform is one asked for (`linux/arm64` also matches `linux/arm64/v8`). */
function platformChosen(entry: RawDescriptor, platforms: string[]): boolean {
  const platform = platformOf(entry);
  return platform !== undefined && platforms.some((wanted) => platform === wanted || platform.startsWith(`${wanted}/`));
}

function validated(manifest: UpstreamManifest): ManifestDocument {
  try {
    const document = parseManifest(manifest.bytes, manifest.mediaType || null);
    if (document.blobs.length + document.children.length > MAX_MANIFEST_REFERENCES) {
      throw new ImageCopyError(`manifest ${manifest.digest} references more than ${MAX_MANIFEST_REFERENCES} blobs and manifests`);
    }
    return document;
  } catch (error) {
    if (error instanceof RegistryError) throw new ImageCopyError(`manifest ${manifest.digest} is not valid: ${error.message}`);
    throw error;
  }
}

export class ImageCopier {
  constructor(
    private readonly repositories: RepositoryStore,
    private readonly blobs: BlobIngest,
  ) {}

  /**
   * Copies `reference` (tag or digest) of `sourceRepository` upstream into `target`. With `platforms`, an
   * index keeps only those: one platform is copied as its own image manifest (its upstream digest), several
   * as a new index listing just them (a new digest). With a `budget`, large blobs go in ranges and may be
   * deferred to the next invocation (storage/blob-ingest.ts IngestDeferredError).
   */
  async copy(upstream: UpstreamRegistry, sourceRepository: string, reference: string, target: CopyTarget, platforms?: string[], budget?: TransferBudget): Promise<CopyResult> {
    if (!isValidTag(reference) && !parseDigest(reference)) throw new ImageCopyError(`invalid source reference ${JSON.stringify(reference)}`);
    const manifest = await upstream.getManifest(sourceRepository, reference);
    const document = validated(manifest);
    const counter = { fetched: 0, budget };
    if (!INDEX_TYPES.has(document.mediaType)) {
      await this.copyImage(upstream, sourceRepository, manifest, document, target, counter);
      return { sourceDigest: manifest.digest, digest: manifest.digest, blobsFetched: counter.fetched };
    }
    const raw = JSON.parse(new TextDecoder().decode(manifest.bytes)) as { manifests: RawDescriptor[] };
    const kept = platforms && platforms.length > 0 ? raw.manifests.filter((entry) => platformChosen(entry, platforms)) : raw.manifests;
    if (kept.length === 0) throw new ImageCopyError(`no platform of ${sourceRepository}:${reference} matches ${platforms!.join(", ")}`);
    if (kept.length > MAX_INDEX_CHILDREN) throw new ImageCopyError(`index lists ${kept.length} manifests; at most ${MAX_INDEX_CHILDREN} are copied`);
    const children = kept.map((entry) => String(entry.digest));
    for (const child of children) {
      const childManifest = await upstream.getManifest(sourceRepository, child);
      const childDocument = validated(childManifest);
      if (INDEX_TYPES.has(childDocument.mediaType)) throw new ImageCopyError(`index ${manifest.digest} nests index ${child}: not copied`);
      // The one platform asked for: tagged itself.
      const childTarget = kept.length === 1 && platforms?.length ? target : { ...target, tag: undefined };
      await this.copyImage(upstream, sourceRepository, childManifest, childDocument, childTarget, counter);
    }
    if (kept.length === 1 && platforms?.length) return { sourceDigest: manifest.digest, digest: children[0]!, blobsFetched: counter.fetched };
    let stored = manifest;
    if (kept.length !== raw.manifests.length) {
      const bytes = new TextEncoder().encode(JSON.stringify({ ...raw, manifests: kept }));
      stored = { digest: await sha256Digest(bytes), mediaType: document.mediaType, bytes };
    }
    await this.record(target, stored, document.mediaType, [], children);
    return { sourceDigest: manifest.digest, digest: stored.digest, blobsFetched: counter.fetched };
  }

  private async copyImage(
    upstream: UpstreamRegistry,
    sourceRepository: string,
    manifest: UpstreamManifest,
    document: ManifestDocument,
    target: CopyTarget,
    counter: { fetched: number; budget?: TransferBudget },
  ): Promise<void> {
    for (const blob of document.blobs) {
      if (!blob.digest.startsWith("sha256:")) throw new ImageCopyError(`blob ${blob.digest}: only sha256 digests are stored`);
      const outcome = await this.blobs.ingest(target.repository, blob.digest, blob.size, (range) => upstream.openBlob(sourceRepository, blob.digest, range), counter.budget);
      if (outcome === "stored") counter.fetched += 1;
    }
    await this.record(target, manifest, document.mediaType, document.blobs.map((blob) => blob.digest), []);
  }

  private async record(target: CopyTarget, manifest: UpstreamManifest, mediaType: string, blobs: string[], children: string[]): Promise<void> {
    const bytes = manifest.bytes;
    const result = await this.repositories.putManifest(target.repository, {
      digest: manifest.digest,
      mediaType,
      bytes: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
      blobs,
      children,
      ...(target.tag !== undefined ? { tag: target.tag } : {}),
      actor: target.actor,
    });
    if (!result.ok && "denied" in result) throw new ImageCopyError(`tag ${result.denied.tag} is immutable (rule ${JSON.stringify(result.denied.rule)})`);
    if (!result.ok) throw new ImageCopyError(`the repository lacks ${result.missing.slice(0, 3).join(", ")} (removed while copying?)`);
  }
}
