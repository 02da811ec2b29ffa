/**
 * The global blob index: where the bytes of a digest are stored in R2, shared by every repository that
 * links the digest. One Durable Object per digest (SQLite storage), so the first complete upload of a digest
 * wins atomically and every later one learns the winner: a Durable Object runs one event at a time and a
 * synchronous transaction cannot interleave with another (platform.md §2 "Gates").
 *
 * Invariant: a record, once written, names bytes that nothing deletes while it names them (uploads delete
 * only objects no record names; see storage/blob-uploads.ts). Records are never rewritten.
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../config/env";
import { objectNames } from "./keys";

/** Where a blob's bytes are in R2. */
export interface BlobRecord {
  key: string;
  size: number;
}

export class BlobIndex extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS blob (id INTEGER PRIMARY KEY CHECK (id = 1), object_key TEXT NOT NULL, size INTEGER NOT NULL, created_at TEXT NOT NULL)",
    );
  }

  /** The record of this digest, or null when no upload of it has completed. */
  get(): BlobRecord | null {
    const row = this.ctx.storage.sql.exec<{ object_key: string; size: number }>("SELECT object_key, size FROM blob").toArray()[0];
    return row ? { key: row.object_key, size: row.size } : null;
  }

  /** Records `candidate` unless a record exists; returns the record that holds (the first claim wins). */
  claim(candidate: BlobRecord): BlobRecord {
    return this.ctx.storage.transactionSync(() => {
      const existing = this.get();
      if (existing) return existing;
      this.ctx.storage.sql.exec(
        "INSERT INTO blob (id, object_key, size, created_at) VALUES (1, ?, ?, ?)",
        candidate.key,
        candidate.size,
        new Date().toISOString(),
      );
      return candidate;
    });
  }
}

/** The index object of one digest (validated by the caller: `sha256:<64 hex>`). */
export function blobIndexFor(namespace: DurableObjectNamespace<BlobIndex>, digest: string): DurableObjectStub<BlobIndex> {
  return namespace.get(namespace.idFromName(objectNames.blobIndex(digest)));
}
