/** Manifests: pull, push, delete (spec.md "Pulling manifests", "Pushing Manifests", "Deleting Manifests"). */
import { CONTENT_DIGEST_HEADER, SUBJECT_HEADER } from "../http/headers";
import { readBodyLimited } from "../http/body";
import { RegistryError } from "../http/oci-errors";
import type { RegistryContext, RepositoryRequest } from "./context";
import { parseManifest, type ManifestDocument } from "./manifest-document";
import { accepts } from "./media-types";
import { parseManifestReference, type Digest } from "./reference";

/** spec.md: registries SHOULD accept manifests of at least 4 MiB; larger ones are refused with 413. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

async function digestOf(bytes: Uint8Array, algorithm: Digest["algorithm"] = "sha256"): Promise<string> {
  const hash = await crypto.subtle.digest(algorithm === "sha256" ? "SHA-256" : "SHA-512", bytes);
  return `${algorithm}:${[...new Uint8Array(hash)].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

async function findManifest(ctx: RegistryContext, repository: string, reference: string) {
  const parsed = parseManifestReference(reference);
  if (parsed.kind === "tag") {
    const tagged = await ctx.repositories.getTaggedManifest(repository, parsed.tag);
    if (!tagged) throw new RegistryError("MANIFEST_UNKNOWN", { detail: { tag: parsed.tag } });
    return tagged;
  }
  const digest = parsed.digest.value;
  const manifest = await ctx.repositories.getManifest(repository, digest);
  if (!manifest) throw new RegistryError("MANIFEST_UNKNOWN", { detail: { digest } });
  return { ...manifest, digest };
}

export async function getManifest(ctx: RegistryContext, req: RepositoryRequest, reference: string): Promise<Response> {
  const manifest = await findManifest(ctx, req.repository, reference);
  const digest = manifest.digest;
  if (!accepts(req.request.headers.get("Accept"), manifest.mediaType)) {
    // As distribution does: the manifest exists, but not in a media type the client accepts.
    throw new RegistryError("MANIFEST_UNKNOWN", {
      message: `manifest is ${manifest.mediaType}, which the Accept header does not allow`,
    });
  }
  const headers = {
    "Content-Type": manifest.mediaType,
    "Content-Length": String(manifest.bytes.byteLength),
    [CONTENT_DIGEST_HEADER]: digest,
    ETag: `"${digest}"`,
  };
  return new Response(req.request.method === "HEAD" ? null : manifest.bytes, { status: 200, headers });
}

/**
 * Most blobs plus child manifests one manifest may reference: each costs a KV read to check, and a 4 MiB
 * manifest could otherwise list ~40,000 of them. Real images have tens of layers, indexes tens of platforms.
 */
export const MAX_MANIFEST_REFERENCES = 1000;
const CHECK_BATCH = 50;

/** Every referenced blob and child manifest must be in the repository; checked in batches, stopping early. */
async function checkReferences(ctx: RegistryContext, repository: string, document: ManifestDocument): Promise<void> {
  const checks = [
    ...document.blobs.map((blob) => async () => ((await ctx.repositories.getBlobLink(repository, blob.digest)) ? undefined : blob.digest)),
    ...document.children.map((child) => async () => ((await ctx.repositories.hasManifest(repository, child.digest)) ? undefined : child.digest)),
  ];
  for (let start = 0; start < checks.length; start += CHECK_BATCH) {
    const missing = (await Promise.all(checks.slice(start, start + CHECK_BATCH).map((check) => check()))).filter(Boolean);
    if (missing.length > 0) throw new RegistryError("MANIFEST_BLOB_UNKNOWN", { detail: { digests: missing.slice(0, 20) } });
  }
}

