/**
 * Storage use and the optional quota of one namespace (docs/lifecycle.md "Quotas and usage"), kept in the
 * namespace's holder (the RepositoryLedger instance objectNames.namespacePolicy, which also holds the
 * namespace's immutable-tag rules): one Durable Object, so every quota decision of the namespace is one
 * serialized transaction (platform.md §2), never a KV read (KV has no read-your-writes, platform.md §1).
 *
 * What it counts, its "effective use" E:
 *  - `usage_links`: one row per blob link a repository ledger of the namespace holds, under the blob
 *    index's link number (`seq`). A row is added *before* the ledger commits the link (upload settle, mount)
 *    and removed only by a release naming that number, sent after the ledger committed that it no longer
 *    holds it (the ledger's `pending_unlinks`, the same messages that unlink the blob index). So every link
 *    a ledger holds has a row here: the rows over-approximate the namespace's links, never under-count them.
 *  - `usage_reservations`: bytes an upload session in progress may store (its bytes so far plus those its
 *    current request declared), granted before they are written; at the finish, pinned to the blob's digest
 *    and exact size. Reservations lapse after RESERVATION_TTL_MS (sessions are abandoned long before).
 * E = the size of each distinct digest linked or pinned (once, whichever repositories hold it) + the bytes of
 * unpinned reservations. The quota is enforced on E: a reservation or mount that would raise E above the
 * quota is refused in the transaction that would make it, and no other change raises E (a settle turns a
 * pinned reservation into a link row of the same digest and size). Hence racing pushes together never pass
 * the quota: each transaction sees every reservation committed before it.
 */

/** Reservations older than this are ignored and dropped: the ledger abandons idle sessions after 24 h. */
export const RESERVATION_TTL_MS = 48 * 3600 * 1000;

export const USAGE_SCHEMA = `
CREATE TABLE IF NOT EXISTS usage_links (repository TEXT NOT NULL, digest TEXT NOT NULL, seq INTEGER NOT NULL, size INTEGER NOT NULL, PRIMARY KEY (repository, digest, seq));
CREATE INDEX IF NOT EXISTS usage_links_by_digest ON usage_links (digest);
CREATE TABLE IF NOT EXISTS usage_reservations (id TEXT PRIMARY KEY, repository TEXT NOT NULL, digest TEXT, bytes INTEGER NOT NULL, updated_at INTEGER NOT NULL);
`;

/** Why a reservation was refused: the namespace's use, the reservations of other uploads, the quota. */
export interface QuotaDenial {
  namespace: string;
  usedBytes: number;
  reservedBytes: number;
  quotaBytes: number;
  requestedBytes: number;
}

export interface ReservationRequest {
  repository: string;
  /** The upload session's id (or a mount's own id): one reservation each, replaced by each call. */
  id: string;
  /** The reservation must hold at least this many bytes, else it is refused. */
  minBytes: number;
  /** It is granted up to this many bytes (the room left under the quota, when less). */
  maxBytes: number;
  /** Known at a finish or a mount: a digest the namespace already counts costs nothing more. */
  digest?: string;
}

/** A push refused by the namespace's quota (turned into OCI `DENIED` by the registry handlers). */
export class QuotaExceededError extends Error {
  override name = "QuotaExceededError";
  constructor(readonly denial: QuotaDenial) {
    super(
      `namespace ${denial.namespace} would exceed its storage quota: ${denial.usedBytes} bytes used` +
        (denial.reservedBytes > 0 ? ` and ${denial.reservedBytes} reserved by uploads in progress` : "") +
        ` of a quota of ${denial.quotaBytes} bytes; ` +
        (denial.requestedBytes > 0 ? `this upload needs ${denial.requestedBytes} bytes` : "no room is left for this upload"),
    );
  }
}

/** `beyond`: when less than maxBytes was granted, the refusal that more bytes meet. */
export type ReservationResult = { ok: true; grantedBytes: number; beyond?: QuotaDenial } | { ok: false; denial: QuotaDenial };

export interface NamespaceUsage {
  namespace: string;
  quotaBytes: number | null;
  /** Deduplicated: each distinct blob linked by a repository of the namespace, once. */
  usedBytes: number;
  /** Granted to uploads in progress (not yet linked). */
  reservedBytes: number;
  blobs: number;
  /** Repositories that link blobs, with the bytes of the blobs each links. */
  repositories: { name: string; storedBytes: number }[];
}

export class UsageTables {
  constructor(private readonly sql: SqlStorage) {}

  quota(): number | null {
    const value = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'quota_bytes'").toArray()[0]?.value;
    return value === undefined ? null : Number(value);
  }

  setQuota(bytes: number | null): void {
    if (bytes === null) this.sql.exec("DELETE FROM meta WHERE key = 'quota_bytes'");
    else this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('quota_bytes', ?)", String(bytes));
  }

