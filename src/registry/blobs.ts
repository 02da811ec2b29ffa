/** Blobs: existence, download by redirect, delete (spec.md "Pulling blobs", "Deleting Blobs"). */
import { CONTENT_DIGEST_HEADER } from "../http/headers";
import { RegistryError } from "../http/oci-errors";
import type { RegistryContext, RepositoryRequest } from "./context";
import { requireDigest } from "./reference";

async function linkedBlob(ctx: RegistryContext, repository: string, digestValue: string) {
  const digest = requireDigest(digestValue);
  // A blob is served only from repositories that contain it, whoever else stored the same bytes.
  const blob = await ctx.repositories.getBlobLink(repository, digest.value);
  if (!blob) throw new RegistryError("BLOB_UNKNOWN", { detail: { digest: digest.value } });
  return { digest: digest.value, blob };
}

export async function headBlob(ctx: RegistryContext, req: RepositoryRequest, digestValue: string): Promise<Response> {
  const { digest, blob } = await linkedBlob(ctx, req.repository, digestValue);
  return new Response(null, {
    status: 200,
    headers: {
      "Content-Length": String(blob.size),
      "Content-Type": "application/octet-stream",
      [CONTENT_DIGEST_HEADER]: digest,
      ETag: `"${digest}"`,
    },
  });
}

/** spec.md: registries MAY redirect blob GETs; the URL authorizes itself, as Authorization is not forwarded. */
export async function getBlob(ctx: RegistryContext, req: RepositoryRequest, digestValue: string): Promise<Response> {
  const { digest, blob } = await linkedBlob(ctx, req.repository, digestValue);
  const location = await ctx.blobUrls.sign(blob.key, req.origin);
  return new Response(null, { status: 307, headers: { Location: location, [CONTENT_DIGEST_HEADER]: digest } });
}

/**
 * Removes this repository's link to a blob (the bytes are shared by digest with other repositories).
 * A blob that a manifest of the repository references is kept and the delete refused: the link is removed
 * first and the references checked after, the reverse of a manifest push, so a racing push either fails
 * its blob check or is seen here.
 */
export async function deleteBlob(ctx: RegistryContext, req: RepositoryRequest, digestValue: string): Promise<Response> {
  const { digest, blob } = await linkedBlob(ctx, req.repository, digestValue);
  await ctx.repositories.deleteBlobLink(req.repository, digest);
  const manifests = await ctx.repositories.manifestsReferencing(req.repository, digest);
  if (manifests.length > 0) {
    await ctx.repositories.putBlobLink(req.repository, digest, blob);
    throw new RegistryError("DENIED", {
      message: "the blob is referenced by manifests of this repository; delete them first",
      detail: { digest, manifests },
    });
  }
  return new Response(null, { status: 202 });
}

/** Serves the bytes behind a Worker-signed URL, with Range support and immutable caching. */
export async function serveBlobData(bucket: R2Bucket, key: string, request: Request): Promise<Response> {
  if (request.method === "HEAD") {
    const head = await bucket.head(key);
    if (!head) return new Response(null, { status: 404 });
    return new Response(null, { status: 200, headers: { ...blobDataHeaders(head.httpEtag), "Content-Length": String(head.size) } });
  }
  const object = await bucket.get(key, { range: request.headers, onlyIf: request.headers });
  if (!object) return new Response(null, { status: 404 });
  const headers = new Headers(blobDataHeaders(object.httpEtag));
  if (!("body" in object)) return new Response(null, { status: 304, headers });
  const range = object.range as { offset?: number; length?: number; suffix?: number } | undefined;
  if (range && request.headers.has("Range")) {
    const offset = range.suffix !== undefined ? object.size - range.suffix : (range.offset ?? 0);
    const length = range.suffix ?? range.length ?? object.size - offset;
    headers.set("Content-Range", `bytes ${offset}-${offset + length - 1}/${object.size}`);
    headers.set("Content-Length", String(length));
    return new Response(object.body, { status: 206, headers });
  }
  headers.set("Content-Length", String(object.size));
  return new Response(object.body, { status: 200, headers });
}

function blobDataHeaders(etag: string): Record<string, string> {
  return {
    // An explicit binary type keeps workerd from gzip-encoding already-compressed layers on the fly.
    "Content-Type": "application/octet-stream",
    "Cache-Control": "public, max-age=31536000, immutable",
    "Accept-Ranges": "bytes",
    ETag: etag,
  };
}