export async function putManifest(ctx: RegistryContext, req: RepositoryRequest, reference: string): Promise<Response> {
  const parsed = parseManifestReference(reference);
  const bytes = await readBodyLimited(req.request, MAX_MANIFEST_BYTES);
  if (!bytes) {
    throw new RegistryError("MANIFEST_INVALID", { status: 413, message: `manifest larger than ${MAX_MANIFEST_BYTES} bytes` });
  }
  const document = parseManifest(bytes, req.request.headers.get("Content-Type"));
  if (document.blobs.length + document.children.length > MAX_MANIFEST_REFERENCES) {
    throw new RegistryError("MANIFEST_INVALID", { message: `a manifest may reference at most ${MAX_MANIFEST_REFERENCES} blobs and manifests` });
  }
  const digest = await digestOf(bytes, parsed.kind === "digest" ? parsed.digest.algorithm : "sha256");
  if (parsed.kind === "digest" && parsed.digest.value !== digest) {
    // spec.md: a manifest pushed by digest must hash to that digest.
    throw new RegistryError("DIGEST_INVALID", { message: "manifest does not match the digest it was pushed to", detail: { digest: parsed.digest.value } });
  }
  if (document.children.some((child) => child.digest === digest)) throw new RegistryError("MANIFEST_INVALID", { message: "an index cannot contain itself" });
  // References are recorded before the blobs are checked, so a racing blob delete either makes this check
  // fail or sees the reference and keeps the blob (see deleteBlob).
  const blobDigests = [...new Set(document.blobs.map((blob) => blob.digest))];
  const existed = await ctx.repositories.hasManifest(req.repository, digest);
  await ctx.repositories.putBlobReferences(req.repository, digest, blobDigests);
  try {
    await checkReferences(ctx, req.repository, document);
  } catch (error) {
    if (!existed) await ctx.repositories.deleteBlobReferences(req.repository, digest, blobDigests);
    throw error;
  }

  // Order matters for readers: content first, then the pointers to it (referrer entry, tag).
  const stored = { bytes: bytes.buffer as ArrayBuffer, mediaType: document.mediaType };
  await ctx.repositories.putManifest(req.repository, digest, stored);
  if (document.subject) {
    await ctx.repositories.putReferrer(req.repository, document.subject.digest, {
      mediaType: document.mediaType,
      digest,
      size: bytes.length,
      ...(document.artifactType !== undefined ? { artifactType: document.artifactType } : {}),
      ...(document.annotations !== undefined ? { annotations: document.annotations } : {}),
    });
  }
  if (parsed.kind === "tag") {
    await ctx.repositories.putTag(req.repository, parsed.tag, digest, stored);
    // A delete of this digest racing the push may have removed the manifest after it was written:
    // the push is the later intent, so the manifest the tag names is written again.
    if (!(await ctx.repositories.hasManifest(req.repository, digest))) await ctx.repositories.putManifest(req.repository, digest, stored);
  }
  if (!(await ctx.repositories.getRepository(req.repository))) {
    await ctx.repositories.putRepository({ name: req.repository, public: false, createdAt: new Date().toISOString() });
  }
  const headers: Record<string, string> = {
    Location: `/v2/${req.repository}/manifests/${digest}`,
    [CONTENT_DIGEST_HEADER]: digest,
  };
  // spec.md "Pushing Manifests with Subject": OCI-Subject tells the client the referrers API is supported.
  if (document.subject) headers[SUBJECT_HEADER] = document.subject.digest;
  return new Response(null, { status: 201, headers });
}

export async function deleteManifest(ctx: RegistryContext, req: RepositoryRequest, reference: string): Promise<Response> {
  const parsed = parseManifestReference(reference);
  if (parsed.kind === "tag") {
    // spec.md "Deleting tags": removes the tag only, never the manifest.
    if (!(await ctx.repositories.getTag(req.repository, parsed.tag))) {
      throw new RegistryError("MANIFEST_UNKNOWN", { detail: { tag: parsed.tag } });
    }
    await ctx.repositories.deleteTag(req.repository, parsed.tag);
    return new Response(null, { status: 202 });
  }
  const digest = parsed.digest.value;
  const manifest = await ctx.repositories.getManifest(req.repository, digest);
  if (!manifest) throw new RegistryError("MANIFEST_UNKNOWN", { detail: { digest } });
  // Pointers go first, content last, so no reader follows a tag to a missing manifest; tags are swept
  // again afterwards for a push of the same digest that raced the first sweep.
  await deleteTagsOf(ctx, req.repository, digest);
  const document = parseManifest(new Uint8Array(manifest.bytes), manifest.mediaType);
  if (document.subject) await ctx.repositories.deleteReferrer(req.repository, document.subject.digest, digest);
  await ctx.repositories.deleteManifest(req.repository, digest);
  await ctx.repositories.deleteBlobReferences(req.repository, digest, document.blobs.map((blob) => blob.digest));
  await deleteTagsOf(ctx, req.repository, digest);
  return new Response(null, { status: 202 });
}

async function deleteTagsOf(ctx: RegistryContext, repository: string, digest: string): Promise<void> {
  const tags = await ctx.repositories.listTags(repository);
  await Promise.all(tags.filter((tag) => tag.digest === digest).map((tag) => ctx.repositories.deleteTag(repository, tag.tag)));
}
