/**
 * Blob uploads (spec.md "Pushing blobs"): POST to start, monolithic POST ?digest=, cross-repository
 * mount, PATCH chunks (with or without Content-Length), upload status, PUT to finish, DELETE to cancel.
 * The bytes and the session are storage's (storage/blob-uploads.ts); this file speaks the protocol.
 */
import { CHUNK_MAX_LENGTH_HEADER, CONTENT_DIGEST_HEADER, UPLOAD_UUID_HEADER } from "../http/headers";
import { RegistryError } from "../http/oci-errors";
import {
  BlobTooLargeError,
  BodyReadError,
  DigestMismatchError,
  QuotaExceededError,
  UploadSupersededError,
  UploadUnknownError,
  type BodyLimits,
  type UploadHandle,
} from "../storage/blob-uploads";
import type { UploadState } from "../storage/upload-state";
import type { RegistryContext, RepositoryRequest } from "./context";
import type { Digest } from "../oci/reference";
import { requireDigest, requireRepositoryName } from "./oci-names";

/** spec.md: `Range: 0-<offset - 1>`; an empty session reports `0-0`. */
function rangeHeader(offset: number): string {
  return `0-${Math.max(offset - 1, 0)}`;
}

/**
 * Headers of every upload-session answer (POST 202, PATCH 202, GET 204, and the 413/416 that leave the
 * session open). `OCI-Chunk-Max-Length` is the proposed header (http/headers.ts): a body over the limit
 * never reaches the Worker in production (platform.md §3). v1.1's `OCI-Chunk-Min-Length` is not sent: the
 * spec asks for it only "if the registry has a minimum chunk size" (spec.md "Pushing a blob in chunks"),
 * and this one has none: R2's ≥ 5 MiB part rule (platform.md §4) is met by carrying bytes short of a part
 * in the session's tail to the next request (storage/blob-writer.ts), so chunks of any size are accepted.
 */
function sessionHeaders(ctx: RegistryContext, req: RepositoryRequest, state: Pick<UploadState, "id" | "offset">): Record<string, string> {
  return {
    Location: `/v2/${req.repository}/blobs/uploads/${state.id}`,
    Range: rangeHeader(state.offset),
    [UPLOAD_UUID_HEADER]: state.id,
    [CHUNK_MAX_LENGTH_HEADER]: String(ctx.maxRequestBodyBytes),
  };
}

/**
 * 413 for a body over MAX_REQUEST_BODY_BYTES (platform.md §3: what Cloudflare answers before the Worker
 * runs). Nothing of it was saved; with a session, its headers say where to continue in smaller chunks.
 */
function bodyTooLarge(ctx: RegistryContext, req: RepositoryRequest, session?: Pick<UploadState, "id" | "offset">): RegistryError {
  const limit = ctx.maxRequestBodyBytes;
  return new RegistryError("SIZE_INVALID", {
    status: 413,
    message:
      `request body over this registry's limit of ${limit} bytes per request (MAX_REQUEST_BODY_BYTES); ` +
      `send the blob in chunks of at most ${limit} bytes, or push the image with \`npx edge-registry push SOURCE ${req.repository}:TAG\``,
    detail: session ? { limit, uuid: session.id, offset: session.offset } : { limit },
    headers: session ? sessionHeaders(ctx, req, session) : { [CHUNK_MAX_LENGTH_HEADER]: String(limit) },
  });
}

/** The body length a request declares: Content-Length, else the length of its Content-Range. */
function declaredBodyLength(req: RepositoryRequest): number | undefined {
  const contentLength = req.request.headers.get("Content-Length");
  if (contentLength !== null) return Number(contentLength);
  const match = /^(?:bytes[ =])?(\d+)-(\d+)$/.exec(req.request.headers.get("Content-Range")?.trim() ?? "");
  return match ? Number(match[2]) - Number(match[1]) + 1 : undefined;
}

/** Refuses a declared body over the limit before the session is claimed or a byte is read. */
async function refuseDeclaredOverLimit(ctx: RegistryContext, req: RepositoryRequest, id?: string): Promise<void> {
  const declared = declaredBodyLength(req);
  if (declared === undefined || !(declared > ctx.maxRequestBodyBytes)) return;
  // The session's state for the answer's headers, read without claiming it (a claim would end another request's).
  throw bodyTooLarge(ctx, req, id === undefined ? undefined : await protocol(id, () => ctx.uploads.status(req.repository, id)));
}

