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
import { blobIndexFor, type BlobIndex, type BlobRecord } from "./blob-index";
import { kvKeys, objectNames } from "./keys";
import { listAll } from "./kv-list";
import { QuotaExceededError } from "./namespace-usage";
import {
  ledgerFor,
  type BlobDeleteResult,
  type ImmutableRule,
  type ImmutableTagDenial,
  type ManifestDeleteResult,
  type ManifestPush,
  type ManifestPushResult,
  type ReferrerDescriptor,
  type RepositoryLedger,
  type RepositoryDeletion,
  type RepositoryRecord,
  type RestoreResult,
  type RestoreTarget,
  type RetentionRemoval,
  type RetentionRule,
  type StoredManifest,
  type TagDeleteResult,
  type TagHistoryPage,
  type TagMove,
  type UntaggedExpiry,
} from "./repository-ledger";

export type {
  BlobRecord,
  ImmutableRule,
  ImmutableTagDenial,
  ManifestDeleteResult,
  ManifestPush,
  ReferrerDescriptor,
  RepositoryDeletion,
  RepositoryRecord,
  RestoreResult,
  RestoreTarget,
  RetentionRemoval,
  RetentionRule,
  StoredManifest,
  TagDeleteResult,
  TagHistoryPage,
  TagMove,
  UntaggedExpiry,
};

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
  /** The blob index and the default grace period (GC_GRACE_HOURS), for garbage collection runs (collectGarbage). */
  blobIndex?: DurableObjectNamespace<BlobIndex>;
  gcGraceMs?: number;
}

/** What an on-demand garbage collection run removed (or, in a dry run, would remove). */
export interface GarbageCollectionReport {
  dryRun: boolean;
  gracePeriodSeconds: number;
  repositories: number;
  /** Blob links no manifest references, past the grace period, removed from their repositories. */
  links: number;
  /** Blobs whose bytes were deleted (no repository links them any more), and their bytes. */
  blobs: number;
  bytes: number;
  /** Some repository had more links than one batch: run again to continue. */
  more: boolean;
}

export interface RepositoryUsage {
  name: string;
  /** The blobs the repository links, each once. */
  storedBytes: number;
  blobs: number;
  /** Over its manifests, the blobs each references, as pushed. */
  logicalBytes: number;
  manifests: number;
}

export interface NamespaceUsageReport {
  namespace: string;
  quotaBytes: number | null;
  /** Deduplicated: each distinct blob any repository of the namespace links, once (the quota counts these). */
  usedBytes: number;
  reservedBytes: number;
  logicalBytes: number;
  blobs: number;
  repositories: RepositoryUsage[];
  /** More repositories than one report lists (MAX_USAGE_REPOSITORIES): logicalBytes covers those listed. */
  partial: boolean;
}

/** Repositories one namespace usage report asks (each one Durable Object request). */
const MAX_USAGE_REPOSITORIES = 500;

/** Ledgers and blob indexes asked at once in a collection run (platform.md §3: six connections). */
const GC_PARALLEL = 6;

/**
 * What a read must see (KV promises no read-your-writes, platform.md §1):
 * - `edge`: KV first, the ledger behind every miss (a cached miss is never final);
 * - `own-additions`: things were added lately (a push): content named by digest never changes once added, so
 *   a KV hit for it is true and only misses ask the ledger; tags, whose value a push moves, read the ledger;
 * - `own-writes`: things may have been removed lately: every read goes to the ledger.
 */
