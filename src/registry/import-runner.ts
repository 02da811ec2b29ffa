/**
 * Runs imports (`oc import-image` for this registry; README "Import"): resolves the source's tags, and for each
 * tag whose upstream digest differs from the one last imported copies the image (registry/image-copy.ts).
 * Bounded per invocation: at most `maxCopies` images copied and MAX_CHECKS_PER_RUN tags checked; the rest stays
 * in `pendingTags` for the next cron run (wrangler.toml `[triggers]`). A scheduled import is checked again
 * every `everySeconds`: a tag moved upstream is re-imported, which the ledger records in the tag history.
 */
import type { SealedBox } from "../crypto/sealed-box";
import type { ImportRecord, SealedCredentials, UpstreamSources } from "../storage/upstream-sources";
import { UpstreamError, UpstreamRegistry, parseUpstreamBase, type UpstreamCredentials } from "../upstream/registry-client";
import { IngestDeferredError, type TransferBudget } from "../storage/blob-ingest";
import { ImageCopyError, type ImageCopier } from "./image-copy";

/** Tags one run checks upstream (a HEAD each). */
const MAX_CHECKS_PER_RUN = 200;
/** Imports one cron run looks at. */
const IMPORTS_PER_CRON_RUN = 20;
/** Images one cron run copies per import. */
export const COPIES_PER_CRON_RUN = 20;
/** Longest error text kept in a status. */
const MAX_ERROR_LENGTH = 300;

/** What the sealed credentials are bound to (crypto/sealed-box.ts). */
export const importCredentialBinding = (repository: string) => `import:${repository}`;
export const mirrorCredentialBinding = (namespace: string) => `mirror:${namespace}`;

/** Opens sealed upstream credentials; a value that does not open (another pepper) is an error, never ignored. */
export async function openCredentials(box: SealedBox, sealed: SealedCredentials | undefined, binding: string): Promise<UpstreamCredentials | undefined> {
  if (!sealed) return undefined;
  const password = await box.open(sealed.sealedPassword, binding);
  if (password === null) throw new UpstreamError("the stored upstream credentials cannot be opened (was SECRET_PEPPER changed?); set them again");
  return { username: sealed.username, password };
}

function message(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, MAX_ERROR_LENGTH);
}

export class ImportRunner {
  constructor(
    private readonly sources: UpstreamSources,
    private readonly box: SealedBox,
    private readonly copier: ImageCopier,
    private readonly allowInsecure: boolean,
    /** IMPORT_CHUNK_BYTES and IMPORT_BYTES_PER_RUN (config/config.ts). */
    private readonly transfer: { chunkBytes: number; bytesPerRun: number },
  ) {}