  /** Inside a transaction: grants (or refuses) a reservation; see the module comment. */
  reserve(request: ReservationRequest, now: number): ReservationResult {
    this.dropLapsed(now);
    const quota = this.quota();
    const counted = request.digest !== undefined && this.counts(request.digest, request.id);
    let granted = request.maxBytes;
    let denial: QuotaDenial | undefined;
    if (quota !== null && !counted) {
      const used = this.linkedBytes();
      const reserved = this.reservedBytes(request.id);
      granted = Math.min(request.maxBytes, quota - used - reserved);
      const namespace = request.repository.slice(0, request.repository.indexOf("/"));
      denial = { namespace, usedBytes: used, reservedBytes: reserved, quotaBytes: quota, requestedBytes: request.maxBytes };
      if (granted < request.minBytes) return { ok: false, denial: { ...denial, requestedBytes: request.minBytes } };
    }
    this.sql.exec(
      "INSERT OR REPLACE INTO usage_reservations (id, repository, digest, bytes, updated_at) VALUES (?, ?, ?, ?, ?)",
      request.id,
      request.repository,
      request.digest ?? null,
      granted,
      now,
    );
    return { ok: true, grantedBytes: granted, ...(granted < request.maxBytes ? { beyond: denial } : {}) };
  }

  /** Inside a transaction: a link the repository's ledger is about to commit; its reservation (if any) goes. */
  commitLink(repository: string, digest: string, seq: number, size: number, reservation: string | null): void {
    this.sql.exec("INSERT OR REPLACE INTO usage_links (repository, digest, seq, size) VALUES (?, ?, ?, ?)", repository, digest, seq, size);
    if (reservation !== null) this.sql.exec("DELETE FROM usage_reservations WHERE id = ?", reservation);
  }

  releaseLink(repository: string, digest: string, seq: number): void {
    this.sql.exec("DELETE FROM usage_links WHERE repository = ? AND digest = ? AND seq = ?", repository, digest, seq);
  }

  releaseReservation(id: string): void {
    this.sql.exec("DELETE FROM usage_reservations WHERE id = ?", id);
  }

  usage(namespace: string, now: number): NamespaceUsage {
    const repositories = this.sql
      .exec<{ name: string; bytes: number }>(
        "SELECT repository AS name, SUM(size) AS bytes FROM (SELECT DISTINCT repository, digest, size FROM usage_links) GROUP BY repository ORDER BY repository",
      )
      .toArray()
      .map((row) => ({ name: row.name, storedBytes: row.bytes }));
    return {
      namespace,
      quotaBytes: this.quota(),
      usedBytes: this.linkedBytes(),
      reservedBytes: this.reservedBytes(null, now),
      blobs: this.sql.exec<{ n: number }>("SELECT COUNT(DISTINCT digest) AS n FROM usage_links").one().n,
      repositories,
    };
  }

  /** Each distinct linked digest once. */
  private linkedBytes(): number {
    return this.sql.exec<{ n: number }>("SELECT COALESCE(SUM(size), 0) AS n FROM (SELECT digest, MAX(size) AS size FROM usage_links GROUP BY digest)").one().n;
  }

  /** Live reservations other than `except`: unpinned ones' bytes, plus each pinned digest not linked, once. */
  private reservedBytes(except: string | null, now = Date.now()): number {
    const since = now - RESERVATION_TTL_MS;
    const unpinned = this.sql
      .exec<{ n: number }>("SELECT COALESCE(SUM(bytes), 0) AS n FROM usage_reservations WHERE digest IS NULL AND id IS NOT ? AND updated_at >= ?", except, since)
      .one().n;
    const pinned = this.sql
      .exec<{ n: number }>(
        `SELECT COALESCE(SUM(bytes), 0) AS n FROM (SELECT digest, MAX(bytes) AS bytes FROM usage_reservations
           WHERE digest IS NOT NULL AND id IS NOT ? AND updated_at >= ? AND digest NOT IN (SELECT digest FROM usage_links) GROUP BY digest)`,
        except,
        since,
      )
      .one().n;
    return unpinned + pinned;
  }

  /** Whether the digest is counted already: linked, or pinned by another live reservation. */
  private counts(digest: string, except: string): boolean {
    if (this.sql.exec("SELECT 1 FROM usage_links WHERE digest = ? LIMIT 1", digest).toArray().length > 0) return true;
    return this.sql.exec("SELECT 1 FROM usage_reservations WHERE digest = ? AND id != ? LIMIT 1", digest, except).toArray().length > 0;
  }

  private dropLapsed(now: number): void {
    this.sql.exec("DELETE FROM usage_reservations WHERE updated_at < ?", now - RESERVATION_TTL_MS);
  }
}