export type ReadFreshness = "edge" | "own-additions" | "own-writes";

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

  /** The blob as linked into `repository`; null where the repository does not contain it. */
  async getBlobLink(repository: string, digest: string, freshness: ReadFreshness = "edge"): Promise<BlobRecord | null> {
    const published = freshness === "own-writes" ? null : await this.kv.get<BlobRecord>(kvKeys.blobLink(repository, digest), "json");
    return published ?? (await this.ledger(repository).getBlobLink(digest));
  }

  async getManifest(repository: string, digest: string, freshness: ReadFreshness = "edge"): Promise<StoredManifest | null> {
    if (freshness !== "own-writes") {
      const { value, metadata } = await this.kv.getWithMetadata<ManifestMetadata>(kvKeys.manifest(repository, digest), "arrayBuffer");
      if (value !== null && metadata) return { bytes: value, mediaType: metadata.mediaType };
    }
    return this.ledger(repository).getManifest(digest);
  }

  /** The manifest a tag points at and its digest: one KV read on a warm location (unless CONSISTENT_TAG_READS). */
  async getTaggedManifest(repository: string, tag: string, freshness: ReadFreshness = "edge"): Promise<(StoredManifest & { digest: string }) | null> {
    if (freshness === "edge" && !this.options.consistentTagReads) {
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

  /**
   * Up to `limit` (at most 1000) repository names in name order, after KV's `cursor`, and the cursor to continue
   * from (undefined at the end): one KV list call, for callers that must bound their work.
   */
  async listRepositoryPage(cursor: string | undefined, limit: number): Promise<{ names: string[]; cursor?: string }> {
    const prefix = kvKeys.repositoryPrefix;
    const page = await this.kv.list({ prefix, cursor, limit });
    return { names: page.keys.map((key) => key.name.slice(prefix.length)), ...(page.list_complete ? {} : { cursor: page.cursor }) };
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

  async deleteTag(repository: string, tag: string, actor: string): Promise<TagDeleteResult> {
    return this.ledger(repository).deleteTag(repository, tag, actor);
  }

  async deleteManifest(repository: string, digest: string, actor: string): Promise<ManifestDeleteResult> {
    return this.ledger(repository).deleteManifest(repository, digest, actor);
  }

  // ---- lifecycle (docs/lifecycle.md): one ledger transaction each ----

  /** Deletes everything the repository holds but shared blob bytes; its KV keys are unpublished after. */
  async deleteRepository(repository: string, actor?: string): Promise<RepositoryDeletion> {
    return this.ledger(repository).deleteRepository(repository, actor);
  }

  async tagHistoryPage(repository: string, tag: string | undefined, before: number | undefined, limit: number): Promise<TagHistoryPage> {
    return this.ledger(repository).tagHistoryPage(tag, before, limit);
  }

  async purgeTagHistory(repository: string, before: string): Promise<{ moves: number; manifests: number }> {
    return this.ledger(repository).purgeTagHistory(before);
  }

  async restoreTag(repository: string, tag: string, target: RestoreTarget, actor: string): Promise<RestoreResult> {
    return this.ledger(repository).restoreTag(repository, tag, target, actor);
  }

  async immutableRules(repository: string): Promise<ImmutableRule[]> {
    return this.ledger(repository).immutableRules();
  }

  async retentionRules(repository: string): Promise<RetentionRule[]> {
    return this.ledger(repository).retentionRules();
  }

  async setRetentionRule(repository: string, rule: { pattern: string; keepNewest: number | null; expireAfterSeconds: number | null }, actor: string): Promise<boolean> {
    return this.ledger(repository).setRetentionRule(repository, rule, actor);
  }

  async removeRetentionRule(repository: string, pattern: string): Promise<boolean> {
    return this.ledger(repository).removeRetentionRule(repository, pattern);
  }

  /** Applies the repository's retention now (as its alarm does); a dry run lists what it would remove. */
  async applyRetention(repository: string, dryRun: boolean): Promise<RetentionRemoval[]> {
    return this.ledger(repository).applyRetention({ dryRun });
  }

  /** The repository's own retention of untagged manifests and its namespace's copy (seconds; null: unset). */
  async untaggedRetention(repository: string): Promise<{ repository: number | null; namespace: number | null }> {
    return this.ledger(repository).untaggedRetention();
  }

  async setUntaggedRetention(repository: string, seconds: number | null): Promise<void> {
    return this.ledger(repository).setUntaggedRetention(repository, seconds);
  }

  /** Applies untagged-manifest retention now (as the alarm does); a dry run lists what it would remove. */
  async expireUntaggedManifests(repository: string, dryRun: boolean): Promise<UntaggedExpiry[]> {
    return this.ledger(repository).expireUntaggedManifests({ dryRun });
  }

  async namespaceUntaggedRetention(namespace: string): Promise<number | null> {
    return this.policyHolder(namespace).policyUntaggedSeconds();
  }

  /** Sets or clears a namespace's retention of untagged manifests; `pending` repositories are not reached yet. */
  async setNamespaceUntaggedRetention(namespace: string, seconds: number | null): Promise<{ pending: number }> {
    return this.policyHolder(namespace).setNamespaceUntaggedRetention(seconds);
  }

  /** A namespace's immutable-tag rules, from the ledger instance that holds them (objectNames.namespacePolicy). */
  async namespaceImmutableRules(namespace: string): Promise<ImmutableRule[]> {
    return this.policyHolder(namespace).namespacePolicyRules();
  }

  /**
   * Adds or removes a namespace rule; acknowledged once every repository of the namespace enforces it
   * (`pending` counts those not reached yet, which the holder's alarm retries).
   */
  async changeNamespaceImmutableRule(namespace: string, change: { add: string } | { remove: string }, actor: string) {
    return this.policyHolder(namespace).changeNamespacePolicy(change, actor);
  }

  /** Drops a deleted namespace's rules, so a namespace created later under the name starts without them. */
  async clearNamespaceImmutableRules(namespace: string): Promise<{ removed: number; pending: number }> {
    return this.policyHolder(namespace).clearNamespacePolicy();
  }

  private policyHolder(namespace: string) {
    return ledgerFor(this.ledgers, objectNames.namespacePolicy(namespace), true);
  }

  async addImmutableRule(repository: string, pattern: string, actor: string): Promise<boolean> {
    return this.ledger(repository).addImmutableRule(repository, pattern, actor);
  }

  async removeImmutableRule(repository: string, pattern: string): Promise<boolean> {
    return this.ledger(repository).removeImmutableRule(repository, pattern);
  }

  deleteBlobLink(repository: string, digest: string): Promise<BlobDeleteResult> {
    return this.ledger(repository).deleteBlobLink(repository, digest);
  }

  /**
   * An on-demand garbage collection run (docs/lifecycle.md), bounded to one batch of links per repository:
   * each repository's ledger removes its unreferenced links past the grace period, then each blob whose last
   * link went is collected by its index if nothing linked it for the grace period. A dry run changes nothing
   * and reports what the same run would free. Repositories come from the catalog (a KV list), or the one
   * named; one missing from the catalog is collected by its own ledger's alarm.
   */
  async collectGarbage(request: { dryRun: boolean; graceMs?: number; repository?: string }): Promise<GarbageCollectionReport> {
    const blobIndex = this.options.blobIndex;
    const graceMs = request.graceMs ?? this.options.gcGraceMs;
    if (!blobIndex || graceMs === undefined) throw new Error("RepositoryStore: garbage collection needs the blob index binding and GC_GRACE_HOURS");
    const options = { dryRun: request.dryRun, graceMs };
    const repositories = request.repository !== undefined ? [request.repository] : await this.listRepositories();
    const unlinking = new Map<string, string[]>();
    let links = 0;
    let more = false;
    await inBatches(repositories, async (repository) => {
      const collected = await this.ledger(repository).collectLinks(options);
      links += collected.links.length;
      more ||= collected.more;
      for (const { digest } of collected.links) unlinking.set(digest, [...(unlinking.get(digest) ?? []), repository]);
    });
    let blobs = 0;
    let bytes = 0;
    await inBatches([...unlinking.entries()], async ([digest, from]) => {
      const result = await blobIndexFor(blobIndex, digest).collect({ graceMs: options.graceMs, dryRun: options.dryRun, unlinking: from });
      if (result.freed) {
        blobs += 1;
        bytes += result.bytes;
      }
    });
    return { dryRun: options.dryRun, gracePeriodSeconds: options.graceMs / 1000, repositories: repositories.length, links, blobs, bytes, more };
  }

  /** Links a blob of `from` into `repository` (spec.md "Mounting a blob"); null when `from` lacks it. */
  async mountBlob(repository: string, from: string, digest: string): Promise<BlobRecord | null> {
    const record = await this.ledger(from).getBlobLink(digest);
    if (!record) return null;
    const mounted = await this.ledger(repository).mountBlob(repository, digest, record);
    if (mounted && "denied" in mounted) throw new QuotaExceededError(mounted.denied);
    return mounted;
  }

  // ---- storage use and quotas (docs/lifecycle.md "Quotas and usage") ----

  /** A repository's use, from its ledger (consistent). */
  async repositoryUsage(repository: string): Promise<RepositoryUsage> {
    return { name: repository, ...(await this.ledger(repository).repositoryUsage()) };
  }

  /**
   * A namespace's use and quota from its holder (deduplicated bytes, reservations), and its logical bytes:
   * the sum of its repositories' (each asked, a few at a time; the holder lists every repository linking a blob).
   */
  async namespaceUsage(namespace: string): Promise<NamespaceUsageReport> {
    const usage = await this.holder(namespace).namespaceUsage(namespace);
    const repositories: RepositoryUsage[] = [];
    await inBatches(usage.repositories.slice(0, MAX_USAGE_REPOSITORIES), async ({ name }) => {
      repositories.push(await this.repositoryUsage(name));
    });
    repositories.sort((a, b) => (a.name < b.name ? -1 : 1));
    return {
      namespace,
      quotaBytes: usage.quotaBytes,
      usedBytes: usage.usedBytes,
      reservedBytes: usage.reservedBytes,
      logicalBytes: repositories.reduce((sum, repository) => sum + repository.logicalBytes, 0),
      blobs: usage.blobs,
      repositories,
      partial: usage.repositories.length > MAX_USAGE_REPOSITORIES,
    };
  }

  /** Sets (bytes) or clears (null) a namespace's quota, in its holder. */
  async setNamespaceQuota(namespace: string, bytes: number | null): Promise<void> {
    await this.holder(namespace).setNamespaceQuota(namespace, bytes);
  }

  private holder(namespace: string) {
    return ledgerFor(this.ledgers, objectNames.namespacePolicy(namespace), true);
  }
}

async function inBatches<T>(items: T[], work: (item: T) => Promise<void>): Promise<void> {
  for (let start = 0; start < items.length; start += GC_PARALLEL) await Promise.all(items.slice(start, start + GC_PARALLEL).map(work));
}
