/** Blobs: existence, download by redirect, delete (spec.md "Pulling blobs", "Deleting Blobs"). */
import { CONTENT_DIGEST_HEADER } from "../http/headers";
import { RegistryError } from "../http/oci-errors";
import type { RegistryContext, RepositoryRequest } from "./context";
import { requireDigest } from "./oci-names";

async function linkedBlob(ctx: RegistryContext, req: RepositoryRequest, digestValue: string) {
  const digest = requireDigest(digestValue);
  // A blob is served only from repositories that contain it, whoever else stored the same bytes.
  const blob = await ctx.repositories.getBlobLink(req.repository, digest.value, req.freshness);
  if (!blob) throw new RegistryError("BLOB_UNKNOWN", { detail: { digest: digest.value } });
  return { digest: digest.value, blob };
}

export async function headBlob(ctx: RegistryContext, req: RepositoryRequest, digestValue: string): Promise<Response> {
  const { digest, blob } = await linkedBlob(ctx, req, digestValue);
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
  const { digest, blob } = await linkedBlob(ctx, req, digestValue);
  const location = await ctx.blobUrls.sign(blob.key, req.origin);
  return new Response(null, { status: 307, headers: { Location: location, [CONTENT_DIGEST_HEADER]: digest } });
}

/**
 * Removes this repository's link to a blob (the bytes are shared by digest with other repositories).
 * A blob that a manifest of the repository references is kept and the delete refused; the ledger decides
 * both in one transaction, so a racing manifest push either sees the link or fails its blob check.
 */
export async function deleteBlob(ctx: RegistryContext, req: RepositoryRequest, digestValue: string): Promise<Response> {
  const digest = requireDigest(digestValue).value;
  const result = await ctx.repositories.deleteBlobLink(req.repository, digest);
  if (result.ok) return new Response(null, { status: 202 });
  if (result.reason === "unknown") throw new RegistryError("BLOB_UNKNOWN", { detail: { digest } });
  throw new RegistryError("DENIED", {
    message: "the blob is referenced by manifests of this repository; delete them first",
    detail: { digest, manifests: result.manifests },
  });
}
