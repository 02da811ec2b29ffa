/**
 * The global blob index: where the bytes of a digest are stored in R2, shared by every repository that
 * links the digest. One Durable Object per digest (SQLite storage), so the first complete upload of a digest
 * wins atomically and every later one learns the winner: a Durable Object runs one event at a time and a
 * synchronous transaction cannot interleave with another (platform.md §2 "Gates").
 *
 * It also holds the links of repositories to the digest (`links`), for garbage collection
 * (docs/lifecycle.md). Each claim or mount adds a link row with a fresh number (`seq`), in the same
 * transaction that returns the record and before the repository's ledger commits its link; a row is removed
 * only by an unlink naming exactly that number, which a ledger sends after it committed that it no longer
 * holds the number (the link was removed, or a newer number of the same link replaced it). Hence: while any
 * repository's ledger links the digest, this object holds a row of that repository.
 *
 * Invariants: a record, once written, names bytes that nothing deletes while it names them (uploads delete
 * only objects no record names; see storage/blob-uploads.ts); records are never rewritten. The only deletion
 * of a record's bytes is `collect`: with no repository linking the digest for the grace period, one
 * transaction removes the record (a later claim wins a fresh record with its own bytes; a mount finds
 * nothing), and only then are the bytes deleted — once KV can no longer serve a `link:` value naming them.
 */
import { DurableObject } from "cloudflare:workers";
import { lifecycleConfig } from "../config/config";
import type { Env } from "../config/env";
import { recordLifecycleAction } from "./audit-log";
import { objectNames, r2Keys } from "./keys";

/** Where a blob's bytes are in R2. */
export interface BlobRecord {
  key: string;
  size: number;
}

/** A record as a claim or mount returns it, with the sequence number of the caller's link. */
export interface LinkedBlobRecord extends BlobRecord {
  seq: number;
}

/** What collect did (or, in a dry run, would do). */
export interface BlobCollection {
  freed: boolean;
  bytes: number;
}

/**
 * How long collected bytes outlive their record: a location may serve a `link:` value (naming the bytes' key)
 * read before its repository unlinked the blob for up to KV's cache time (platform.md §1: 60 s, "or more"),
 * so the bytes stay twice that, and a pull there never gets a redirect to deleted bytes.
 */
