/**
 * Where content from other registries comes from: a repository's import source (with its schedule and
 * status) and a namespace's pull-through mirror upstream, kept in Workers KV (docs/storage-schema.md).
 * Each record has one writer at a time in practice (the admin API, then the cron run or the import it
 * started); a lost status update is repaired by the next run, as every run re-resolves the source's tags.
 * Upstream passwords are stored sealed (crypto/sealed-box.ts), never in the clear.
 */
import { kvKeys } from "./keys";
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
}

/** KV metadata of an import record: enough for the cron run to pick due ones from a list. */
interface ImportListing {
  nextRunAt?: number;
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
/** How long a tag check is kept once stale (only its age matters). */
const TAG_CHECK_TTL_SECONDS = 30 * 86400;

export class UpstreamSources {
  private readonly mirrors = new TtlCache<MirrorRecord | null>(MIRROR_CACHE_MS, 1000);

  constructor(private readonly kv: KVNamespace) {}

  async getImport(repository: string): Promise<ImportRecord | null> {
    return this.kv.get<ImportRecord>(kvKeys.importSource(repository), "json");
  }

  async putImport(record: ImportRecord): Promise<void> {
    const metadata: ImportListing = record.nextRunAt !== undefined ? { nextRunAt: record.nextRunAt } : {};
    await this.kv.put(kvKeys.importSource(record.repository), JSON.stringify(record), { metadata });
  }

  async deleteImport(repository: string): Promise<void> {
    await this.kv.delete(kvKeys.importSource(repository));
  }

  /** Repositories whose import is due at `now`, at most `limit` (one KV list page of metadata). */
  async dueImports(now: number, limit: number): Promise<string[]> {
    const due: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.kv.list<ImportListing>({ prefix: kvKeys.importSourcePrefix, cursor });
      for (const key of page.keys) {
        const next = key.metadata?.nextRunAt;
        if (next !== undefined && next <= now) due.push(key.name.slice(kvKeys.importSourcePrefix.length));
        if (due.length >= limit) return due;
      }
      cursor = page.list_complete ? undefined : page.cursor;
    } while (cursor);
    return due;
  }

  /** A namespace's mirror configuration (cached in the isolate for MIRROR_CACHE_MS). */
  async getMirror(namespace: string): Promise<MirrorRecord | null> {
    return this.mirrors.getOrLoad(namespace, () => this.kv.get<MirrorRecord>(kvKeys.mirrorUpstream(namespace), "json"));
  }

  async putMirror(record: MirrorRecord): Promise<void> {
    await this.kv.put(kvKeys.mirrorUpstream(record.namespace), JSON.stringify(record));
    this.mirrors.delete(record.namespace);
  }

  async deleteMirror(namespace: string): Promise<void> {
    await this.kv.delete(kvKeys.mirrorUpstream(namespace));
    this.mirrors.delete(namespace);
  }

  async tagCheck(repository: string, tag: string): Promise<MirrorTagCheck | null> {
    return this.kv.get<MirrorTagCheck>(kvKeys.mirrorTagCheck(repository, tag), "json");
  }

  async recordTagCheck(repository: string, tag: string, check: MirrorTagCheck): Promise<void> {
    await this.kv.put(kvKeys.mirrorTagCheck(repository, tag), JSON.stringify(check), { expirationTtl: TAG_CHECK_TTL_SECONDS });
  }
}
