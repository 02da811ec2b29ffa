/**
 * Blob uploads (spec.md "Pushing blobs"): POST to start, monolithic POST ?digest=, cross-repository
 * mount, PATCH chunks (with or without Content-Length), upload status, PUT to finish, DELETE to cancel.
 */
import { CONTENT_DIGEST_HEADER, UPLOAD_UUID_HEADER } from "../http/headers";
import { RegistryError } from "../http/oci-errors";
import { Sha256 } from "../crypto/sha256";
import { BlobTooLargeError, BlobWriter, BodyReadError } from "../storage/blob-writer";
import { r2Keys } from "../storage/keys";
import type { UploadSession } from "../storage/upload-store";
import type { RegistryContext, RepositoryRequest } from "./context";
import { requireDigest, requireRepositoryName, type Digest } from "./reference";

function newSession(repository: string): UploadSession {
  const id = crypto.randomUUID();
  return {
    state: {
      id,
      repository,
      createdAt: new Date().toISOString(),
      offset: 0,
      blobKey: r2Keys.blobData(id),
      parts: [],
      hash: new Sha256().save(),
    },
    tail: new Uint8Array(0),
  };
}

/** spec.md: `Range: 0-<offset - 1>`; an empty session reports `0-0`. */
function rangeHeader(offset: number): string {
  return `0-${Math.max(offset - 1, 0)}`;
}

function sessionHeaders(req: RepositoryRequest, session: UploadSession): Record<string, string> {
  return {
    Location: `/v2/${req.repository}/blobs/uploads/${session.state.id}`,
    Range: rangeHeader(session.state.offset),
    [UPLOAD_UUID_HEADER]: session.state.id,
  };
}

async function loadSession(ctx: RegistryContext, req: RepositoryRequest, id: string): Promise<UploadSession> {
  const session = /^[0-9a-f-]{36}$/.test(id) ? await ctx.uploads.load(id) : null;
  // A session is bound to the repository that started it: another repository cannot continue it.
  if (!session || session.state.repository !== req.repository) {
    throw new RegistryError("BLOB_UPLOAD_UNKNOWN", { detail: { uuid: id.slice(0, 64) } });
  }
  return session;
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
 * 416) and returns the most bytes the body may carry.
 */
function checkContentRange(req: RepositoryRequest, session: UploadSession): number {
  const contentLength = req.request.headers.get("Content-Length");
  const declaredLength = contentLength === null ? undefined : Number(contentLength);
  const contentRange = req.request.headers.get("Content-Range");
  if (contentRange === null) return declaredLength ?? Number.POSITIVE_INFINITY;
  const match = /^(?:bytes[ =])?(\d+)-(\d+)$/.exec(contentRange.trim());
  const start = match ? Number(match[1]) : NaN;
  const end = match ? Number(match[2]) : NaN;
  if (!match || end < start || start !== session.state.offset) {
    throw new RegistryError("RANGE_INVALID", {
      detail: { expectedStart: session.state.offset },
      headers: { Range: rangeHeader(session.state.offset), Location: sessionHeaders(req, session).Location! },
    });
  }
  const rangeLength = end - start + 1;
  if (declaredLength !== undefined && declaredLength !== rangeLength) {
    throw new RegistryError("SIZE_INVALID", { message: "Content-Length does not match Content-Range" });
  }
  return rangeLength;
}

/**
 * Streams the request body into the session; a body longer than declared is refused. A body that breaks
 * off (the client went away) is a client error: the session keeps its last saved state, so the client
 * can resume from the offset GET reports or start again; parts written meanwhile are overwritten then.
 */
async function appendBody(writer: BlobWriter, req: RepositoryRequest, maxBytes: number): Promise<void> {
  if (!req.request.body) return;
  const declared = req.request.headers.get("Content-Length");
  try {
    const received = await writer.append(req.request.body, maxBytes);
    if (declared !== null && received < Number(declared)) throw new BodyReadError(`got ${received} of ${declared} bytes`);
  } catch (error) {
    await writer.abandon();
    if (error instanceof BlobTooLargeError) throw new RegistryError("SIZE_INVALID", { message: error.message });
    if (error instanceof BodyReadError) throw new RegistryError("BLOB_UPLOAD_INVALID", { message: "the request body ended early" });
    throw error;
  }
}