  /** Runs one import now (its pending tags, else all its tags), copying at most `maxCopies` images; saves and returns its status. */
  async run(record: ImportRecord, maxCopies: number, now = Date.now()): Promise<ImportRecord> {
    const next: ImportRecord = { ...record, tags: { ...record.tags }, lastRunAt: new Date(now).toISOString() };
    delete next.lastError;
    try {
      const base = parseUpstreamBase(record.source.registry, this.allowInsecure);
      if (!base) throw new UpstreamError(`source registry ${record.source.registry} is not allowed`);
      const upstream = new UpstreamRegistry(base, await openCredentials(this.box, record.credentials, importCredentialBinding(record.repository)), this.allowInsecure);
      const tags = record.pendingTags.length > 0 ? record.pendingTags : await this.selectTags(upstream, record);
      let copies = 0;
      let checks = 0;
      let deferred = false;
      const remaining: string[] = [];
      const budget: TransferBudget = { chunkBytes: this.transfer.chunkBytes, bytesLeft: this.transfer.bytesPerRun, sessions: { ...record.blobSessions } };
      for (const tag of tags) {
        if (deferred || copies >= maxCopies || checks >= MAX_CHECKS_PER_RUN) {
          remaining.push(tag);
          continue;
        }
        checks += 1;
        const outcome = await this.importTag(upstream, record, tag, next, now, budget);
        if (outcome === "deferred") {
          deferred = true;
          remaining.push(tag);
        }
        if (outcome !== "unchanged") copies += 1;
      }
      next.pendingTags = remaining;
      next.blobSessions = budget.sessions;
      const failed = tags.filter((tag) => next.tags[tag]?.error !== undefined);
      next.state = remaining.length > 0 ? "pending" : failed.length > 0 && failed.length === tags.length ? "failed" : "complete";
      if (failed.length > 0) next.lastError = `${failed.length} of ${tags.length} tags failed; first: ${failed[0]}: ${next.tags[failed[0]!]!.error}`;
    } catch (error) {
      if (!(error instanceof UpstreamError) && !(error instanceof ImageCopyError)) console.error(JSON.stringify({ event: "import_failed", repository: record.repository, error: message(error) }));
      next.state = "failed";
      next.pendingTags = [];
      next.lastError = message(error);
    }
    next.nextRunAt = next.pendingTags.length > 0 ? now : record.scheduled && record.everySeconds ? now + record.everySeconds * 1000 : undefined;
    if (next.nextRunAt === undefined) delete next.nextRunAt;
    await this.sources.putImport(next);
    return next;
  }

  /** The cron trigger's part: every import that is due (pending tags, or a scheduled check). */
  async runDue(now = Date.now()): Promise<number> {
    const due = await this.sources.dueImports(now, IMPORTS_PER_CRON_RUN);
    for (const repository of due) {
      const record = await this.sources.getImport(repository);
      if (!record || record.nextRunAt === undefined || record.nextRunAt > now) continue;
      try {
        await this.run(record, COPIES_PER_CRON_RUN, now);
      } catch (error) {
        console.error(JSON.stringify({ event: "import_run_failed", repository, error: message(error) }));
      }
    }
    return due.length;
  }

  /** The tags an import covers: its one tag, or the upstream's tags (all, or those matching the pattern). */
  private async selectTags(upstream: UpstreamRegistry, record: ImportRecord): Promise<string[]> {
    const source = record.source;
    if (source.tag !== undefined) return [source.tag];
    const listed = await upstream.listTags(source.repository);
    if (source.tagPattern === undefined) return listed;
    // Anchored: the pattern must match the whole tag (tags are ≤ 128 characters of [A-Za-z0-9_.-]).
    const pattern = new RegExp(`^(?:${source.tagPattern})$`);
    return listed.filter((tag) => pattern.test(tag));
  }

  /** Imports one tag unless its upstream digest is the one imported last; "deferred": a large blob continues next run. */
  private async importTag(upstream: UpstreamRegistry, record: ImportRecord, tag: string, next: ImportRecord, now: number, budget: TransferBudget): Promise<"unchanged" | "copied" | "deferred"> {
    try {
      const upstreamDigest = await upstream.resolveTag(record.source.repository, tag);
      if (record.tags[tag]?.digest === upstreamDigest && record.tags[tag]?.error === undefined) return "unchanged";
      const targetTag = record.source.tag !== undefined ? (record.targetTag ?? tag) : tag;
      const result = await this.copier.copy(upstream, record.source.repository, upstreamDigest, { repository: record.repository, tag: targetTag, actor: `import:${record.createdBy}` }, record.source.platforms, budget);
      next.tags[tag] = { digest: result.sourceDigest, importedAt: new Date(now).toISOString() };
      return "copied";
    } catch (error) {
      if (error instanceof IngestDeferredError) return "deferred";
      if (!(error instanceof UpstreamError) && !(error instanceof ImageCopyError)) console.error(JSON.stringify({ event: "import_tag_failed", repository: record.repository, tag, error: message(error) }));
      next.tags[tag] = { ...(record.tags[tag]?.digest !== undefined ? { digest: record.tags[tag]!.digest } : {}), error: message(error) };
      return "copied";
    }
  }
}