export const KV_STALE_LINK_MS = 120_000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS blob (id INTEGER PRIMARY KEY CHECK (id = 1), object_key TEXT NOT NULL, size INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS links (repository TEXT NOT NULL, seq INTEGER NOT NULL, linked_at INTEGER NOT NULL, PRIMARY KEY (repository, seq));
CREATE TABLE IF NOT EXISTS index_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pending_deletes (object_key TEXT PRIMARY KEY, delete_after INTEGER NOT NULL);
`;

export class BlobIndex extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    const tracked = this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'links'").toArray().length > 0;
    const existed = this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'blob'").toArray().length > 0;
    this.sql.exec(SCHEMA);
    // A record written before links were tracked has no list of its repositories: never collected.
    if (!tracked && existed && this.get() !== null) this.setMeta("untracked", "1");
  }

  /** The record of this digest, or null when no upload of it has completed (or its bytes were collected). */
  get(): BlobRecord | null {
    const row = this.sql.exec<{ object_key: string; size: number }>("SELECT object_key, size FROM blob").toArray()[0];
    return row ? { key: row.object_key, size: row.size } : null;
  }

  /**
   * Records `candidate` unless a record exists, and adds `repository` to the digest's links; returns the
   * record that holds (the first claim wins) with the link's sequence number.
   */
  claim(candidate: BlobRecord, repository: string): LinkedBlobRecord {
    return this.ctx.storage.transactionSync(() => {
      let record = this.get();
      if (!record) {
        this.sql.exec("INSERT INTO blob (id, object_key, size, created_at) VALUES (1, ?, ?, ?)", candidate.key, candidate.size, new Date().toISOString());
        this.sql.exec("DELETE FROM index_meta WHERE key IN ('untracked', 'unlinked_at')");
        record = candidate;
      }
      return { ...record, seq: this.addLink(repository) };
    });
  }

  /** A mount: adds `repository` to the links if the record still names `key`; null when it does not. */
  link(repository: string, key: string): LinkedBlobRecord | null {
    return this.ctx.storage.transactionSync(() => {
      const record = this.get();
      if (!record || record.key !== key) return null;
      return { ...record, seq: this.addLink(repository) };
    });
  }

  /**
   * Removes the link row `seq` of `repository` (its ledger no longer holds that number); the repository's
   * other rows (links committed since) stay. The grace clock starts when the last row goes.
   */
  unlink(repository: string, seq: number, digest?: string): void {
    this.ctx.storage.transactionSync(() => {
      // The digest (this object's name) is known to callers only: kept for the audit record of a collection.
      if (digest !== undefined && this.meta("digest") === null) this.setMeta("digest", digest);
      this.sql.exec("DELETE FROM links WHERE repository = ? AND seq = ?", repository, seq);
      if (this.linkCount() === 0 && this.get() !== null && this.meta("unlinked_at") === null) this.setMeta("unlinked_at", String(Date.now()));
    });
    const due = this.collectableAt(lifecycleConfig(this.env).gcGraceMs);
    if (due !== null) this.ctx.waitUntil(this.ctx.storage.setAlarm(due));
  }

  /** Repositories linking the digest (tests and the admin GC report). */
  linkedRepositories(): string[] {
    return this.sql.exec<{ repository: string }>("SELECT DISTINCT repository FROM links ORDER BY repository").toArray().map((row) => row.repository);
  }

  /**
   * Frees the bytes if no repository has linked the digest for `graceMs` (docs/lifecycle.md): the record goes
   * now, the bytes after KV_STALE_LINK_MS. In a dry run nothing changes, and the repositories in `unlinking`
   * count as gone (their ledgers would unlink them in the same run): the answer is what the real run frees.
   */
  async collect(options: { graceMs: number; dryRun: boolean; unlinking?: string[]; now?: number }): Promise<BlobCollection> {
    const now = options.now ?? Date.now();
    const record = this.get();
    if (!record || this.meta("untracked") !== null) return { freed: false, bytes: 0 };
    if (options.dryRun) {
      const remaining = this.linkedRepositories().filter((repository) => !(options.unlinking ?? []).includes(repository));
      if (remaining.length > 0) return { freed: false, bytes: 0 };
      // Links the run removes start their grace clock now; links gone earlier started it then.
      const since = this.linkCount() > 0 ? now : Number(this.meta("unlinked_at") ?? now);
      return since <= now - options.graceMs ? { freed: true, bytes: record.size } : { freed: false, bytes: 0 };
    }
    const taken = this.ctx.storage.transactionSync(() => {
      const unlinkedAt = this.meta("unlinked_at");
      if (this.linkCount() > 0 || unlinkedAt === null || Number(unlinkedAt) > now - options.graceMs) return null;
      // The record goes first, in one transaction: a claim after this wins a fresh record with its own
      // bytes, and a mount finds nothing, so no link is ever made to the bytes deleted below.
      this.sql.exec("DELETE FROM blob");
      this.sql.exec("DELETE FROM index_meta WHERE key = 'unlinked_at'");
      this.sql.exec("INSERT OR REPLACE INTO pending_deletes (object_key, delete_after) VALUES (?, ?)", record.key, now + KV_STALE_LINK_MS);
      return record;
    });
    if (!taken) return { freed: false, bytes: 0 };
    await this.ctx.storage.setAlarm(now + KV_STALE_LINK_MS);
    return { freed: true, bytes: taken.size };
  }

  /** Collects past the configured grace period (GC_GRACE_HOURS) and deletes collected bytes that are due. */
  override async alarm(): Promise<void> {
    const graceMs = lifecycleConfig(this.env).gcGraceMs;
    await this.collectDue();
    await this.deleteCollectedBytes();
    const next = [this.collectableAt(graceMs), this.sql.exec<{ t: number | null }>("SELECT MIN(delete_after) AS t FROM pending_deletes").toArray()[0]?.t ?? null];
    const due = next.filter((time): time is number => time !== null);
    if (due.length > 0) await this.ctx.storage.setAlarm(Math.max(Math.min(...due), Date.now() + 1000));
  }

  /**
   * The alarm's collection at `now` with the configured grace period (GC_GRACE_HOURS); a freed blob is
   * recorded in the audit log (`gc.blob`, actor `gc`) once its record is gone (docs/lifecycle.md).
   */
  async collectDue(now = Date.now()): Promise<BlobCollection> {
    const result = await this.collect({ graceMs: lifecycleConfig(this.env).gcGraceMs, dryRun: false, now });
    if (result.freed) {
      const target = this.meta("digest") ?? "unknown digest";
      await recordLifecycleAction(this.env.REGISTRY_KV, { action: "gc.blob", target, detail: `bytes=${result.bytes}; no repository linked it for the grace period` });
    }
    return result;
  }

  /** Deletes collected bytes whose KV_STALE_LINK_MS has passed (idempotent; retried by the alarm). Returns how many. */
  async deleteCollectedBytes(now = Date.now()): Promise<number> {
    const due = this.sql.exec<{ object_key: string }>("SELECT object_key FROM pending_deletes WHERE delete_after <= ?", now).toArray().map((row) => row.object_key);
    if (due.length === 0) return 0;
    try {
      // With each object, the orphan sweep's marker of it (r2Keys.referencedBlob), if it made one.
      await this.env.REGISTRY_BUCKET.delete([...due, ...due.map((key) => r2Keys.referencedBlob(key))]);
      for (const key of due) this.sql.exec("DELETE FROM pending_deletes WHERE object_key = ?", key);
      return due.length;
    } catch (error) {
      console.error(JSON.stringify({ event: "blob_bytes_delete_failed", error: String(error).slice(0, 200) }));
      await this.ctx.storage.setAlarm(Date.now() + 60_000);
      return 0;
    }
  }

  /** When the record may be collected, if it has no links (null while any repository links it). */
  private collectableAt(graceMs: number): number | null {
    const unlinkedAt = this.meta("unlinked_at");
    if (this.get() === null || this.linkCount() > 0 || unlinkedAt === null || this.meta("untracked") !== null) return null;
    return Math.max(Number(unlinkedAt) + graceMs, Date.now() + 1000);
  }

  private addLink(repository: string): number {
    const seq = Number(this.meta("seq") ?? "0") + 1;
    this.setMeta("seq", String(seq));
    this.sql.exec("INSERT INTO links (repository, seq, linked_at) VALUES (?, ?, ?)", repository, seq, Date.now());
    this.sql.exec("DELETE FROM index_meta WHERE key = 'unlinked_at'");
    return seq;
  }

  private linkCount(): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM links").one().n;
  }

  private meta(key: string): string | null {
    return this.sql.exec<{ value: string }>("SELECT value FROM index_meta WHERE key = ?", key).toArray()[0]?.value ?? null;
  }

  private setMeta(key: string, value: string): void {
    this.sql.exec("INSERT OR REPLACE INTO index_meta (key, value) VALUES (?, ?)", key, value);
  }
}

/** The index object of one digest (validated by the caller: `sha256:<64 hex>`). */
export function blobIndexFor(namespace: DurableObjectNamespace<BlobIndex>, digest: string): DurableObjectStub<BlobIndex> {
  return namespace.get(namespace.idFromName(objectNames.blobIndex(digest)));
}
