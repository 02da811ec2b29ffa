/**
 * The repository ledger: one Durable Object per repository (SQLite storage), the single writer and the
 * consistent reader of that repository's state: tags, manifests, blob links, the references that keep
 * blobs from being deleted, referrers, upload sessions and the repository's existence and visibility.
 *
 * Every operation is one synchronous transaction (`transactionSync`: nothing interleaves with it and a
 * throw rolls it back, platform.md §2), so a manifest push checks its blobs and records its references, tag
 * and referrer atomically, a tag move is a compare-and-set, and a blob delete cannot interleave with a push.
 *
 * After each commit the changed keys are published to Workers KV, the edge read path (docs/storage-schema.md).
 * The outbox table is the ledger's memory of what is unpublished: a key is marked in the same transaction as
 * the change, published afterwards, and retried by the alarm until KV accepts it. KV takes one write per
 * second per key (platform.md §1), so a second write to a key within a second waits for the alarm.
 *
 * Lifecycle (docs/lifecycle.md) is decided here too, in the same transactions: immutable-tag rules inside the
 * tag compare-and-set, tag history with its retention window and restores (deleted manifests a kept move
 * names stay in `retained_manifests`), retention rules, repository deletion, and the first step of garbage
 * collection (unreferenced links past the grace period; the blob index frees the bytes). One instance per
 * namespace (objectNames.namespacePolicy) holds the namespace's immutable-tag rules and delivers them.
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../config/env";
import { lifecycleConfig } from "../config/config";
import { AuditLog, recordLifecycleAction } from "./audit-log";
import { blobIndexFor, type BlobRecord, type LinkedBlobRecord } from "./blob-index";
import { kvKeys, objectNames } from "./keys";
import { USAGE_SCHEMA, UsageTables, type NamespaceUsage, type QuotaDenial, type ReservationRequest, type ReservationResult } from "./namespace-usage";
import { discardUploadBytes, type UploadState } from "./upload-state";
import { EVENT_OUTBOX_SCHEMA, EventOutbox } from "./repository-events";

/** An OCI descriptor as the referrers API lists it. */
export interface ReferrerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface RepositoryRecord {
  name: string;
  public: boolean;
  createdAt: string;
}

export interface StoredManifest {
  bytes: ArrayBuffer;
  mediaType: string;
}

/** A manifest push, as the ledger applies it. */
export interface ManifestPush {
  digest: string;
  mediaType: string;
  bytes: ArrayBuffer;
  /** Blobs (config, layers) that must be linked into the repository. */
  blobs: string[];
  /** Child manifests (an index's) that must be in the repository. */
  children: string[];
  /** Set when the manifest has a subject: its referrer entry. */
  referrer?: { subject: string; descriptor: ReferrerDescriptor };
  tag?: string;
  /** Who pushed, for the tag history. */
  actor: string;
  /** When the tag expires (ms): the image's `quay.expires-after` label (docs/lifecycle.md "Retention"). */
  expiresAt?: number;
}

/** A tag move refused because the tag is immutable: the tag and the rule (glob pattern) that protects it. */
export interface ImmutableTagDenial {
  tag: string;
  rule: string;
  /** Where the rule is set: on this repository, or on its namespace (`namespace:<name>`). */
  scope: string;
}

export interface ImmutableRule {
  pattern: string;
  createdAt: string;
  createdBy: string;
}

export type ManifestPushResult = { ok: true } | { ok: false; missing: string[] } | { ok: false; denied: ImmutableTagDenial };
export type TagDeleteResult = { ok: true } | { ok: false; reason: "unknown" } | { ok: false; reason: "immutable"; denied: ImmutableTagDenial };
export type ManifestDeleteResult = TagDeleteResult;

/** What a repository deletion removed (docs/lifecycle.md). */
export interface RepositoryDeletion {
  existed: boolean;
  tags: number;
  manifests: number;
  blobLinks: number;
  uploads: number;
}

/** Where a restore takes a tag: a digest it pointed at, or the digest it pointed at at a time. */
export type RestoreTarget = { digest: string } | { time: string };
export type RestoreResult =
  | { ok: true; digest: string; from: string | null; changed: boolean }
  | { ok: false; reason: "not_in_history" | "absent_at_time" | "expired"; message: string }
  | { ok: false; reason: "missing"; message: string; missing: string[] }
  | { ok: false; reason: "immutable"; denied: ImmutableTagDenial };

/** A page of tag history, newest first; `cursor` continues it. */
export interface TagHistoryPage {
  moves: (TagMove & { seq: number })[];
  cursor: number | null;
}
export type BlobDeleteResult = { ok: true } | { ok: false; reason: "unknown" } | { ok: false; reason: "referenced"; manifests: string[] };

/** An upload request's claim on its session; the newest claim is the only one that may change it. */
export type UploadClaim = { state: UploadState; lease: string };
export type UploadChange = "ok" | "superseded" | "gone";

export interface TagMove {
  tag: string;
  from: string | null;
  to: string | null;
  time: string;
  actor: string;
}

/** SQLite binds at most 100 parameters per statement (platform.md §2); references are checked in batches. */
const BIND_BATCH = 90;
/** SQLite rows hold at most 2 MB (platform.md §2); manifests (≤ 4 MiB) are stored in 1 MiB chunks. */
const MANIFEST_CHUNK_BYTES = 1024 * 1024;
/** KV refuses a second write to a key within one second (platform.md §1). */
const KV_KEY_WRITE_INTERVAL_MS = 1000;
/** How long a publication is retried before the alarm backs off to this interval. */
const MAX_RETRY_DELAY_MS = 60_000;
/** A session no request has changed for this long is abandoned: its bytes are dropped by the alarm. */
export const ABANDONED_UPLOAD_MS = 24 * 3600 * 1000;
/** Publications per alarm or commit; the rest follow in the next round. */
const PUBLISH_BATCH = 64;
/** The history-retention sweep runs at most this often per repository; reads filter by the window anyway. */
const HISTORY_SWEEP_SLACK_MS = 3600 * 1000;
/** Retained manifests forgotten per sweep (bounded work per alarm); the rest follow in the next one. */
const RETAINED_SWEEP_BATCH = 100;
/** Immutable-tag rules per repository (each tag move checks every rule). */
export const MAX_IMMUTABLE_RULES = 50;

