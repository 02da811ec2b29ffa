/**
 * Where content from other registries comes from: a repository's import source (with its schedule and
 * status) and a namespace's pull-through mirror upstream, kept in R2 (docs/storage-schema.md), which is
 * strongly consistent: a status is read right after the run that wrote it, in any location, and a list
 * finds every import (Workers KV promises neither, platform.md §1).
 * Each record has one writer at a time in practice (the admin API, then the cron run or the import it
 * started); a lost status update is repaired by the next run, as every run re-resolves the source's tags.
 * Upstream passwords are stored sealed (crypto/sealed-box.ts), never in the clear.
 */
import { r2Keys } from "./keys";
import { TtlCache } from "./ttl-cache";

/** Credentials for an upstream registry: the password sealed, bound to the record that holds it. */
export interface SealedCredentials {
  username: string;
  sealedPassword: string;
}

/** What an import copies. */
export interface ImportSource {
  /** The upstream registry's base URL (`https://host[:port]`). */
  registry: string;
  /** The repository upstream. */
  repository: string;
  /** One tag; otherwise every tag (`allTags`), or those matching `tagPattern` (a regular expression). */
  tag?: string;
  allTags?: boolean;
  tagPattern?: string;
  /** `os/arch[/variant]` of an index to keep; all platforms when absent. */
  platforms?: string[];
}

export interface TagImportStatus {
  /** The upstream digest last imported (the source's manifest, or the one platform's). */
  digest?: string;
  importedAt?: string;
  error?: string;
}

export interface ImportRecord {
  repository: string;
  source: ImportSource;
  /** For a one-tag import: the tag here (default: the source's). */
  targetTag?: string;
  credentials?: SealedCredentials;
  /** Re-checked by the cron trigger every `everySeconds` (`oc import-image --scheduled`). */
  scheduled: boolean;
  everySeconds: number | null;
  createdAt: string;
  createdBy: string;
  /** `pending` while tags remain to be imported (`pendingTags`), `failed` when the last run failed as a whole. */
  state: "pending" | "complete" | "failed";
  pendingTags: string[];
  tags: Record<string, TagImportStatus>;
  lastRunAt?: string;
  /** When the cron trigger next looks at it (ms); absent when it never needs to. */
  nextRunAt?: number;
  lastError?: string;
  /** Upload sessions of large blobs begun and not finished (digest → upload id), resumed by the next run. */
  blobSessions?: Record<string, string>;
}

export interface MirrorRecord {
  namespace: string;
  upstream: string;
  /** How long a mirrored tag is served without asking the upstream again (0: every pull asks). */
  revalidateSeconds: number;
  credentials?: SealedCredentials;
  createdAt: string;
  createdBy: string;
}

/** A mirrored tag's last check against the upstream. */
export interface MirrorTagCheck {
  checkedAt: number;
  digest: string;
}

/** How long a mirror configuration is cached in an isolate (a change applies within this time). */
const MIRROR_CACHE_MS = 30_000;
export class UpstreamSources {
  private readonly mirrors = new TtlCache<MirrorRecord | null>(MIRROR_CACHE_MS, 1000);

  constructor(private readonly bucket: R2Bucket) {}

  async getImport(repository: string): Promise<ImportRecord | null> {
    return this.read<ImportRecord>(r2Keys.importSource(repository));
  }

  async putImport(record: ImportRecord): Promise<void> {
    const customMetadata: Record<string, string> = record.nextRunAt !== undefined ? { nextRunAt: String(record.nextRunAt) } : {};
    await this.bucket.put(r2Keys.importSource(record.repository), JSON.stringify(record), { customMetadata });
  }

  async deleteImport(repository: string): Promise<void> {
    await this.bucket.delete(r2Keys.importSource(repository));
  }

  /** Repositories whose import is due at `now`, at most `limit` (R2 lists with custom metadata, 1,000 keys a page). */
  async dueImports(now: number, limit: number): Promise<string[]> {
    const prefix = r2Keys.importSourcePrefix;
    const due: string[] = [];
    let cursor: string | undefined;
    do {
      // `include` (honoured since compatibility date 2022-08-04, platform.md §2) is missing from the types.
      const page = await this.bucket.list({ prefix, cursor, include: ["customMetadata"] } as R2ListOptions);
      for (const object of page.objects) {
        const next = object.customMetadata?.nextRunAt;
        if (next !== undefined && Number(next) <= now) due.push(object.key.slice(prefix.length, -".json".length));
        if (due.length >= limit) return due;
      }
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
    return due;
  }

  /** A namespace's mirror configuration (cached in the isolate for MIRROR_CACHE_MS). */
  async getMirror(namespace: string): Promise<MirrorRecord | null> {
    return this.mirrors.getOrLoad(namespace, () => this.read<MirrorRecord>(r2Keys.mirrorUpstream(namespace)));
  }

  async putMirror(record: MirrorRecord): Promise<void> {
    await this.bucket.put(r2Keys.mirrorUpstream(record.namespace), JSON.stringify(record));
    this.mirrors.delete(record.namespace);
  }

  async deleteMirror(namespace: string): Promise<void> {
    await this.bucket.delete(r2Keys.mirrorUpstream(namespace));
    this.mirrors.delete(namespace);
  }

  async tagCheck(repository: string, tag: string): Promise<MirrorTagCheck | null> {
    return this.read<MirrorTagCheck>(r2Keys.mirrorTagCheck(repository, tag));
  }

  async recordTagCheck(repository: string, tag: string, check: MirrorTagCheck): Promise<void> {
    await this.bucket.put(r2Keys.mirrorTagCheck(repository, tag), JSON.stringify(check));
  }

  private async read<T>(key: string): Promise<T | null> {
    const object = await this.bucket.get(key);
    return object ? ((await object.json()) as T) : null;
  }
}
