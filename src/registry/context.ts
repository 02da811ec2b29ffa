/** What registry handlers need, built once per isolate and passed in (env is never mutated). */
import type { BlobUrlSigner } from "../storage/blob-urls";
import type { RepositoryStore } from "../storage/repository-store";
import type { UploadStore } from "../storage/upload-store";

export interface RegistryContext {
  repositories: RepositoryStore;
  uploads: UploadStore;
  bucket: R2Bucket;
  blobUrls: BlobUrlSigner;
}

/** The validated parts of a /v2/<name>/… request. */
export interface RepositoryRequest {
  request: Request;
  url: URL;
  repository: string;
  /** The origin clients reach the registry at, for Location headers and signed URLs. */
  origin: string;
}