type PublishKind = "manifest" | "tag" | "link" | "repository";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS repository (id INTEGER PRIMARY KEY CHECK (id = 1), public INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS manifests (digest TEXT PRIMARY KEY, media_type TEXT NOT NULL, size INTEGER NOT NULL, subject TEXT, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS manifest_chunks (digest TEXT NOT NULL, seq INTEGER NOT NULL, bytes BLOB NOT NULL, PRIMARY KEY (digest, seq));
CREATE TABLE IF NOT EXISTS manifest_blobs (manifest TEXT NOT NULL, blob TEXT NOT NULL, PRIMARY KEY (manifest, blob));
CREATE INDEX IF NOT EXISTS manifest_blobs_by_blob ON manifest_blobs (blob);
CREATE TABLE IF NOT EXISTS manifest_children (manifest TEXT NOT NULL, child TEXT NOT NULL, PRIMARY KEY (manifest, child));
CREATE TABLE IF NOT EXISTS tags (tag TEXT PRIMARY KEY, digest TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS tags_by_digest ON tags (digest);
CREATE TABLE IF NOT EXISTS tag_history (seq INTEGER PRIMARY KEY AUTOINCREMENT, tag TEXT NOT NULL, from_digest TEXT, to_digest TEXT, time TEXT NOT NULL, actor TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blob_links (digest TEXT PRIMARY KEY, object_key TEXT NOT NULL, size INTEGER NOT NULL, linked_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS referrers (subject TEXT NOT NULL, digest TEXT NOT NULL, descriptor TEXT NOT NULL, PRIMARY KEY (subject, digest));
CREATE TABLE IF NOT EXISTS uploads (id TEXT PRIMARY KEY, state TEXT NOT NULL, lease TEXT NOT NULL, status TEXT NOT NULL, digest TEXT, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (kind TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL, not_before INTEGER NOT NULL, attempts INTEGER NOT NULL, PRIMARY KEY (kind, name));
CREATE TABLE IF NOT EXISTS published (kind TEXT NOT NULL, name TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (kind, name));
CREATE INDEX IF NOT EXISTS tag_history_by_time ON tag_history (time);
CREATE INDEX IF NOT EXISTS tag_history_by_tag ON tag_history (tag, seq);
CREATE TABLE IF NOT EXISTS retained_manifests (digest TEXT PRIMARY KEY, media_type TEXT NOT NULL, size INTEGER NOT NULL, subject TEXT, referrer TEXT, blobs TEXT NOT NULL, children TEXT NOT NULL, created_at TEXT NOT NULL, deleted_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS immutable_rules (pattern TEXT PRIMARY KEY, created_at TEXT NOT NULL, created_by TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS namespace_rules (pattern TEXT PRIMARY KEY, created_at TEXT NOT NULL, created_by TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS policy_rules (pattern TEXT PRIMARY KEY, created_at TEXT NOT NULL, created_by TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS policy_members (repository TEXT PRIMARY KEY, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS retained_blobs (manifest TEXT NOT NULL, blob TEXT NOT NULL, PRIMARY KEY (manifest, blob));
CREATE INDEX IF NOT EXISTS retained_blobs_by_blob ON retained_blobs (blob);
CREATE TABLE IF NOT EXISTS link_seqs (digest TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pending_unlinks (digest TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (digest, seq));
CREATE TABLE IF NOT EXISTS retention_rules (pattern TEXT PRIMARY KEY, keep_newest INTEGER, expire_after_seconds INTEGER, created_at TEXT NOT NULL, created_by TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tag_expiry (tag TEXT PRIMARY KEY, digest TEXT NOT NULL, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS claimed_objects (object_key TEXT PRIMARY KEY, digest TEXT NOT NULL);
${USAGE_SCHEMA}${EVENT_OUTBOX_SCHEMA}`;

/** A retention rule: of the tags matching `pattern`, keep the newest `keepNewest`, and/or none older than `expireAfterSeconds`. */
export interface RetentionRule {
  pattern: string;
  keepNewest: number | null;
  expireAfterSeconds: number | null;
  createdAt: string;
  createdBy: string;
}

/** A tag removed (or to be removed) by retention, and why. */
export interface RetentionRemoval {
  tag: string;
  digest: string;
  reason: string;
}

/** An untagged manifest removed (or to be removed) by its retention. */
export interface UntaggedExpiry {
  digest: string;
  untaggedSince: string;
  retentionSeconds: number;
}

/**
 * Manifests untagged retention may remove, with the time each became untagged (`since`: the later of its push
 * and the last tag move away from it): no tag points at it, and no relationship in the repository keeps it —
 * it is not a child of a manifest (an index's), not the subject of a referrer, and not a referrer whose
 * subject is a manifest of the repository (docs/lifecycle.md "Untagged manifests").
 */
const EXPIRABLE_UNTAGGED = `
  SELECT m.digest AS digest, MAX(m.created_at, COALESCE((SELECT MAX(h.time) FROM tag_history h WHERE h.from_digest = m.digest), '')) AS since
  FROM manifests m
  WHERE NOT EXISTS (SELECT 1 FROM tags t WHERE t.digest = m.digest)
    AND NOT EXISTS (SELECT 1 FROM manifest_children c WHERE c.child = m.digest)
    AND NOT EXISTS (SELECT 1 FROM referrers r WHERE r.subject = m.digest)
    AND NOT (m.subject IS NOT NULL AND EXISTS (SELECT 1 FROM manifests s WHERE s.digest = m.subject))`;

/** Untagged manifests removed per round (bounded work per alarm); the rest follow in the next round. */
const UNTAGGED_BATCH = 100;

/** The actor retention's tag moves are recorded under (tag history, audit log). */
export const RETENTION_ACTOR = "retention";
/** Tags removed per retention run (bounded work per alarm); the rest follow in the next run. */
const RETENTION_BATCH = 200;

/** What one round of the alarm's lifecycle work did (runLifecycle). */
export interface LifecycleRound {
  historyMoves: number;
  historyManifests: number;
  retentionTags: number;
  untaggedManifests: number;
  links: number;
  linkBytes: number;
}

/** A link that garbage collection removed (or, in a dry run, would remove). */
export interface CollectedLink {
  digest: string;
  size: number;
}

/** Unreferenced links: no manifest of the repository, live or kept for restores, references the blob. */
const UNREFERENCED_LINKS = `FROM blob_links WHERE digest NOT IN (SELECT blob FROM manifest_blobs) AND digest NOT IN (SELECT blob FROM retained_blobs)`;
/** Links removed per collection call (bounded work per alarm or admin request); the rest follow. */
const COLLECT_BATCH = 200;
/** Blob-index unlinks sent per round (platform.md §3: six simultaneous connections per invocation). */
const UNLINK_PARALLEL = 6;

/** A restore that cannot proceed; thrown inside its transaction so nothing of it is kept. */
class RestoreRefusal extends Error {
  constructor(readonly result: Exclude<RestoreResult, { ok: true }>) {
    super(result.reason);
  }
}

/** A tag glob (`*` any run of characters, `?` one character) as an anchored regular expression. */
export function immutablePatternRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\-]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}

/** Rule patterns: tag characters plus `*` and `?` (the tag grammar allows `[A-Za-z0-9_.-]`, ≤ 128). */
export function isValidImmutablePattern(pattern: string): boolean {
  return /^[A-Za-z0-9_.*?-]{1,128}$/.test(pattern);
}

interface OutboxRow {
  kind: PublishKind;
  name: string;
  version: number;
  attempts: number;
  [key: string]: SqlStorageValue;
}

export class RepositoryLedger extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** Committed changes for webhook subscribers (storage/repository-events.ts), sent like the KV publication. */
  private readonly events: EventOutbox;
  /** One publication loop at a time, so two never write one key within a second. */
  private publishing: Promise<void> | undefined;
  private publishAgain = false;

  /**
   * Whether the tables exist. They are created by the first write, so a read of a repository that does not
   * exist (any anonymous client can ask for any name) stores nothing.
   */
  private ready: boolean;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.events = new EventOutbox(this.sql, env);
    this.ready = this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").toArray().length > 0;
    // A ledger created before a table was added gets it now (every statement is CREATE … IF NOT EXISTS).
    if (this.ready) this.sql.exec(SCHEMA);
  }

  private ensureSchema(): void {
    if (this.ready) return;
    this.sql.exec(SCHEMA);
    this.ready = true;
  }

  // ---- reads (consistent) ----

  getRepository(repository: string): RepositoryRecord | null {
    if (!this.ready) return null;
    const row = this.sql.exec<{ public: number; created_at: string }>("SELECT public, created_at FROM repository").toArray()[0];
    return row ? { name: repository, public: row.public === 1, createdAt: row.created_at } : null;
  }

  getManifest(digest: string): StoredManifest | null {
    if (!this.ready) return null;
    const row = this.sql.exec<{ media_type: string }>("SELECT media_type FROM manifests WHERE digest = ?", digest).toArray()[0];
    return row ? { bytes: this.manifestBytes(digest), mediaType: row.media_type } : null;
  }

  hasManifest(digest: string): boolean {
    if (!this.ready) return false;
    return this.sql.exec("SELECT 1 FROM manifests WHERE digest = ?", digest).toArray().length > 0;
  }

  getTag(tag: string): string | null {
    if (!this.ready) return null;
    return this.sql.exec<{ digest: string }>("SELECT digest FROM tags WHERE tag = ?", tag).toArray()[0]?.digest ?? null;
  }

  getTaggedManifest(tag: string): (StoredManifest & { digest: string }) | null {
    const digest = this.getTag(tag);
    const manifest = digest === null ? null : this.getManifest(digest);
    return manifest && digest ? { ...manifest, digest } : null;
  }

  getBlobLink(digest: string): BlobRecord | null {
    if (!this.ready) return null;
    const row = this.sql.exec<{ object_key: string; size: number }>("SELECT object_key, size FROM blob_links WHERE digest = ?", digest).toArray()[0];
    return row ? { key: row.object_key, size: row.size } : null;
  }

  /** Tags in lexical order, at most `limit` after `last` (spec.md "Listing Tags"). */
  listTags(after: string, limit: number): string[] {
    if (!this.ready) return [];
    return this.sql.exec<{ tag: string }>("SELECT tag FROM tags WHERE tag > ? ORDER BY tag LIMIT ?", after, limit).toArray().map((row) => row.tag);
  }

  listReferrers(subject: string): ReferrerDescriptor[] {
    if (!this.ready) return [];
    return this.sql
      .exec<{ descriptor: string }>("SELECT descriptor FROM referrers WHERE subject = ? ORDER BY digest", subject)
      .toArray()
      .map((row) => JSON.parse(row.descriptor) as ReferrerDescriptor);
  }

  /** Committed tag moves, oldest first. */
  tagHistory(tag?: string): TagMove[] {
    if (!this.ready) return [];
    const rows = this.sql
      .exec<{ tag: string; from_digest: string | null; to_digest: string | null; time: string; actor: string }>(
        tag === undefined ? "SELECT * FROM tag_history ORDER BY seq" : "SELECT * FROM tag_history WHERE tag = ? ORDER BY seq",
        ...(tag === undefined ? [] : [tag]),
      )
      .toArray();
    return rows.map((row) => ({ tag: row.tag, from: row.from_digest, to: row.to_digest, time: row.time, actor: row.actor }));
  }

  // ---- repository writes ----

  /** Creates the repository if needed and sets its visibility. */
  setVisibility(repository: string, isPublic: boolean): RepositoryRecord {
    return this.change(repository, () => {
      this.ensureRepository();
      this.sql.exec("UPDATE repository SET public = ?", isPublic ? 1 : 0);
      this.mark("repository", "");
      return this.getRepository(repository)!;
    });
  }

  /**
   * Applies a manifest push atomically: every blob and child must be in the repository, else nothing
   * changes; then the manifest, its references, its referrer entry and its tag are recorded together.
   */
  async putManifest(repository: string, push: ManifestPush): Promise<ManifestPushResult> {
    // Every push registers with the namespace's holder once (its rules and its untagged-manifest retention).
    await this.ensureNamespaceRules(repository);
    return this.change(repository, () => {
      const missing = [
        ...this.missing("SELECT digest AS d FROM blob_links WHERE digest IN", push.blobs),
        ...this.missing("SELECT digest AS d FROM manifests WHERE digest IN", push.children),
      ];
      if (missing.length > 0) return { ok: false, missing };
      // Immutable tags (docs/lifecycle.md): checked before anything is written, in the tag's compare-and-set.
      const denied = push.tag === undefined ? null : this.immutableDenial(push.tag, push.digest);
      if (denied) return { ok: false, denied };
      const now = new Date().toISOString();
      if (!this.hasManifest(push.digest)) {
        // A manifest kept only for restores (deleted earlier) is pushed again: its kept copy goes.
        this.forgetRetained(push.digest);
        this.sql.exec(
          "INSERT INTO manifests (digest, media_type, size, subject, created_at) VALUES (?, ?, ?, ?, ?)",
          push.digest,
          push.mediaType,
          push.bytes.byteLength,
          push.referrer?.subject ?? null,
          now,
        );
        for (let offset = 0, seq = 0; offset < push.bytes.byteLength || seq === 0; offset += MANIFEST_CHUNK_BYTES, seq += 1) {
          this.sql.exec("INSERT INTO manifest_chunks (digest, seq, bytes) VALUES (?, ?, ?)", push.digest, seq, push.bytes.slice(offset, offset + MANIFEST_CHUNK_BYTES));
        }
        for (const blob of new Set(push.blobs)) this.sql.exec("INSERT OR IGNORE INTO manifest_blobs (manifest, blob) VALUES (?, ?)", push.digest, blob);
        for (const child of new Set(push.children)) this.sql.exec("INSERT OR IGNORE INTO manifest_children (manifest, child) VALUES (?, ?)", push.digest, child);
        if (push.referrer) {
          this.sql.exec(
            "INSERT OR REPLACE INTO referrers (subject, digest, descriptor) VALUES (?, ?, ?)",
            push.referrer.subject,
            push.digest,
            JSON.stringify(push.referrer.descriptor),
          );
        }
        this.mark("manifest", push.digest);
      }
      this.events.record("manifest.pushed", { repository, tag: push.tag, digest: push.digest, mediaType: push.mediaType, size: push.bytes.byteLength, actor: push.actor }, now);
      if (push.tag !== undefined) {
        this.moveTag(push.tag, push.digest, push.actor, now);
        // The image's `quay.expires-after` label (or its absence) decides the tag's expiry, as on Quay.
        this.sql.exec("DELETE FROM tag_expiry WHERE tag = ?", push.tag);
        if (push.expiresAt !== undefined) {
          this.sql.exec("INSERT INTO tag_expiry (tag, digest, expires_at) VALUES (?, ?, ?)", push.tag, push.digest, push.expiresAt);
          this.scheduleAlarm(push.expiresAt);
        }
      }
      this.ensureRepository();
      return { ok: true };
    });
  }

  /** Removes a tag (spec.md "Deleting tags"), unless an immutable-tag rule protects it. */
  async deleteTag(repository: string, tag: string, actor: string): Promise<TagDeleteResult> {
    await this.ensureNamespaceRules(repository);
    return this.change(repository, (): TagDeleteResult => {
      if (this.getTag(tag) === null) return { ok: false, reason: "unknown" };
      const denied = this.immutableDenial(tag, null);
      if (denied) return { ok: false, reason: "immutable", denied };
      this.moveTag(tag, null, actor, new Date().toISOString());
      return { ok: true };
    });
  }

  /**
   * Removes a manifest with its tags, referrer entry and blob references, unless one of its tags is
   * immutable. A manifest that the tag history can still restore (a move within the retention window names
   * it, including the tag removals this delete records) keeps its bytes in `retained_manifests`.
   */
  async deleteManifest(repository: string, digest: string, actor: string): Promise<ManifestDeleteResult> {
    await this.ensureNamespaceRules(repository);
    return this.change(repository, (): ManifestDeleteResult => {
      if (!this.hasManifest(digest)) return { ok: false, reason: "unknown" };
      const tags = this.sql.exec<{ tag: string }>("SELECT tag FROM tags WHERE digest = ?", digest).toArray().map((row) => row.tag);
      for (const tag of tags) {
        const denied = this.immutableDenial(tag, null);
        if (denied) return { ok: false, reason: "immutable", denied };
      }
      const now = new Date().toISOString();
      for (const tag of tags) this.moveTag(tag, null, actor, now);
      this.recordManifestEvent("manifest.deleted", repository, digest, actor, now);
      this.removeManifest(digest, now);
      return { ok: true };
    });
  }

  /** Inside a transaction: removes an untagged manifest (kept for restores when a history move names it). */
  private removeManifest(digest: string, now: string): void {
    // Its blobs' grace clocks restart: a push about to reference them again is protected (docs/lifecycle.md).
    this.sql.exec("UPDATE blob_links SET linked_at = ? WHERE digest IN (SELECT blob FROM manifest_blobs WHERE manifest = ?)", now, digest);
    if (this.inHistory(digest)) this.retainManifest(digest, now);
    else this.sql.exec("DELETE FROM manifest_chunks WHERE digest = ?", digest);
    this.sql.exec("DELETE FROM referrers WHERE digest = ?", digest);
    this.sql.exec("DELETE FROM manifest_blobs WHERE manifest = ?", digest);
    this.sql.exec("DELETE FROM manifest_children WHERE manifest = ?", digest);
    this.sql.exec("DELETE FROM manifests WHERE digest = ?", digest);
    this.mark("manifest", digest);
  }

  // ---- untagged-manifest expiry (docs/lifecycle.md "Untagged manifests") ----

  /** The repository's own retention of untagged manifests (seconds), and the namespace's as delivered to it. */
  untaggedRetention(): { repository: number | null; namespace: number | null } {
    if (!this.ready) return { repository: null, namespace: null };
    const read = (key: string) => {
      const value = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value;
      return value === undefined ? null : Number(value);
    };
    return { repository: read("untagged_expire_seconds"), namespace: read("namespace_untagged_seconds") };
  }

  /** Sets (seconds) or clears (null) the repository's own retention of untagged manifests. */
  setUntaggedRetention(repository: string, seconds: number | null): void {
    this.change(repository, () => {
      if (seconds === null) this.sql.exec("DELETE FROM meta WHERE key = 'untagged_expire_seconds'");
      else this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('untagged_expire_seconds', ?)", String(seconds));
    });
    this.scheduleAlarm(Date.now() + 1000);
  }

  /**
   * Removes (a dry run lists) at most UNTAGGED_BATCH manifests untagged for longer than the effective
   * retention (the repository's, else its namespace's; off when neither is set), oldest first. Each removal is
   * audited first (`manifest.expire`, actor `retention`), then made in one transaction that re-checks it.
   */
  async expireUntaggedManifests(options: { now?: number; dryRun?: boolean } = {}): Promise<UntaggedExpiry[]> {
    const repository = this.repositoryName();
    if (repository === null) return [];
    const now = options.now ?? Date.now();
    const planned = this.planUntaggedExpiry(now);
    if (options.dryRun || planned.length === 0) return planned;
    const audit = new AuditLog(this.env.REGISTRY_KV);
    for (const expiry of planned) {
      await audit.record({
        actor: RETENTION_ACTOR,
        action: "manifest.expire",
        target: `${repository}@${expiry.digest}`,
        detail: `untagged since ${expiry.untaggedSince}; retention ${expiry.retentionSeconds}s`,
      });
    }
    return this.change(repository, () => {
      const still = new Set(this.planUntaggedExpiry(now).map((expiry) => expiry.digest));
      const time = new Date(now).toISOString();
      const done = planned.filter((expiry) => still.has(expiry.digest));
      for (const expiry of done) {
        this.recordManifestEvent("manifest.expired", repository, expiry.digest, RETENTION_ACTOR, time);
        this.removeManifest(expiry.digest, time);
      }
      return done;
    });
  }

  /**
   * Manifests that expire at `now`: untagged (no tag points at them) since before `now - retention`, where
   * untagged since = the later of the push and the last tag move away from them; and not kept by a
   * relationship in the repository: a child of a manifest (an index's), the subject of a referrer, or a
   * referrer whose subject is a manifest of the repository.
   */
  private planUntaggedExpiry(now: number): UntaggedExpiry[] {
    const setting = this.untaggedRetention();
    const retentionSeconds = setting.repository ?? setting.namespace;
    if (retentionSeconds === null) return [];
    const cutoff = new Date(now - retentionSeconds * 1000).toISOString();
    return this.sql
      .exec<{ digest: string; since: string }>(
        `SELECT digest, since FROM (${EXPIRABLE_UNTAGGED}) WHERE since < ? ORDER BY since, digest LIMIT ?`,
        cutoff,
        UNTAGGED_BATCH,
      )
      .toArray()
      .map((row) => ({ digest: row.digest, untaggedSince: row.since, retentionSeconds }));
  }

  /** When the next untagged manifest expires (now when some already have), if a retention is set. */
  private nextUntaggedExpiry(): number | null {
    const setting = this.untaggedRetention();
    const retentionSeconds = setting.repository ?? setting.namespace;
    if (retentionSeconds === null) return null;
    const oldest = this.sql.exec<{ t: string | null }>(`SELECT MIN(since) AS t FROM (${EXPIRABLE_UNTAGGED})`).toArray()[0]?.t ?? null;
    return oldest === null ? null : Date.parse(oldest) + retentionSeconds * 1000;
  }

  // ---- lifecycle: repository deletion, tag history and restore, immutable tags (docs/lifecycle.md) ----

  /**
   * Deletes the repository's content in one transaction: tags, manifests (and kept copies), blob links,
   * referrers, tag history, immutable-tag rules, upload sessions and the repository record; every published
   * key is marked, so the outbox deletes it from KV. Blob bytes stay for garbage collection (they are shared
   * by digest); the bytes of open upload sessions are this repository's alone and are deleted here.
   */
  async deleteRepository(repository: string, deletedBy = "admin"): Promise<RepositoryDeletion> {
    const { deletion, sessions } = this.change(repository, () => {
      const count = (table: string) => this.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`).one().n;
      const existed = count("repository") > 0;
      const deletion: RepositoryDeletion = { existed, tags: count("tags"), manifests: count("manifests"), blobLinks: count("blob_links"), uploads: count("uploads") };
      for (const [kind, query] of [
        ["tag", "SELECT tag AS name FROM tags"],
        ["manifest", "SELECT digest AS name FROM manifests"],
        ["link", "SELECT digest AS name FROM blob_links"],
      ] as const) {
        // One statement per kind: the outbox learns every key the deletion unpublishes.
        this.sql.exec(
          `INSERT INTO outbox (kind, name, version, not_before, attempts) SELECT '${kind}', name, 1, 0, 0 FROM (${query}) WHERE true
           ON CONFLICT (kind, name) DO UPDATE SET version = version + 1, not_before = 0, attempts = 0`,
        );
      }
      this.mark("repository", "");
      // Every link goes: the blob index forgets this repository for each (garbage collection may then free them).
      this.sql.exec(
        "INSERT OR IGNORE INTO pending_unlinks (digest, seq) SELECT blob_links.digest, COALESCE(link_seqs.seq, 0) FROM blob_links LEFT JOIN link_seqs ON link_seqs.digest = blob_links.digest",
      );
      // Open sessions' bytes are deleted below; a finishing session's closer owns its bytes (it links nothing
      // once its row is gone: finishUpload).
      const sessions = this.sql
        .exec<{ state: string }>("SELECT state FROM uploads WHERE status = 'open'")
        .toArray()
        .map((row) => JSON.parse(row.state) as UploadState);
      for (const table of ["tags", "manifests", "manifest_chunks", "manifest_blobs", "manifest_children", "blob_links", "link_seqs", "referrers", "tag_history", "retained_manifests", "retained_blobs", "immutable_rules", "retention_rules", "tag_expiry", "uploads", "repository"]) {
        this.sql.exec(`DELETE FROM ${table}`);
      }
      if (existed) this.events.record("repository.deleted", { repository, actor: deletedBy });
      return { deletion, sessions };
    });
    for (const state of sessions) {
      await discardUploadBytes(this.env.REGISTRY_BUCKET, state).catch((error: unknown) =>
        console.error(JSON.stringify({ event: "deleted_repository_upload_cleanup_failed", repository, upload: state.id, error: String(error).slice(0, 200) })),
      );
      // Its quota reservation goes too (else it lapses: storage/namespace-usage.ts RESERVATION_TTL_MS).
      await namespaceHolderFor(this.env.REPOSITORY_LEDGER, repository)
        .releaseNamespaceReservation(state.id)
        .catch(() => undefined);
    }
    return deletion;
  }

  /** Tag moves within the retention window, newest first, `limit` at most, before history entry `before`. */
  tagHistoryPage(tag: string | undefined, before: number | undefined, limit: number): TagHistoryPage {
    if (!this.ready) return { moves: [], cursor: null };
    const cutoff = this.historyCutoff();
    const rows = this.sql
      .exec<{ seq: number; tag: string; from_digest: string | null; to_digest: string | null; time: string; actor: string }>(
        `SELECT * FROM tag_history WHERE time >= ? AND seq < ? ${tag === undefined ? "" : "AND tag = ?"} ORDER BY seq DESC LIMIT ?`,
        cutoff,
        before ?? Number.MAX_SAFE_INTEGER,
        ...(tag === undefined ? [] : [tag]),
        limit + 1,
      )
      .toArray();
    const moves = rows.slice(0, limit).map((row) => ({ seq: row.seq, tag: row.tag, from: row.from_digest, to: row.to_digest, time: row.time, actor: row.actor }));
    return { moves, cursor: rows.length > limit ? moves.at(-1)!.seq : null };
  }

  /**
   * Points `tag` back at a digest it held within the retention window (by digest, or the digest it held at
   * a time), as one recorded tag move. A manifest deleted since is reinstated from `retained_manifests`, with
   * its child manifests if they were kept too; its blobs must still be linked. Immutable rules apply.
   */
  async restoreTag(repository: string, tag: string, target: RestoreTarget, actor: string): Promise<RestoreResult> {
    await this.ensureNamespaceRules(repository);
    try {
      return this.change(repository, (): RestoreResult => {
        const cutoff = this.historyCutoff();
        const moves = this.sql
          .exec<{ from_digest: string | null; to_digest: string | null; time: string }>(
            "SELECT from_digest, to_digest, time FROM tag_history WHERE tag = ? AND time >= ? ORDER BY seq",
            tag,
            cutoff,
          )
          .toArray();
        let digest: string;
        if ("digest" in target) {
          digest = target.digest;
          if (!moves.some((move) => move.from_digest === digest || move.to_digest === digest)) {
            throw new RestoreRefusal({ ok: false, reason: "not_in_history", message: `tag ${tag} did not point at ${digest} within the history window` });
          }
        } else {
          if (target.time < cutoff) {
            throw new RestoreRefusal({ ok: false, reason: "expired", message: `${target.time} is older than the tag history window (${cutoff})` });
          }
          const before = moves.filter((move) => move.time <= target.time);
          // The tag's state at `time`: the last move until then, or, before any kept move, where the first began.
          const at = before.length > 0 ? before.at(-1)!.to_digest : (moves[0]?.from_digest ?? null);
          if (at === null) throw new RestoreRefusal({ ok: false, reason: "absent_at_time", message: `tag ${tag} did not exist at ${target.time}` });
          digest = at;
        }
        const from = this.getTag(tag);
        if (from === digest) return { ok: true, digest, from, changed: false };
        const denied = this.immutableDenial(tag, digest);
        if (denied) throw new RestoreRefusal({ ok: false, reason: "immutable", denied });
        this.reinstate(digest, new Set());
        this.moveTag(tag, digest, actor, new Date().toISOString());
        this.ensureRepository();
        return { ok: true, digest, from, changed: true };
      });
    } catch (error) {
      // platform.md §2: a throw inside transactionSync rolls it back, so nothing of the restore (reinstated
      // manifests included) was kept.
      if (error instanceof RestoreRefusal) return error.result;
      throw error;
    }
  }

  /** The repository's own immutable-tag rules (glob patterns). */
  immutableRules(): ImmutableRule[] {
    return this.rulesOf("immutable_rules");
  }

  /** Adds a rule (validated by the caller); false when the repository already holds MAX_IMMUTABLE_RULES. */
  addImmutableRule(repository: string, pattern: string, actor: string): boolean {
    return this.change(repository, () => {
      if (this.sql.exec("SELECT 1 FROM immutable_rules WHERE pattern = ?", pattern).toArray().length > 0) return true;
      if (this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM immutable_rules").one().n >= MAX_IMMUTABLE_RULES) return false;
      this.sql.exec("INSERT INTO immutable_rules (pattern, created_at, created_by) VALUES (?, ?, ?)", pattern, new Date().toISOString(), actor);
      return true;
    });
  }

  /** Removes a rule; false when there was none. */
  removeImmutableRule(repository: string, pattern: string): boolean {
    return this.change(repository, () => this.sql.exec("DELETE FROM immutable_rules WHERE pattern = ?", pattern).rowsWritten > 0);
  }

  /**
   * Forgets every tag move before `before` (an administrator's purge: those moves can no longer be restored),
   * and the kept manifests no remaining move names, in bounded batches.
   */
  purgeTagHistory(before: string): { moves: number; manifests: number } {
    const total = { moves: 0, manifests: 0 };
    for (let round = 0; round < 20; round++) {
      const swept = this.sweepTagHistory(Date.now(), before);
      total.moves += swept.moves;
      total.manifests += swept.manifests;
      if (swept.manifests < RETAINED_SWEEP_BATCH) break;
    }
    return total;
  }

  // ---- retention (docs/lifecycle.md "Retention") ----

  retentionRules(): RetentionRule[] {
    if (!this.ready) return [];
    return this.sql
      .exec<{ pattern: string; keep_newest: number | null; expire_after_seconds: number | null; created_at: string; created_by: string }>(
        "SELECT * FROM retention_rules ORDER BY pattern",
      )
      .toArray()
      .map((row) => ({ pattern: row.pattern, keepNewest: row.keep_newest, expireAfterSeconds: row.expire_after_seconds, createdAt: row.created_at, createdBy: row.created_by }));
  }

  /** Adds or replaces the rule of `pattern`; false when the repository holds MAX_IMMUTABLE_RULES rules already. */
  setRetentionRule(repository: string, rule: { pattern: string; keepNewest: number | null; expireAfterSeconds: number | null }, actor: string): boolean {
    const saved = this.change(repository, () => {
      const exists = this.sql.exec("SELECT 1 FROM retention_rules WHERE pattern = ?", rule.pattern).toArray().length > 0;
      if (!exists && this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM retention_rules").one().n >= MAX_IMMUTABLE_RULES) return false;
      this.sql.exec(
        "INSERT OR REPLACE INTO retention_rules (pattern, keep_newest, expire_after_seconds, created_at, created_by) VALUES (?, ?, ?, ?, ?)",
        rule.pattern,
        rule.keepNewest,
        rule.expireAfterSeconds,
        new Date().toISOString(),
        actor,
      );
      return true;
    });
    if (saved) this.scheduleAlarm(Date.now() + 1000);
    return saved;
  }

  removeRetentionRule(repository: string, pattern: string): boolean {
    return this.change(repository, () => this.sql.exec("DELETE FROM retention_rules WHERE pattern = ?", pattern).rowsWritten > 0);
  }

  /**
   * Removes the tags retention names at `now` (at most RETENTION_BATCH): expired `quay.expires-after`
   * labels, tags past a rule's `expireAfterSeconds` (by the time of their last move), and tags beyond a rule's
   * `keepNewest` (newest by last move). Immutable tags are never removed. Each removal is audited first, then
   * made in one transaction that re-checks it (the tag still points where it did), and recorded in the tag
   * history under the actor `retention`. A dry run only lists them.
   */
  async applyRetention(options: { now?: number; dryRun?: boolean } = {}): Promise<RetentionRemoval[]> {
    const repository = this.repositoryName();
    if (repository === null) return [];
    const now = options.now ?? Date.now();
    const planned = this.planRetention(now);
    if (options.dryRun || planned.length === 0) return planned;
    const audit = new AuditLog(this.env.REGISTRY_KV);
    for (const removal of planned) {
      await audit.record({ actor: RETENTION_ACTOR, action: "tag.expire", target: `${repository}:${removal.tag}`, detail: `${removal.reason}; was ${removal.digest}` });
    }
    return this.change(repository, () => {
      const time = new Date(now).toISOString();
      const done: RetentionRemoval[] = [];
      for (const removal of planned) {
        if (this.getTag(removal.tag) !== removal.digest || this.immutableDenial(removal.tag, null)) continue;
        this.moveTag(removal.tag, null, RETENTION_ACTOR, time);
        this.sql.exec("DELETE FROM tag_expiry WHERE tag = ?", removal.tag);
        done.push(removal);
      }
      return done;
    });
  }

  /** The tags retention would remove at `now` (immutable ones excluded), bounded. */
  private planRetention(now: number): RetentionRemoval[] {
    const planned = new Map<string, RetentionRemoval>();
    const add = (tag: string, digest: string, reason: string) => {
      if (planned.size < RETENTION_BATCH && !planned.has(tag) && !this.immutableDenial(tag, null)) planned.set(tag, { tag, digest, reason });
    };
    for (const row of this.sql
      .exec<{ tag: string; digest: string; expires_at: number }>(
        "SELECT tag_expiry.tag, tag_expiry.digest, expires_at FROM tag_expiry JOIN tags ON tags.tag = tag_expiry.tag AND tags.digest = tag_expiry.digest WHERE expires_at <= ? LIMIT ?",
        now,
        RETENTION_BATCH,
      )
      .toArray()) {
      add(row.tag, row.digest, "quay.expires-after label");
    }
    const rules = this.retentionRules();
    if (rules.length === 0) return [...planned.values()];
    const tags = this.sql.exec<{ tag: string; digest: string; updated_at: string }>("SELECT tag, digest, updated_at FROM tags ORDER BY updated_at DESC, tag").toArray();
    for (const rule of rules) {
      const pattern = immutablePatternRegExp(rule.pattern);
      const matching = tags.filter((row) => pattern.test(row.tag));
      matching.forEach((row, index) => {
        if (rule.keepNewest !== null && index >= rule.keepNewest) add(row.tag, row.digest, `rule ${rule.pattern}: keep newest ${rule.keepNewest}`);
        if (rule.expireAfterSeconds !== null && Date.parse(row.updated_at) <= now - rule.expireAfterSeconds * 1000) {
          add(row.tag, row.digest, `rule ${rule.pattern}: expire after ${rule.expireAfterSeconds}s`);
        }
      });
    }
    return [...planned.values()];
  }

  /** When retention next has work: the earliest label expiry or rule expiry; now when a rule is exceeded. */
  private nextRetention(): number | null {
    const times: number[] = [];
    const label = this.sql.exec<{ t: number | null }>("SELECT MIN(expires_at) AS t FROM tag_expiry").toArray()[0]?.t ?? null;
    if (label !== null) times.push(label);
    const rules = this.retentionRules();
    if (rules.length > 0) {
      const tags = this.sql.exec<{ tag: string; updated_at: string }>("SELECT tag, updated_at FROM tags ORDER BY updated_at DESC, tag").toArray();
      for (const rule of rules) {
        const pattern = immutablePatternRegExp(rule.pattern);
        // As planRetention: immutable tags count among the newest kept, and are never removed.
        const matching = tags.filter((row) => pattern.test(row.tag));
        const removable = (row: { tag: string }) => !this.immutableDenial(row.tag, null);
        if (rule.keepNewest !== null && matching.slice(rule.keepNewest).some(removable)) times.push(Date.now());
        const expiring = matching.filter(removable);
        if (rule.expireAfterSeconds !== null && expiring.length > 0) {
          times.push(Math.min(...expiring.map((row) => Date.parse(row.updated_at))) + rule.expireAfterSeconds * 1000);
        }
      }
    }
    return times.length === 0 ? null : Math.min(...times);
  }

  // ---- garbage collection of blob links (docs/lifecycle.md) ----

  /**
   * Removes (in a dry run: lists) up to COLLECT_BATCH links no manifest of the repository references, live
   * or kept for restores, whose grace clock (`linked_at`: linked, linked again, or released by a manifest
   * delete) is older than `graceMs`. One transaction: a manifest push either committed first (then the blob
   * is referenced and stays) or fails its blob check. The blob index is told after the commit.
   */
  async collectLinks(options: { graceMs: number; dryRun: boolean; now?: number }): Promise<{ links: CollectedLink[]; more: boolean }> {
    if (!this.ready) return { links: [], more: false };
    const cutoff = new Date((options.now ?? Date.now()) - options.graceMs).toISOString();
    const select = () =>
      this.sql
        .exec<{ digest: string; size: number }>(`SELECT digest, size ${UNREFERENCED_LINKS} AND linked_at < ? ORDER BY digest LIMIT ?`, cutoff, COLLECT_BATCH + 1)
        .toArray();
    if (options.dryRun) {
      const rows = select();
      return { links: rows.slice(0, COLLECT_BATCH), more: rows.length > COLLECT_BATCH };
    }
    const name = this.repositoryName();
    if (name === null) return { links: [], more: false };
    const rows = this.change(name, () => {
      const found = select();
      for (const { digest } of found.slice(0, COLLECT_BATCH)) this.removeLink(digest);
      return found;
    });
    await this.sendUnlinks();
    return { links: rows.slice(0, COLLECT_BATCH).map(({ digest, size }) => ({ digest, size })), more: rows.length > COLLECT_BATCH };
  }

  /**
   * Tells the blob index of each link number this ledger no longer holds (retried by the alarm): only after
   * the commit that let it go, and by exact number, so a link committed since (another number) stays.
   */
  async sendUnlinks(): Promise<number> {
    const repository = this.repositoryName();
    if (repository === null) return 0;
    // Bounded: at most 4 rounds of 60 per call (a collection batch is 200 links); the alarm takes the rest.
    let sent = 0;
    for (let round = 0; round < 4; round++) {
      const done = await this.sendUnlinkRound(repository);
      sent += done.sent;
      if (done.failed > 0 || done.sent === 0) break;
    }
    return sent;
  }

  private async sendUnlinkRound(repository: string): Promise<{ sent: number; failed: number }> {
    const pending = this.sql.exec<{ digest: string; seq: number }>("SELECT digest, seq FROM pending_unlinks LIMIT 60").toArray();
    let failed = 0;
    for (let start = 0; start < pending.length; start += UNLINK_PARALLEL) {
      await Promise.all(
        pending.slice(start, start + UNLINK_PARALLEL).map(async ({ digest, seq }) => {
          try {
            await blobIndexFor(this.env.BLOB_INDEX, digest).unlink(repository, seq, digest);
            // The namespace's usage row of this link number goes too (storage/namespace-usage.ts).
            await namespaceHolderFor(this.env.REPOSITORY_LEDGER, repository).releaseNamespaceLink(repository, digest, seq);
            this.sql.exec("DELETE FROM pending_unlinks WHERE digest = ? AND seq = ?", digest, seq);
          } catch (error) {
            failed += 1;
            console.error(JSON.stringify({ event: "blob_unlink_failed", repository, error: String(error).slice(0, 200) }));
          }
        }),
      );
    }
    if (failed > 0) this.scheduleAlarm(Date.now() + 5_000);
    return { sent: pending.length - failed, failed };
  }

  /**
   * Inside a transaction: links a blob (or restarts its grace clock) under the blob index's link number
   * `record.seq`. The number it replaces is unlinked after the commit: the index still holds the new one
   * (added by the claim or mount before this commit, and never unlinked since), so the repository stays listed.
   */
  private insertLink(digest: string, record: LinkedBlobRecord): void {
    const now = new Date().toISOString();
    if (this.getBlobLink(digest)) {
      this.sql.exec("UPDATE blob_links SET linked_at = ? WHERE digest = ?", now, digest);
    } else {
      this.sql.exec("INSERT INTO blob_links (digest, object_key, size, linked_at) VALUES (?, ?, ?, ?)", digest, record.key, record.size, now);
      this.mark("link", digest);
    }
    const replaced = this.sql.exec<{ seq: number }>("SELECT seq FROM link_seqs WHERE digest = ?", digest).toArray()[0]?.seq;
    if (replaced !== undefined && replaced !== record.seq) this.sql.exec("INSERT OR IGNORE INTO pending_unlinks (digest, seq) VALUES (?, ?)", digest, replaced);
    this.sql.exec("INSERT OR REPLACE INTO link_seqs (digest, seq) VALUES (?, ?)", digest, record.seq);
  }

  /** Inside a transaction: unlinks a blob, unpublishes its link and queues the blob-index unlink. */
  private removeLink(digest: string): void {
    const seq = this.sql.exec<{ seq: number }>("SELECT seq FROM link_seqs WHERE digest = ?", digest).toArray()[0]?.seq ?? 0;
    this.sql.exec("DELETE FROM blob_links WHERE digest = ?", digest);
    this.sql.exec("DELETE FROM link_seqs WHERE digest = ?", digest);
    this.sql.exec("INSERT OR IGNORE INTO pending_unlinks (digest, seq) VALUES (?, ?)", digest, seq);
    this.mark("link", digest);
  }

  /** When the oldest unreferenced link passes the grace period, if any. */
  private nextLinkCollection(): number | null {
    const oldest = this.sql.exec<{ t: string | null }>(`SELECT MIN(linked_at) AS t ${UNREFERENCED_LINKS}`).toArray()[0]?.t ?? null;
    return oldest === null ? null : Date.parse(oldest) + lifecycleConfig(this.env).gcGraceMs;
  }

  // ---- namespace immutable-tag rules ----
  //
  // A namespace's rules live in one ledger instance of its own (objectNames.namespacePolicy: no repository
  // has that name), the policy holder, in `policy_rules`. Each repository ledger enforces a copy
  // (`namespace_rules`) inside its tag compare-and-set, so no tag move waits on another object. The copy is
  // kept exact by two steps, each serialized by the holder (a Durable Object runs one event at a time):
  // (1) before its first tag change a repository registers with the holder, which records it as a member
  // and returns the rules; (2) a rule change commits in the holder, then is delivered to every member before
  // it is acknowledged (`policy_members.version` is what each member has; delivery is retried by the alarm).
  // So a rule acknowledged at time T is in force in every repository of the namespace for every tag change
  // that commits after T: a member registered before the change received it; a later one registered after.

  /** Holder: the namespace's rules. */
  namespacePolicyRules(): ImmutableRule[] {
    return this.rulesOf("policy_rules");
  }

  /**
   * Holder: adds or removes a namespace rule, then delivers the rules to every member repository. Returns
   * whether the rules changed and how many members could not be updated yet (the alarm retries them).
   */
  async changeNamespacePolicy(change: { add: string } | { remove: string }, actor: string): Promise<{ changed: boolean; full: boolean; pending: number }> {
    this.ensureSchema();
    const result = this.ctx.storage.transactionSync(() => {
      if ("add" in change) {
        if (this.sql.exec("SELECT 1 FROM policy_rules WHERE pattern = ?", change.add).toArray().length > 0) return { changed: false, full: false };
        if (this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM policy_rules").one().n >= MAX_IMMUTABLE_RULES) return { changed: false, full: true };
        this.sql.exec("INSERT INTO policy_rules (pattern, created_at, created_by) VALUES (?, ?, ?)", change.add, new Date().toISOString(), actor);
      } else if (this.sql.exec("DELETE FROM policy_rules WHERE pattern = ?", change.remove).rowsWritten === 0) {
        return { changed: false, full: false };
      }
      this.sql.exec("INSERT INTO meta (key, value) VALUES ('policy_version', '1') ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1");
      return { changed: true, full: false };
    });
    if (!result.changed) return { ...result, pending: 0 };
    // The alarm delivers the change should this request end before the members have it.
    this.scheduleAlarm(Date.now() + 5_000);
    const pending = await this.deliverNamespacePolicy();
    return { ...result, pending };
  }

  // ---- namespace storage use and quota (holder; storage/namespace-usage.ts, docs/lifecycle.md) ----

  private usageTables(): UsageTables {
    this.ensureSchema();
    return new UsageTables(this.sql);
  }

  /** Holder: grants or refuses an upload's (or a mount's) reservation, in one transaction. */
  reserveNamespaceBytes(request: ReservationRequest): ReservationResult {
    return this.holderChange((usage) => usage.reserve(request, Date.now()));
  }

  /** Holder: a link a repository ledger is about to commit, replacing its reservation (never refused). */
  commitNamespaceLink(repository: string, digest: string, seq: number, size: number, reservation: string | null): void {
    this.holderChange((usage) => usage.commitLink(repository, digest, seq, size, reservation));
  }

  /** Holder: a link number a ledger no longer holds (sent after its commit, like the blob index's unlink). */
  releaseNamespaceLink(repository: string, digest: string, seq: number): void {
    this.holderChange((usage) => usage.releaseLink(repository, digest, seq));
  }

  releaseNamespaceReservation(id: string): void {
    this.holderChange((usage) => usage.releaseReservation(id));
  }

  namespaceUsage(namespace: string): NamespaceUsage {
    return this.usageTables().usage(namespace, Date.now());
  }

  /** Holder: sets (bytes) or clears (null) the namespace's quota; pushes after this commit are held to it. */
  setNamespaceQuota(namespace: string, bytes: number | null): NamespaceUsage {
    this.holderChange((usage) => usage.setQuota(bytes));
    return this.namespaceUsage(namespace);
  }

  private holderChange<T>(work: (usage: UsageTables) => T): T {
    const usage = this.usageTables();
    return this.ctx.storage.transactionSync(() => work(usage));
  }

  /**
   * The repository's storage use: `storedBytes` the blobs it links, each once (kept for restores or not yet
   * collected included); `logicalBytes` the sum over its manifests of the blobs each references, as pushed.
   */
  repositoryUsage(): { storedBytes: number; blobs: number; logicalBytes: number; manifests: number } {
    if (!this.ready) return { storedBytes: 0, blobs: 0, logicalBytes: 0, manifests: 0 };
    const stored = this.sql.exec<{ bytes: number; n: number }>("SELECT COALESCE(SUM(size), 0) AS bytes, COUNT(*) AS n FROM blob_links").one();
    const logical = this.sql
      .exec<{ bytes: number }>("SELECT COALESCE(SUM(blob_links.size), 0) AS bytes FROM manifest_blobs JOIN blob_links ON blob_links.digest = manifest_blobs.blob")
      .one().bytes;
    const manifests = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM manifests").one().n;
    return { storedBytes: stored.bytes, blobs: stored.n, logicalBytes: logical, manifests };
  }

  /** Holder: drops every rule (the namespace is deleted), delivered to the members like any change. */
  async clearNamespacePolicy(): Promise<{ removed: number; pending: number }> {
    if (!this.ready) return { removed: 0, pending: 0 };
    const removed = this.ctx.storage.transactionSync(() => {
      // A namespace created later under the name starts without a quota or an untagged-manifest retention.
      new UsageTables(this.sql).setQuota(null);
      const untagged = this.sql.exec("DELETE FROM meta WHERE key = 'policy_untagged_seconds'").rowsWritten;
      const count = this.sql.exec("DELETE FROM policy_rules").rowsWritten + untagged;
      if (count > 0) this.sql.exec("INSERT INTO meta (key, value) VALUES ('policy_version', '1') ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1");
      return count;
    });
    if (removed === 0) return { removed, pending: 0 };
    this.scheduleAlarm(Date.now() + 5_000);
    return { removed, pending: await this.deliverNamespacePolicy() };
  }

  /** Holder: records a repository as a member and returns the rules it must enforce, with their version. */
  registerPolicyMember(repository: string): { version: number; rules: ImmutableRule[]; untaggedSeconds: number | null } {
    this.ensureSchema();
    return this.ctx.storage.transactionSync(() => {
      const version = this.policyVersion();
      this.sql.exec("INSERT OR REPLACE INTO policy_members (repository, version) VALUES (?, ?)", repository, version);
      return { version, rules: this.namespacePolicyRules(), untaggedSeconds: this.policyUntaggedSeconds() };
    });
  }

  /** Holder: the namespace's retention of untagged manifests (seconds), or null (off). */
  policyUntaggedSeconds(): number | null {
    if (!this.ready) return null;
    const value = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'policy_untagged_seconds'").toArray()[0]?.value;
    return value === undefined ? null : Number(value);
  }

  /**
   * Holder: sets (seconds) or clears (null) the namespace's retention of untagged manifests, delivered to
   * every member like a rule change; returns how many members could not be reached yet (the alarm retries).
   */
  async setNamespaceUntaggedRetention(seconds: number | null): Promise<{ pending: number }> {
    this.ensureSchema();
    this.ctx.storage.transactionSync(() => {
      if (seconds === null) this.sql.exec("DELETE FROM meta WHERE key = 'policy_untagged_seconds'");
      else this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('policy_untagged_seconds', ?)", String(seconds));
      this.sql.exec("INSERT INTO meta (key, value) VALUES ('policy_version', '1') ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1");
    });
    this.scheduleAlarm(Date.now() + 5_000);
    return { pending: await this.deliverNamespacePolicy() };
  }

  /** Member: replaces its copy of the namespace's rules unless it already holds this version or a newer one. */
  applyNamespaceRules(version: number, rules: ImmutableRule[], untaggedSeconds: number | null = null): void {
    this.ensureSchema();
    this.ctx.storage.transactionSync(() => {
      const held = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'namespace_rules_version'").toArray()[0];
      if (held !== undefined && Number(held.value) >= version) return;
      if (untaggedSeconds === null) this.sql.exec("DELETE FROM meta WHERE key = 'namespace_untagged_seconds'");
      else this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('namespace_untagged_seconds', ?)", String(untaggedSeconds));
      this.sql.exec("DELETE FROM namespace_rules");
      for (const rule of rules) {
        this.sql.exec("INSERT INTO namespace_rules (pattern, created_at, created_by) VALUES (?, ?, ?)", rule.pattern, rule.createdAt, rule.createdBy);
      }
      this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('namespace_rules_version', ?)", String(version));
    });
  }

  /** Member: the namespace rules this repository enforces (its copy). */
  namespaceRulesCopy(): ImmutableRule[] {
    return this.rulesOf("namespace_rules");
  }

  /** Holder: sends the current rules to every member behind the current version; returns how many failed. */
  private async deliverNamespacePolicy(): Promise<number> {
    if (!this.ready) return 0;
    const version = this.policyVersion();
    const rules = this.namespacePolicyRules();
    const untaggedSeconds = this.policyUntaggedSeconds();
    const behind = this.sql.exec<{ repository: string }>("SELECT repository FROM policy_members WHERE version < ?", version).toArray();
    let failed = 0;
    // platform.md §3: six simultaneous connections per invocation; members are updated a few at a time.
    for (let start = 0; start < behind.length; start += 6) {
      await Promise.all(
        behind.slice(start, start + 6).map(async ({ repository }) => {
          try {
            await ledgerFor(this.env.REPOSITORY_LEDGER, repository).applyNamespaceRules(version, rules, untaggedSeconds);
            this.sql.exec("UPDATE policy_members SET version = ? WHERE repository = ? AND version < ?", version, repository, version);
          } catch (error) {
            failed += 1;
            console.error(JSON.stringify({ event: "namespace_policy_delivery_failed", repository, error: String(error).slice(0, 200) }));
          }
        }),
      );
    }
    if (failed > 0) this.scheduleAlarm(Date.now() + 5_000);
    return failed;
  }

  private policyVersion(): number {
    return Number(this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'policy_version'").toArray()[0]?.value ?? "0");
  }

  /** Member: registers with the namespace's holder once, before its first tag change (see above). */
  private async ensureNamespaceRules(repository: string): Promise<void> {
    if (this.ready && this.sql.exec("SELECT 1 FROM meta WHERE key = 'namespace_rules_version'").toArray().length > 0) return;
    const namespace = repository.slice(0, repository.indexOf("/"));
    const { version, rules, untaggedSeconds } = await ledgerFor(this.env.REPOSITORY_LEDGER, objectNames.namespacePolicy(namespace), true).registerPolicyMember(repository);
    this.applyNamespaceRules(version, rules, untaggedSeconds);
  }

  private rulesOf(table: "immutable_rules" | "namespace_rules" | "policy_rules"): ImmutableRule[] {
    if (!this.ready) return [];
    return this.sql
      .exec<{ pattern: string; created_at: string; created_by: string }>(`SELECT * FROM ${table} ORDER BY pattern`)
      .toArray()
      .map((row) => ({ pattern: row.pattern, createdAt: row.created_at, createdBy: row.created_by }));
  }

  /**
   * Forgets tag moves older than the retention window, then (bounded) the retained manifests no remaining
   * move names. Run by the alarm; reads filter by the window, so a late sweep never widens what is shown.
   */
  sweepTagHistory(now = Date.now(), before?: string): { moves: number; manifests: number } {
    if (!this.ready) return { moves: 0, manifests: 0 };
    return this.ctx.storage.transactionSync(() => {
      const windowStart = this.historyCutoff(now);
      const cutoff = before !== undefined && before > windowStart ? before : windowStart;
      const moves = this.sql.exec("DELETE FROM tag_history WHERE time < ?", cutoff).rowsWritten;
      const unnamed = this.sql
        .exec<{ digest: string }>(
          `SELECT digest FROM retained_manifests WHERE digest NOT IN
             (SELECT from_digest FROM tag_history WHERE from_digest IS NOT NULL UNION SELECT to_digest FROM tag_history WHERE to_digest IS NOT NULL)
           LIMIT ?`,
          RETAINED_SWEEP_BATCH,
        )
        .toArray();
      for (const { digest } of unnamed) this.forgetRetained(digest);
      return { moves, manifests: unnamed.length };
    });
  }

  /**
   * Links a blob into the repository (upload finish, mount), after the blob index recorded this repository's
   * link `record.seq`; the first link of a digest stays, and linking again restarts its grace clock.
   */
  linkBlob(repository: string, digest: string, record: LinkedBlobRecord): void {
    this.change(repository, () => this.insertLink(digest, record));
  }

  /**
   * Cross-repository mount (spec.md "Mounting a blob"): links `from`'s bytes if the blob index still names
   * them, adding this repository to its links first; null when they were collected meanwhile.
   */
  async mountBlob(repository: string, digest: string, from: BlobRecord): Promise<BlobRecord | null | { denied: QuotaDenial }> {
    // The namespace's quota (docs/lifecycle.md "Quotas and usage"): the mount reserves the blob, pinned to its
    // digest (free when the namespace holds it already), before the blob index or this ledger record anything.
    const holder = namespaceHolderFor(this.env.REPOSITORY_LEDGER, repository);
    const reservation = `mount:${crypto.randomUUID()}`;
    const reserved = await holder.reserveNamespaceBytes({ repository, id: reservation, minBytes: from.size, maxBytes: from.size, digest });
    if (!reserved.ok) return { denied: reserved.denial };
    const linked = await blobIndexFor(this.env.BLOB_INDEX, digest).link(repository, from.key);
    if (!linked) {
      await holder.releaseNamespaceReservation(reservation);
      return null;
    }
    await holder.commitNamespaceLink(repository, digest, linked.seq, linked.size, reservation);
    this.linkBlob(repository, digest, linked);
    return { key: linked.key, size: linked.size };
  }

  /** Unlinks a blob unless a manifest of the repository references it (spec.md "Deleting Blobs"). */
  deleteBlobLink(repository: string, digest: string): BlobDeleteResult {
    return this.change(repository, (): BlobDeleteResult => {
      if (!this.getBlobLink(digest)) return { ok: false, reason: "unknown" };
      const manifests = this.sql
        .exec<{ manifest: string }>("SELECT manifest FROM manifest_blobs WHERE blob = ? LIMIT 10", digest)
        .toArray()
        .map((row) => row.manifest);
      if (manifests.length > 0) return { ok: false, reason: "referenced", manifests };
      this.removeLink(digest);
      return { ok: true };
    });
  }

  // ---- upload sessions ----

  /** Records a new session, claimed by the request that creates it. */
  createUpload(repository: string, state: UploadState, lease: string): void {
    this.change(repository, () => {
      this.sql.exec(
        "INSERT INTO uploads (id, state, lease, status, updated_at) VALUES (?, ?, ?, 'open', ?)",
        state.id,
        JSON.stringify(state),
        lease,
        Date.now(),
      );
    });
    this.scheduleAlarm(Date.now() + ABANDONED_UPLOAD_MS);
  }

  /** The state of an open session (upload status), without claiming it. */
  getUpload(id: string): UploadState | null {
    if (!this.ready) return null;
    const row = this.sql.exec<{ state: string }>("SELECT state FROM uploads WHERE id = ? AND status = 'open'", id).toArray()[0];
    return row ? (JSON.parse(row.state) as UploadState) : null;
  }

  /**
   * Claims an open session for one request: the newest claim wins, and an older request's later change is
   * refused ("superseded"), so a session's changes apply one at a time, in the order requests claimed it.
   */
  claimUpload(id: string, lease: string): UploadClaim | null {
    if (!this.ready) return null;
    return this.ctx.storage.transactionSync(() => {
      const row = this.sql.exec<{ state: string }>("SELECT state FROM uploads WHERE id = ? AND status = 'open'", id).toArray()[0];
      if (!row) return null;
      this.sql.exec("UPDATE uploads SET lease = ?, updated_at = ? WHERE id = ?", lease, Date.now(), id);
      return { state: JSON.parse(row.state) as UploadState, lease };
    });
  }

  /** Saves a session's new state if `lease` is still its newest claim. */
  saveUpload(id: string, lease: string, state: UploadState): UploadChange {
    return this.ctx.storage.transactionSync(() => {
      const check = this.checkLease(id, lease);
      if (check !== "ok") return check;
      this.sql.exec("UPDATE uploads SET state = ?, updated_at = ? WHERE id = ?", JSON.stringify(state), Date.now(), id);
      return "ok";
    });
  }

  /**
   * Ends a session for good if `lease` is its newest claim (finish, cancel, digest mismatch): from here no
   * request can continue it, so the caller alone may complete, link or delete its bytes. A finish keeps the
   * digest and the final state until finishUpload, so the alarm can settle one whose request died.
   */
  closeUpload(id: string, lease: string, finishing?: { digest: string; state: UploadState }): UploadChange {
    return this.ctx.storage.transactionSync(() => {
      const check = this.checkLease(id, lease);
      if (check !== "ok") return check;
      if (finishing === undefined) this.sql.exec("DELETE FROM uploads WHERE id = ?", id);
      else {
        this.sql.exec(
          "UPDATE uploads SET status = 'finishing', digest = ?, state = ?, updated_at = ? WHERE id = ?",
          finishing.digest,
          JSON.stringify(finishing.state),
          Date.now(),
          id,
        );
      }
      return "ok";
    });
  }

  /**
   * Completes a finish begun by closeUpload: links the blob and forgets the session, in one transaction.
   * A session whose row is gone links nothing: its repository was deleted (or the alarm settled it, which
   * links it itself).
   */
  finishUpload(repository: string, id: string, digest: string, record: LinkedBlobRecord, candidateKey?: string): void {
    this.change(repository, () => {
      const open = this.sql.exec("DELETE FROM uploads WHERE id = ?", id).rowsWritten > 0;
      // The session's bytes won the blob record: from here the record, not the session, names them (for the
      // orphan sweep, BlobUploads.sweepOrphanBlobObjects). Kept even when the repository was deleted.
      if (candidateKey === record.key) this.sql.exec("INSERT OR REPLACE INTO claimed_objects (object_key, digest) VALUES (?, ?)", record.key, digest);
      // A session whose row is gone (its repository was deleted) links nothing, and the blob index's row of
      // this claim is taken back; a link the repository holds anyway (the alarm settled it) keeps this number.
      if (open || this.getBlobLink(digest)) this.insertLink(digest, record);
      else this.sql.exec("INSERT OR IGNORE INTO pending_unlinks (digest, seq) VALUES (?, ?)", digest, record.seq);
    });
  }

  /**
   * Takes every session idle since `cutoff` out of the ledger and returns it, so the caller can drop its
   * bytes (open sessions) or settle its finish (sessions whose finishing request died).
   */
  takeAbandonedUploads(cutoff: number): { state: UploadState; finishingDigest: string | null }[] {
    return this.ctx.storage.transactionSync(() => {
      const rows = this.sql
        .exec<{ state: string; status: string; digest: string | null }>("SELECT state, status, digest FROM uploads WHERE updated_at < ? LIMIT 100", cutoff)
        .toArray();
      const taken = rows.map((row) => ({ state: JSON.parse(row.state) as UploadState, finishingDigest: row.status === "finishing" ? row.digest : null }));
      for (const { state, finishingDigest } of taken) {
        this.sql.exec("DELETE FROM uploads WHERE id = ?", state.id);
        // A finish the alarm settles may claim these bytes: named here before the session row goes (orphan sweep).
        if (finishingDigest !== null) this.sql.exec("INSERT OR REPLACE INTO claimed_objects (object_key, digest) VALUES (?, ?)", state.blobKey, finishingDigest);
      }
      return taken;
    });
  }

  /**
   * What of this repository may still need blob object `key`, written by upload session `uploadId` (the
   * orphan sweep asks): the session itself (open or finishing), or the blob record it won (its digest).
   */
  objectReference(uploadId: string, key: string): { session: boolean; digest: string | null } {
    if (!this.ready) return { session: false, digest: null };
    const session = this.sql.exec("SELECT 1 FROM uploads WHERE id = ?", uploadId).toArray().length > 0;
    const digest = this.sql.exec<{ digest: string }>("SELECT digest FROM claimed_objects WHERE object_key = ?", key).toArray()[0]?.digest ?? null;
    return { session, digest };
  }

  /** The blob record no longer names `key` (collected, or another upload won): forgotten. */
  forgetClaimedObject(key: string): void {
    if (this.ready) this.sql.exec("DELETE FROM claimed_objects WHERE object_key = ?", key);
  }

  /** The earliest time a session may become abandoned, if any session exists. */
  nextUploadExpiry(): number | null {
    if (!this.ready) return null;
    const row = this.sql.exec<{ t: number | null }>("SELECT MIN(updated_at) AS t FROM uploads").toArray()[0];
    return row?.t == null ? null : row.t + ABANDONED_UPLOAD_MS;
  }

  // ---- publication to KV ----

  /** Publishes what is due (retrying failures), settles abandoned upload sessions, sweeps expired tag history. */
  override async alarm(): Promise<void> {
    await this.publish();
    await this.events.send();
    await this.deliverNamespacePolicy();
    await this.settleAbandonedUploads();
    await this.runLifecycle();
    await this.sendUnlinks();
    this.scheduleNext();
  }

  /**
   * The alarm's lifecycle work at `now` (docs/lifecycle.md), each action in the audit log: tag moves past the
   * history window forgotten (`tag-history.expire`, a summary), retention (`tag.expire`, each tag, before it
   * is removed), untagged manifests past their retention (`manifest.expire`, each, before), and unreferenced
   * links past the grace period (`gc.links`, a summary with counts and bytes). Summaries are written after the
   * change, with its exact counts.
   */
  async runLifecycle(now = Date.now()): Promise<LifecycleRound> {
    const repository = this.repositoryName();
    const round: LifecycleRound = { historyMoves: 0, historyManifests: 0, retentionTags: 0, untaggedManifests: 0, links: 0, linkBytes: 0 };
    if (repository === null) return round;
    const kv = this.env.REGISTRY_KV;
    const config = lifecycleConfig(this.env);
    const history = this.sweepTagHistory(now);
    round.historyMoves = history.moves;
    round.historyManifests = history.manifests;
    if (history.moves + history.manifests > 0) {
      const days = config.tagHistoryRetentionMs / 86_400_000;
      await recordLifecycleAction(kv, {
        actor: RETENTION_ACTOR,
        action: "tag-history.expire",
        target: repository,
        detail: `forgot ${history.moves} tag moves older than ${days} days and ${history.manifests} manifests kept only for them`,
      });
    }
    round.retentionTags = (await this.applyRetention({ now })).length;
    round.untaggedManifests = (await this.expireUntaggedManifests({ now })).length;
    const collected = await this.collectLinks({ graceMs: config.gcGraceMs, dryRun: false, now });
    round.links = collected.links.length;
    round.linkBytes = collected.links.reduce((sum, link) => sum + link.size, 0);
    if (round.links > 0) {
      await recordLifecycleAction(kv, {
        action: "gc.links",
        target: repository,
        detail: `removed ${round.links} unreferenced blob links (${round.linkBytes} bytes) past the ${config.gcGraceMs / 3_600_000} h grace period${collected.more ? "; more follow" : ""}`,
      });
    }
    return round;
  }

  /**
   * Sessions idle for ABANDONED_UPLOAD_MS: an open one's bytes are deleted; one whose finishing request died
   * after closing it is settled as that request would have (its completed object is claimed in the blob
   * index and linked; an object that never completed is discarded).
   */
  async settleAbandonedUploads(now = Date.now()): Promise<number> {
    const repository = this.repositoryName();
    if (repository === null) return 0;
    const bucket = this.env.REGISTRY_BUCKET;
    const abandoned = this.takeAbandonedUploads(now - ABANDONED_UPLOAD_MS);
    for (const { state, finishingDigest } of abandoned) {
      try {
        const completed = finishingDigest === null ? null : await bucket.head(state.blobKey);
        if (finishingDigest !== null && completed?.size === state.offset) {
          const record = await blobIndexFor(this.env.BLOB_INDEX, finishingDigest).claim({ key: state.blobKey, size: state.offset }, repository);
          // The finish reserved the blob pinned to its digest before closing the session: the link takes it over.
          await namespaceHolderFor(this.env.REPOSITORY_LEDGER, repository).commitNamespaceLink(repository, finishingDigest, record.seq, record.size, state.id);
          this.linkBlob(repository, finishingDigest, record);
          if (record.key !== state.blobKey) {
            await bucket.delete(state.blobKey);
            this.forgetClaimedObject(state.blobKey);
          }
        } else {
          await discardUploadBytes(bucket, state);
          if (finishingDigest !== null) this.forgetClaimedObject(state.blobKey);
          await namespaceHolderFor(this.env.REPOSITORY_LEDGER, repository).releaseNamespaceReservation(state.id);
        }
      } catch (error) {
        console.error(JSON.stringify({ event: "abandoned_upload_cleanup_failed", repository, upload: state.id, error: String(error).slice(0, 200) }));
      }
    }
    return abandoned.length;
  }

  /** Keys waiting for publication (tests and the bench read this). */
  pendingPublications(): number {
    if (!this.ready) return 0;
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM outbox").one().n;
  }

  /** Publishes every due key now; resolves when this round is done (used after commits and by the alarm). */
  publish(): Promise<void> {
    if (this.publishing) {
      this.publishAgain = true;
      return this.publishing;
    }
    this.publishing = (async () => {
      try {
        do {
          this.publishAgain = false;
          await this.publishDue();
        } while (this.publishAgain);
      } finally {
        this.publishing = undefined;
      }
    })();
    return this.publishing;
  }

  private async publishDue(): Promise<void> {
    const name = this.repositoryName();
    if (name === null) return;
    const now = Date.now();
    const due = this.sql
      .exec<OutboxRow>("SELECT kind, name, version, attempts FROM outbox WHERE not_before <= ? ORDER BY not_before LIMIT ?", now, PUBLISH_BATCH)
      .toArray();
    await Promise.all(
      due.map(async (row) => {
        const last = this.sql.exec<{ at: number }>("SELECT at FROM published WHERE kind = ? AND name = ?", row.kind, row.name).toArray()[0]?.at;
        if (last !== undefined && now - last < KV_KEY_WRITE_INTERVAL_MS) {
          // platform.md §1: one write per second per key; the alarm publishes it once the second has passed.
          this.sql.exec("UPDATE outbox SET not_before = ? WHERE kind = ? AND name = ?", last + KV_KEY_WRITE_INTERVAL_MS, row.kind, row.name);
          return;
        }
        try {
          await this.writeToKv(name, row.kind, row.name);
          this.sql.exec("INSERT OR REPLACE INTO published (kind, name, at) VALUES (?, ?, ?)", row.kind, row.name, Date.now());
          // A change committed while this write was in flight bumped the version: it stays for the next round.
          this.sql.exec("DELETE FROM outbox WHERE kind = ? AND name = ? AND version = ?", row.kind, row.name, row.version);
        } catch (error) {
          const delay = Math.min(MAX_RETRY_DELAY_MS, 1000 * 2 ** row.attempts);
          this.sql.exec("UPDATE outbox SET attempts = attempts + 1, not_before = ? WHERE kind = ? AND name = ?", Date.now() + delay, row.kind, row.name);
          console.error(JSON.stringify({ event: "kv_publish_failed", repository: name, kind: row.kind, error: String(error).slice(0, 200) }));
        }
      }),
    );
    this.scheduleNext();
  }

  /** Writes the current committed value of one published key (or deletes it when the value is gone). */
  private async writeToKv(repository: string, kind: PublishKind, name: string): Promise<void> {
    const kv = this.env.REGISTRY_KV;
    switch (kind) {
      case "manifest": {
        const key = kvKeys.manifest(repository, name);
        const manifest = this.getManifest(name);
        if (!manifest) return kv.delete(key);
        return kv.put(key, manifest.bytes, { metadata: { mediaType: manifest.mediaType, size: manifest.bytes.byteLength } });
      }
      case "tag": {
        const key = kvKeys.tag(repository, name);
        const tagged = this.getTaggedManifest(name);
        if (!tagged) return kv.delete(key);
        // A tag's value is a copy of its manifest, so a pull by tag is one KV read.
        return kv.put(key, tagged.bytes, { metadata: { digest: tagged.digest, mediaType: tagged.mediaType } });
      }
      case "link": {
        const key = kvKeys.blobLink(repository, name);
        const link = this.getBlobLink(name);
        if (!link) return kv.delete(key);
        return kv.put(key, JSON.stringify(link));
      }
      case "repository": {
        const key = kvKeys.repository(repository);
        const record = this.getRepository(repository);
        if (!record) return kv.delete(key);
        return kv.put(key, JSON.stringify(record));
      }
    }
  }

  // ---- internals ----

  /** Runs one transaction that may mark keys for publication, then publishes them in the background. */
  private change<T>(repository: string, work: () => T): T {
    this.ensureSchema();
    const result = this.ctx.storage.transactionSync(() => {
      this.sql.exec("INSERT OR IGNORE INTO meta (key, value) VALUES ('name', ?)", repository);
      return work();
    });
    if (this.pendingPublications() > 0) {
      // The alarm is the safety net should this isolate go away before the publication below finishes.
      this.scheduleAlarm(Date.now() + 5_000);
      this.ctx.waitUntil(this.publish());
    }
    if (this.sql.exec("SELECT 1 FROM pending_unlinks LIMIT 1").toArray().length > 0) {
      this.scheduleAlarm(Date.now() + 5_000);
      this.ctx.waitUntil(this.sendUnlinks());
    }
    if (this.events.hasDue()) {
      this.scheduleAlarm(Date.now() + 5_000);
      this.ctx.waitUntil(this.events.send());
    }
    return result;
  }

  private repositoryName(): string | null {
    if (!this.ready) return null;
    return this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'name'").toArray()[0]?.value ?? null;
  }

  private ensureRepository(): void {
    if (this.sql.exec("SELECT 1 FROM repository").toArray().length > 0) return;
    this.sql.exec("INSERT INTO repository (id, public, created_at) VALUES (1, 0, ?)", new Date().toISOString());
    this.mark("repository", "");
  }

  /** Points a tag at a digest (null removes it), recording the move once if it changes anything. */
  private moveTag(tag: string, to: string | null, actor: string, time: string): void {
    const from = this.getTag(tag);
    if (from === to) return;
    if (to === null) this.sql.exec("DELETE FROM tags WHERE tag = ?", tag);
    else this.sql.exec("INSERT OR REPLACE INTO tags (tag, digest, updated_at) VALUES (?, ?, ?)", tag, to, time);
    this.sql.exec("INSERT INTO tag_history (tag, from_digest, to_digest, time, actor) VALUES (?, ?, ?, ?, ?)", tag, from, to, time, actor);
    this.mark("tag", tag);
    const type = to !== null ? "tag.moved" : actor === RETENTION_ACTOR ? "tag.expired" : "tag.deleted";
    this.events.record(type, { repository: this.repositoryName() ?? "", tag, digest: to ?? undefined, previousDigest: from ?? undefined, actor }, time);
  }

  /** Inside a transaction, before the manifest goes: its removal, for webhook subscribers. */
  private recordManifestEvent(type: "manifest.deleted" | "manifest.expired", repository: string, digest: string, actor: string, time: string): void {
    const row = this.sql.exec<{ media_type: string; size: number }>("SELECT media_type, size FROM manifests WHERE digest = ?", digest).toArray()[0];
    this.events.record(type, { repository, digest, mediaType: row?.media_type, size: row?.size, actor }, time);
  }

  /** Oldest time (ISO) still within the tag-history window (TAG_HISTORY_RETENTION_DAYS). */
  private historyCutoff(now = Date.now()): string {
    return new Date(now - lifecycleConfig(this.env).tagHistoryRetentionMs).toISOString();
  }

  /** When the oldest tag move (or a retained manifest) leaves the window, plus slack to batch sweeps. */
  private nextHistorySweep(): number | null {
    const oldest = this.sql.exec<{ t: string | null }>("SELECT MIN(time) AS t FROM tag_history").toArray()[0]?.t ?? null;
    const retained = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM retained_manifests").one().n;
    if (oldest === null) return retained > 0 ? Date.now() : null;
    return Date.parse(oldest) + lifecycleConfig(this.env).tagHistoryRetentionMs + HISTORY_SWEEP_SLACK_MS;
  }

  /** Whether a kept tag move names the digest (so a restore may need its bytes). */
  private inHistory(digest: string): boolean {
    return this.sql.exec("SELECT 1 FROM tag_history WHERE from_digest = ? OR to_digest = ? LIMIT 1", digest, digest).toArray().length > 0;
  }

  /** Moves a manifest being deleted into `retained_manifests` (its chunks stay), for restores. */
  private retainManifest(digest: string, now: string): void {
    const row = this.sql
      .exec<{ media_type: string; size: number; subject: string | null; created_at: string }>("SELECT media_type, size, subject, created_at FROM manifests WHERE digest = ?", digest)
      .one();
    const list = (query: string) => JSON.stringify(this.sql.exec<{ d: string }>(query, digest).toArray().map((r) => r.d));
    const referrer = this.sql.exec<{ descriptor: string }>("SELECT descriptor FROM referrers WHERE digest = ?", digest).toArray()[0]?.descriptor ?? null;
    this.sql.exec(
      "INSERT OR REPLACE INTO retained_manifests (digest, media_type, size, subject, referrer, blobs, children, created_at, deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      digest,
      row.media_type,
      row.size,
      row.subject,
      referrer,
      list("SELECT blob AS d FROM manifest_blobs WHERE manifest = ?"),
      list("SELECT child AS d FROM manifest_children WHERE manifest = ?"),
      row.created_at,
      now,
    );
    this.sql.exec("INSERT OR IGNORE INTO retained_blobs (manifest, blob) SELECT manifest, blob FROM manifest_blobs WHERE manifest = ?", digest);
  }

  /** Drops a retained manifest and its bytes (never a live manifest's: putManifest calls it before inserting). */
  private forgetRetained(digest: string): void {
    if (this.sql.exec("DELETE FROM retained_manifests WHERE digest = ?", digest).rowsWritten > 0 && !this.hasManifest(digest)) {
      this.sql.exec("DELETE FROM manifest_chunks WHERE digest = ?", digest);
    }
    this.sql.exec("UPDATE blob_links SET linked_at = ? WHERE digest IN (SELECT blob FROM retained_blobs WHERE manifest = ?)", new Date().toISOString(), digest);
    this.sql.exec("DELETE FROM retained_blobs WHERE manifest = ?", digest);
  }

  /**
   * Makes a digest a live manifest again (inside a restore's transaction): present already, or reinstated
   * from `retained_manifests` after its blobs (linked) and children (live or reinstated) are checked.
   */
  private reinstate(digest: string, visiting: Set<string>): void {
    if (this.hasManifest(digest)) return;
    const row = this.sql
      .exec<{ media_type: string; size: number; subject: string | null; referrer: string | null; blobs: string; children: string; created_at: string }>(
        "SELECT * FROM retained_manifests WHERE digest = ?",
        digest,
      )
      .toArray()[0];
    if (!row || visiting.has(digest)) {
      throw new RestoreRefusal({ ok: false, reason: "missing", message: `manifest ${digest} is no longer stored`, missing: [digest] });
    }
    visiting.add(digest);
    const blobs = JSON.parse(row.blobs) as string[];
    const children = JSON.parse(row.children) as string[];
    const missing = this.missing("SELECT digest AS d FROM blob_links WHERE digest IN", blobs);
    if (missing.length > 0) {
      throw new RestoreRefusal({ ok: false, reason: "missing", message: `blobs of ${digest} are no longer in the repository`, missing: missing.slice(0, 20) });
    }
    for (const child of children) this.reinstate(child, visiting);
    this.sql.exec(
      "INSERT INTO manifests (digest, media_type, size, subject, created_at) VALUES (?, ?, ?, ?, ?)",
      digest,
      row.media_type,
      row.size,
      row.subject,
      row.created_at,
    );
    for (const blob of blobs) this.sql.exec("INSERT OR IGNORE INTO manifest_blobs (manifest, blob) VALUES (?, ?)", digest, blob);
    for (const child of children) this.sql.exec("INSERT OR IGNORE INTO manifest_children (manifest, child) VALUES (?, ?)", digest, child);
    if (row.subject !== null && row.referrer !== null) {
      this.sql.exec("INSERT OR REPLACE INTO referrers (subject, digest, descriptor) VALUES (?, ?, ?)", row.subject, digest, row.referrer);
    }
    this.sql.exec("DELETE FROM retained_manifests WHERE digest = ?", digest);
    this.sql.exec("DELETE FROM retained_blobs WHERE manifest = ?", digest);
    this.mark("manifest", digest);
  }

  /**
   * The rule that forbids moving an existing tag to `to` (null: removing it), or null. A tag that does not
   * exist yet may be created; pushing the digest it already holds changes nothing and is allowed.
   */
  private immutableDenial(tag: string, to: string | null): ImmutableTagDenial | null {
    const current = this.getTag(tag);
    if (current === null || current === to) return null;
    for (const [table, scope] of [
      ["immutable_rules", "repository"],
      ["namespace_rules", "namespace"],
    ] as const) {
      for (const { pattern } of this.sql.exec<{ pattern: string }>(`SELECT pattern FROM ${table} ORDER BY pattern`).toArray()) {
        if (immutablePatternRegExp(pattern).test(tag)) return { tag, rule: pattern, scope };
      }
    }
    return null;
  }

  /** Marks a published key as changed: a new version to publish, due now. */
  private mark(kind: PublishKind, name: string): void {
    this.sql.exec(
      `INSERT INTO outbox (kind, name, version, not_before, attempts) VALUES (?, ?, 1, 0, 0)
       ON CONFLICT (kind, name) DO UPDATE SET version = version + 1, not_before = 0, attempts = 0`,
      kind,
      name,
    );
  }

  /** The digests of `values` that the query (`… IN`) does not find. */
  private missing(query: string, values: string[]): string[] {
    const unique = [...new Set(values)];
    const missing: string[] = [];
    for (let start = 0; start < unique.length; start += BIND_BATCH) {
      const batch = unique.slice(start, start + BIND_BATCH);
      const found = new Set(this.sql.exec<{ d: string }>(`${query} (${batch.map(() => "?").join(",")})`, ...batch).toArray().map((row) => row.d));
      missing.push(...batch.filter((digest) => !found.has(digest)));
    }
    return missing;
  }

  private checkLease(id: string, lease: string): UploadChange {
    if (!this.ready) return "gone";
    const row = this.sql.exec<{ lease: string; status: string }>("SELECT lease, status FROM uploads WHERE id = ?", id).toArray()[0];
    if (!row || row.status !== "open") return "gone";
    return row.lease === lease ? "ok" : "superseded";
  }

  private manifestBytes(digest: string): ArrayBuffer {
    const chunks = this.sql.exec<{ bytes: ArrayBuffer }>("SELECT bytes FROM manifest_chunks WHERE digest = ? ORDER BY seq", digest).toArray();
    const total = chunks.reduce((sum, chunk) => sum + chunk.bytes.byteLength, 0);
    const bytes = new Uint8Array(total);
    let offset = 0;
    for (const chunk of chunks) {
      bytes.set(new Uint8Array(chunk.bytes), offset);
      offset += chunk.bytes.byteLength;
    }
    return bytes.buffer;
  }

  /** The next alarm: the earliest unpublished key, abandoned session or tag-history expiry. */
  private scheduleNext(): void {
    if (!this.ready) return;
    const nextPublication = this.sql.exec<{ t: number | null }>("SELECT MIN(not_before) AS t FROM outbox").toArray()[0]?.t ?? null;
    const unlinks = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM pending_unlinks").one().n > 0 ? Date.now() + 5_000 : null;
    const times = [nextPublication, this.events.nextAttempt(), this.nextUploadExpiry(), this.nextHistorySweep(), this.nextLinkCollection(), unlinks, this.nextRetention(), this.nextUntaggedExpiry()].filter(
      (time): time is number => time !== null,
    );
    if (times.length > 0) this.scheduleAlarm(Math.max(Math.min(...times), Date.now() + 100));
  }

  /** Moves the one alarm earlier if `time` is sooner; serialized, so two callers never overwrite each other. */
  private scheduleAlarm(time: number): void {
    this.alarmScheduling = this.alarmScheduling
      .then(async () => {
        const current = await this.ctx.storage.getAlarm();
        if (current === null || current > time) await this.ctx.storage.setAlarm(time);
      })
      .catch((error: unknown) => console.error(JSON.stringify({ event: "ledger_alarm_not_set", error: String(error).slice(0, 200) })));
    this.ctx.waitUntil(this.alarmScheduling);
  }

  private alarmScheduling: Promise<void> = Promise.resolve();
}

/**
 * The ledger object of one repository (name validated by the caller); with `exactName`, the instance of that
 * object name (a namespace's policy holder, objectNames.namespacePolicy).
 */
/** The holder of a repository's namespace: its immutable-tag rules, storage use and quota. */
export function namespaceHolderFor(namespace: DurableObjectNamespace<RepositoryLedger>, repository: string): DurableObjectStub<RepositoryLedger> {
  return ledgerFor(namespace, objectNames.namespacePolicy(repository.includes("/") ? repository.slice(0, repository.indexOf("/")) : repository), true);
}

export function ledgerFor(namespace: DurableObjectNamespace<RepositoryLedger>, repository: string, exactName = false): DurableObjectStub<RepositoryLedger> {
  return namespace.get(namespace.idFromName(exactName ? repository : objectNames.repositoryLedger(repository)));
}
