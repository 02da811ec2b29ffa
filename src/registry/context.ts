/** What registry handlers need, built once per isolate and passed in (env is never mutated). */
import type { BlobObjects } from "../storage/blob-objects";
import type { BlobUploads } from "../storage/blob-uploads";
import type { BlobUrlSigner } from "../storage/blob-urls";
import type { RecentWrites } from "../storage/recent-writes";
import type { ReadFreshness } from "../storage/repository-store";
import type { RepositoryStore } from "../storage/repository-store";

export interface RegistryContext {
  repositories: RepositoryStore;
  uploads: BlobUploads;
  /** Stored bytes, read by key for Worker-signed downloads. */
  objects: BlobObjects;
  blobUrls: BlobUrlSigner;
  recentWrites: RecentWrites;
  /** Largest upload request body accepted (config MAX_REQUEST_BODY_BYTES); larger ones get 413. */
  maxRequestBodyBytes: number;
}

/** The validated parts of a /v2/<name>/… request. */
export interface RepositoryRequest {
  request: Request;
  url: URL;
  repository: string;
  /** The origin clients reach the registry at, for Location headers and signed URLs. */
  origin: string;
  /** Whether the request's token may pull from another repository (a mount's `from`). */
  mayPull: (repository: string) => boolean;
  /** Which reads this request makes through the ledger instead of KV (storage/repository-store.ts ReadFreshness). */
  freshness: ReadFreshness;
  /** Who the token was issued to (`sub`), for the tag history. */
  actor: string;
}
