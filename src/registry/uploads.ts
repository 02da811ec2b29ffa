/**
 * Blob uploads (spec.md "Pushing blobs"): POST to start, monolithic POST ?digest=, cross-repository
 * mount, PATCH chunks (with or without Content-Length), upload status, PUT to finish, DELETE to cancel.
 */
import { CONTENT_DIGEST_HEADER, UPLOAD_UUID_HEADER } from "../http/headers";
import { RegistryError } from "../http/oci-errors";
import { Sha256 } from "../crypto/sha256";
import { BlobTooLargeError, BlobWriter, BodyReadError, PART_SIZE } from "../storage/blob-writer";
import { r2Keys } from "../storage/keys";
import { MAX_STREAMED_OBJECT_BYTES, putStreamedObject } from "../storage/streamed-object";
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

/** The bytes of a session after a request: its new state, and how to finish or drop them. */
interface ReceivedBytes {
  session: UploadSession;
  /** Set where the bytes go through multipart parts (its state is saved via snapshot()). */
  writer?: BlobWriter;
  /** An object this request copied into the writer, to delete once the new state is saved. */
  replacedObject?: string;
}

/** Maps failures of the body to OCI errors; a failed request leaves the session as it was saved. */
async function receiving<T>(work: () => Promise<T>, onFailure: () => Promise<void>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    await onFailure();
    if (error instanceof BlobTooLargeError) throw new RegistryError("SIZE_INVALID", { message: error.message });
    if (error instanceof BodyReadError) throw new RegistryError("BLOB_UPLOAD_INVALID", { message: "the request body ended early" });
    throw error;
  }
}

/** The body's length where it can be streamed into one put: declared, and within R2's limit for one put. */
function streamedObjectLength(req: RepositoryRequest, maxBytes: number): number | undefined {
  const declared = req.request.headers.get("Content-Length");
  const length = Number(declared);
  return declared !== null && length > 0 && length === maxBytes && length <= MAX_STREAMED_OBJECT_BYTES ? length : undefined;
}

/**
 * A first request without a usable length: parts of a multipart upload, hashed natively, completed at the
 * end of the request, so the session then holds one object as after a streamed put.
 */
async function receiveAsOneObject(ctx: RegistryContext, req: RepositoryRequest, session: UploadSession, maxBytes: number): Promise<{ sha256: string; size: number }> {
  const writer = new BlobWriter(ctx.bucket, session, PART_SIZE, "native");
  const declared = req.request.headers.get("Content-Length");
  return receiving(
    async () => {
      const size = await writer.append(req.request.body!, maxBytes);
      if (declared !== null && size < Number(declared)) throw new BodyReadError(`got ${size} of ${declared} bytes`);
      const sha256 = await writer.digestHex();
      await writer.commit(sha256);
      return { sha256, size };
    },
    () => writer.abandon(),
  );
}

/**
 * Receives the request body into the session. The first request of a session is stored as one complete
 * object and hashed natively: streamed into one put where its length is declared (a layer of known size),
 * else through multipart parts completed at the end of the request (a layer compressed on the fly). This is
 * the whole upload for podman, skopeo, docker and containerd. Later requests go through BlobWriter:
 * multipart parts and a resumable SHA-256, so the digest spans requests; the first request's object is
 * copied into it once. A body that breaks off is a client error and changes nothing saved: the client can
 * resume from the offset GET reports or start again.
 */
async function receiveBody(ctx: RegistryContext, req: RepositoryRequest, session: UploadSession, maxBytes: number): Promise<ReceivedBytes> {
  const body = req.request.body;
  const declared = req.request.headers.get("Content-Length");
  const hasBody = body !== null && declared !== "0";
  if (session.state.offset === 0 && session.state.wholeObjectSha256 === undefined && hasBody) {
    // A fresh key per request: two racing requests of one session cannot overwrite each other's object.
    const blobKey = r2Keys.blobData(crypto.randomUUID());
    const streamedLength = streamedObjectLength(req, maxBytes);
    const stored = await (streamedLength !== undefined
      ? receiving(async () => ({ sha256: await putStreamedObject(ctx.bucket, blobKey, body!, streamedLength), size: streamedLength }), async () => undefined)
      : receiveAsOneObject(ctx, req, { ...session, state: { ...session.state, blobKey } }, maxBytes));
    return { session: { state: { ...session.state, blobKey, offset: stored.size, wholeObjectSha256: stored.sha256 }, tail: new Uint8Array(0) } };
  }
  if (!hasBody && session.state.wholeObjectSha256 !== undefined) return { session };

  let writer = new BlobWriter(ctx.bucket, session);
  let replacedObject: string | undefined;
  await receiving(
    async () => {
      if (session.state.wholeObjectSha256 !== undefined) {
        ({ writer, replacedObject } = await copyIntoWriter(ctx, session));
      }
      if (!hasBody) return;
      const received = await writer.append(body!, maxBytes);
      if (declared !== null && received < Number(declared)) throw new BodyReadError(`got ${received} of ${declared} bytes`);
    },
    () => writer.abandon(),
  );
  return { session: writer.snapshot(), writer, replacedObject };
}