function blobCreated(req: RepositoryRequest, digest: string): Response {
  return new Response(null, { status: 201, headers: { Location: `/v2/${req.repository}/blobs/${digest}`, [CONTENT_DIGEST_HEADER]: digest } });
}

/**
 * Runs storage work, turning its failures into the protocol's errors. `overLimit`: the error for a body that
 * streamed past MAX_REQUEST_BODY_BYTES, given when that limit capped the body (BodyLimits.maxBytes).
 */
async function protocol<T>(id: string, work: () => Promise<T>, overLimit?: () => RegistryError): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof UploadUnknownError) throw new RegistryError("BLOB_UPLOAD_UNKNOWN", { detail: { uuid: id.slice(0, 64) } });
    if (error instanceof UploadSupersededError) {
      throw new RegistryError("BLOB_UPLOAD_INVALID", { message: "a newer request on this upload session replaced this one; nothing was saved" });
    }
    if (error instanceof DigestMismatchError) throw new RegistryError("DIGEST_INVALID", { detail: { actual: error.actual } });
    if (error instanceof BlobTooLargeError) throw overLimit?.() ?? new RegistryError("SIZE_INVALID", { message: error.message });
    if (error instanceof BodyReadError) throw new RegistryError("BLOB_UPLOAD_INVALID", { message: "the request body ended early" });
    if (error instanceof QuotaExceededError) throw quotaDenied(error);
    throw error;
  }
}

/** docs/lifecycle.md "Quotas and usage": refused before its bytes are stored, with the use and the quota. */
function quotaDenied(error: QuotaExceededError): RegistryError {
  const { namespace, usedBytes, reservedBytes, quotaBytes, requestedBytes } = error.denial;
  return new RegistryError("DENIED", { message: error.message, detail: { namespace, usedBytes, reservedBytes, quotaBytes, requestedBytes } });
}

/** Session ids are UUIDs; anything else is unknown without a storage lookup. */
function requireUploadId(id: string): string {
  if (!/^[0-9a-f-]{36}$/.test(id)) throw new RegistryError("BLOB_UPLOAD_UNKNOWN", { detail: { uuid: id.slice(0, 64) } });
  return id;
}

function uploadDigest(value: string | null): Digest {
  if (value === null) throw new RegistryError("DIGEST_INVALID", { message: "the digest query parameter is required" });
  const digest = requireDigest(value);
  if (digest.algorithm !== "sha256") {
    throw new RegistryError("DIGEST_INVALID", { message: "uploads support sha256 digests only", detail: { digest: value } });
  }
  return digest;
}

/**
 * Checks `Content-Range: <start>-<end>` against the session's offset (spec.md: out-of-order chunks get
 * 416) and returns what the body may carry. A body of undeclared length is capped at MAX_REQUEST_BODY_BYTES
 * (`cappedByLimit`); declared ones over it were refused before (refuseDeclaredOverLimit).
 */
function bodyLimits(ctx: RegistryContext, req: RepositoryRequest, state: UploadState): BodyLimits & { cappedByLimit: boolean } {
  const contentLength = req.request.headers.get("Content-Length");
  const declaredLength = contentLength === null ? undefined : Number(contentLength);
  const contentRange = req.request.headers.get("Content-Range");
  if (contentRange === null) {
    if (declaredLength !== undefined) return { declaredLength, maxBytes: declaredLength, cappedByLimit: false };
    // platform.md §3: a chunked body is held to the same limit as a declared one, counted as it streams.
    return { declaredLength, maxBytes: ctx.maxRequestBodyBytes, cappedByLimit: true };
  }
  const match = /^(?:bytes[ =])?(\d+)-(\d+)$/.exec(contentRange.trim());
  const start = match ? Number(match[1]) : NaN;
  const end = match ? Number(match[2]) : NaN;
  if (!match || end < start || start !== state.offset) {
    throw new RegistryError("RANGE_INVALID", {
      detail: { expectedStart: state.offset },
      headers: { Range: rangeHeader(state.offset), Location: sessionHeaders(ctx, req, state).Location! },
    });
  }
  const rangeLength = end - start + 1;
  if (declaredLength !== undefined && declaredLength !== rangeLength) {
    throw new RegistryError("SIZE_INVALID", { message: "Content-Length does not match Content-Range" });
  }
  return { declaredLength, maxBytes: rangeLength, cappedByLimit: false };
}