/** Hashes the rest, checks the digest, stores the blob once per digest and links it into the repository. */
async function finish(ctx: RegistryContext, req: RepositoryRequest, session: UploadSession, digest: Digest, writer: BlobWriter) {
  const actual = `sha256:${writer.digestHex()}`;
  if (actual !== digest.value) {
    await writer.discard();
    await ctx.uploads.delete(session.state.id);
    throw new RegistryError("DIGEST_INVALID", { detail: { expected: digest.value, actual } });
  }
  const size = session.state.offset;
  let blob = await ctx.repositories.getBlob(digest.value);
  if (blob) {
    // The bytes are already stored under this digest: keep one copy.
    await writer.discard();
  } else {
    await writer.commit(digest.hex);
    blob = { key: session.state.blobKey, size };
    await ctx.repositories.putBlob(digest.value, blob);
  }
  await ctx.repositories.putBlobLink(req.repository, digest.value, blob);
  await ctx.uploads.delete(session.state.id);
  return new Response(null, {
    status: 201,
    headers: { Location: `/v2/${req.repository}/blobs/${digest.value}`, [CONTENT_DIGEST_HEADER]: digest.value },
  });
}

export async function startUpload(ctx: RegistryContext, req: RepositoryRequest): Promise<Response> {
  const query = req.url.searchParams;
  const mount = query.get("mount");
  const from = query.get("from");
  if (mount !== null && from !== null) {
    const digest = requireDigest(mount);
    requireRepositoryName(from);
    // spec.md "Mounting a blob from another repository": 201 when the source has it, else a new session.
    const blob = await ctx.repositories.getBlobLink(from, digest.value);
    if (blob) {
      await ctx.repositories.putBlobLink(req.repository, digest.value, blob);
      return new Response(null, {
        status: 201,
        headers: { Location: `/v2/${req.repository}/blobs/${digest.value}`, [CONTENT_DIGEST_HEADER]: digest.value },
      });
    }
  }
  const session = newSession(req.repository);
  const digestParam = query.get("digest");
  if (digestParam !== null) {
    // spec.md "Single POST": the whole blob in one request.
    const digest = uploadDigest(digestParam);
    const writer = new BlobWriter(ctx.bucket, session);
    await appendBody(writer, req, checkContentRange(req, session));
    return finish(ctx, req, session, digest, writer);
  }
  await ctx.uploads.save(session);
  return new Response(null, { status: 202, headers: { ...sessionHeaders(req, session), "Content-Length": "0" } });
}

export async function patchUpload(ctx: RegistryContext, req: RepositoryRequest, id: string): Promise<Response> {
  const session = await loadSession(ctx, req, id);
  const maxBytes = checkContentRange(req, session);
  const writer = new BlobWriter(ctx.bucket, session);
  await appendBody(writer, req, maxBytes);
  const updated = writer.snapshot();
  await ctx.uploads.save(updated);
  return new Response(null, { status: 202, headers: { ...sessionHeaders(req, updated), "Content-Length": "0" } });
}

export async function putUpload(ctx: RegistryContext, req: RepositoryRequest, id: string): Promise<Response> {
  const digest = uploadDigest(req.url.searchParams.get("digest"));
  const session = await loadSession(ctx, req, id);
  const maxBytes = checkContentRange(req, session);
  const writer = new BlobWriter(ctx.bucket, session);
  await appendBody(writer, req, maxBytes);
  return finish(ctx, req, session, digest, writer);
}

export async function getUploadStatus(ctx: RegistryContext, req: RepositoryRequest, id: string): Promise<Response> {
  const session = await loadSession(ctx, req, id);
  return new Response(null, { status: 204, headers: sessionHeaders(req, session) });
}

export async function cancelUpload(ctx: RegistryContext, req: RepositoryRequest, id: string): Promise<Response> {
  const session = await loadSession(ctx, req, id);
  await new BlobWriter(ctx.bucket, session).discard();
  await ctx.uploads.delete(id);
  return new Response(null, { status: 204 });
}