/** Moves a session's one-object bytes into a new multipart upload (new key), rehashing them resumably. */
async function copyIntoWriter(ctx: RegistryContext, session: UploadSession): Promise<{ writer: BlobWriter; replacedObject: string }> {
  const replacedObject = session.state.blobKey;
  const object = await ctx.bucket.get(replacedObject);
  if (!object) throw new Error(`upload ${session.state.id}: stored object ${replacedObject} is missing`);
  const { wholeObjectSha256: _dropped, ...state } = session.state;
  const writer = new BlobWriter(ctx.bucket, {
    state: { ...state, offset: 0, blobKey: r2Keys.blobData(crypto.randomUUID()), multipartUploadId: undefined, parts: [], hash: new Sha256().save() },
    tail: new Uint8Array(0),
  });
  try {
    await writer.append(object.body);
  } catch (error) {
    await writer.abandon();
    throw error;
  }
  return { writer, replacedObject };
}

/**
 * Deletes a session's stored bytes: aborts its multipart upload, or deletes its one object unless a blob
 * record already points at that object (a finish that stored the record and then failed to drop the session).
 */
export async function discardUploadBytes(ctx: Pick<RegistryContext, "bucket" | "repositories">, session: UploadSession): Promise<void> {
  const { blobKey, multipartUploadId, wholeObjectSha256 } = session.state;
  if (multipartUploadId) await ctx.bucket.resumeMultipartUpload(blobKey, multipartUploadId).abort();
  if (wholeObjectSha256 !== undefined) {
    const blob = await ctx.repositories.getBlob(`sha256:${wholeObjectSha256}`);
    if (blob?.key !== blobKey) await ctx.bucket.delete(blobKey);
  }
}

/** The digest of a session's bytes; call once, after the last request's bytes. */
async function receivedDigest(received: ReceivedBytes): Promise<string> {
  if (received.writer) return `sha256:${await received.writer.digestHex()}`;
  return `sha256:${received.session.state.wholeObjectSha256!}`;
}

/** Checks the digest, stores the blob once per digest and links it into the repository. */
async function finish(ctx: RegistryContext, req: RepositoryRequest, received: ReceivedBytes, digest: Digest) {
  const session = received.session;
  const actual = await receivedDigest(received);
  const dropBytes = () => (received.writer ? received.writer.discard() : discardUploadBytes(ctx, session));
  if (actual !== digest.value) {
    await dropBytes();
    await ctx.uploads.delete(session.state.id);
    if (received.replacedObject) await ctx.bucket.delete(received.replacedObject);
    throw new RegistryError("DIGEST_INVALID", { detail: { expected: digest.value, actual } });
  }
  const size = session.state.offset;
  let blob = await ctx.repositories.getBlob(digest.value);
  if (blob) {
    // The bytes are already stored under this digest: keep one copy.
    if (blob.key !== session.state.blobKey) await dropBytes();
  } else {
    await received.writer?.commit(digest.hex);
    blob = { key: session.state.blobKey, size };
    await ctx.repositories.putBlob(digest.value, blob);
  }
  await ctx.repositories.putBlobLink(req.repository, digest.value, blob);
  await ctx.uploads.delete(session.state.id);
  if (received.replacedObject) await ctx.bucket.delete(received.replacedObject);
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
    return finish(ctx, req, await receiveBody(ctx, req, session, checkContentRange(req, session)), digest);
  }
  await ctx.uploads.save(session);
  return new Response(null, { status: 202, headers: { ...sessionHeaders(req, session), "Content-Length": "0" } });
}

export async function patchUpload(ctx: RegistryContext, req: RepositoryRequest, id: string): Promise<Response> {
  const session = await loadSession(ctx, req, id);
  const received = await receiveBody(ctx, req, session, checkContentRange(req, session));
  await ctx.uploads.save(received.session);
  // The copied object is dropped only once the state that no longer names it is saved.
  if (received.replacedObject) await ctx.bucket.delete(received.replacedObject);
  return new Response(null, { status: 202, headers: { ...sessionHeaders(req, received.session), "Content-Length": "0" } });
}

export async function putUpload(ctx: RegistryContext, req: RepositoryRequest, id: string): Promise<Response> {
  const digest = uploadDigest(req.url.searchParams.get("digest"));
  const session = await loadSession(ctx, req, id);
  return finish(ctx, req, await receiveBody(ctx, req, session, checkContentRange(req, session)), digest);
}

export async function getUploadStatus(ctx: RegistryContext, req: RepositoryRequest, id: string): Promise<Response> {
  const session = await loadSession(ctx, req, id);
  return new Response(null, { status: 204, headers: sessionHeaders(req, session) });
}

export async function cancelUpload(ctx: RegistryContext, req: RepositoryRequest, id: string): Promise<Response> {
  const session = await loadSession(ctx, req, id);
  await discardUploadBytes(ctx, session);
  await ctx.uploads.delete(id);
  return new Response(null, { status: 204 });
}