/** Receives the request's body into the session and finishes it as `digest`. */
async function receiveAndFinish(ctx: RegistryContext, req: RepositoryRequest, handle: UploadHandle, digest: Digest): Promise<Response> {
  const limits = bodyLimits(ctx, req, handle.session.state);
  const claimed = { id: handle.session.state.id, offset: handle.session.state.offset };
  await protocol(
    claimed.id,
    async () => {
      await ctx.uploads.receive(handle, req.request.body, limits, digest.value);
      await ctx.uploads.finish(handle, digest.value);
    },
    limits.cappedByLimit ? () => bodyTooLarge(ctx, req, claimed) : undefined,
  );
  return blobCreated(req, digest.value);
}

export async function startUpload(ctx: RegistryContext, req: RepositoryRequest): Promise<Response> {
  const query = req.url.searchParams;
  const mount = query.get("mount");
  const from = query.get("from");
  if (mount !== null && from !== null) {
    const digest = requireDigest(mount);
    requireRepositoryName(from);
    // spec.md "Mounting a blob from another repository": 201 when the source has it and the token may pull
    // from it; otherwise a new session (202), which tells nothing about `from`.
    if (req.mayPull(from) && (await protocol("", () => ctx.repositories.mountBlob(req.repository, from, digest.value)))) return blobCreated(req, digest.value);
  }
  const digestParam = query.get("digest");
  // spec.md "Single POST": the whole blob in one request; the digest is checked before a session exists.
  const digest = digestParam === null ? undefined : uploadDigest(digestParam);
  // Before a session exists: a declared body over the limit leaves nothing behind.
  if (digest) await refuseDeclaredOverLimit(ctx, req);
  const handle = await ctx.uploads.start(req.repository);
  if (digest) return receiveAndFinish(ctx, req, handle, digest);
  return new Response(null, { status: 202, headers: { ...sessionHeaders(ctx, req, handle.session.state), "Content-Length": "0" } });
}

export async function patchUpload(ctx: RegistryContext, req: RepositoryRequest, id: string): Promise<Response> {
  await refuseDeclaredOverLimit(ctx, req, requireUploadId(id));
  const handle = await protocol(id, () => ctx.uploads.claim(req.repository, requireUploadId(id)));
  const limits = bodyLimits(ctx, req, handle.session.state);
  const claimed = { id, offset: handle.session.state.offset };
  const state = await protocol(
    id,
    async () => {
      await ctx.uploads.receive(handle, req.request.body, limits);
      return ctx.uploads.save(handle);
    },
    // Nothing was saved: the session stays at its claimed offset, continuable in smaller chunks.
    limits.cappedByLimit ? () => bodyTooLarge(ctx, req, claimed) : undefined,
  );
  return new Response(null, { status: 202, headers: { ...sessionHeaders(ctx, req, state), "Content-Length": "0" } });
}

export async function putUpload(ctx: RegistryContext, req: RepositoryRequest, id: string): Promise<Response> {
  const digest = uploadDigest(req.url.searchParams.get("digest"));
  await refuseDeclaredOverLimit(ctx, req, requireUploadId(id));
  const handle = await protocol(id, () => ctx.uploads.claim(req.repository, requireUploadId(id)));
  return receiveAndFinish(ctx, req, handle, digest);
}

export async function getUploadStatus(ctx: RegistryContext, req: RepositoryRequest, id: string): Promise<Response> {
  const state = await protocol(id, () => ctx.uploads.status(req.repository, requireUploadId(id)));
  return new Response(null, { status: 204, headers: sessionHeaders(ctx, req, state) });
}

export async function cancelUpload(ctx: RegistryContext, req: RepositoryRequest, id: string): Promise<Response> {
  await protocol(id, () => ctx.uploads.cancel(req.repository, requireUploadId(id)));
  return new Response(null, { status: 204 });
}
