/** Manifests: pull, push, delete (spec.md "Pulling manifests", "Pushing Manifests", "Deleting Manifests"). */
import { toHex } from "../crypto/bytes";
import { CONTENT_DIGEST_HEADER, SUBJECT_HEADER } from "../http/headers";
import { readBodyLimited } from "../http/body";
import { RegistryError } from "../http/oci-errors";
import type { ImmutableTagDenial } from "../storage/repository-store";
import type { RegistryContext, RepositoryRequest } from "./context";
import { parseManifest } from "./manifest-document";
import { accepts } from "./media-types";
import type { Digest } from "../oci/reference";
import { requireLookupReference, requireManifestReference } from "./oci-names";

/** spec.md: registries SHOULD accept manifests of at least 4 MiB; larger ones are refused with 413. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

async function digestOf(bytes: Uint8Array, algorithm: Digest["algorithm"] = "sha256"): Promise<string> {
  const hash = await crypto.subtle.digest(algorithm === "sha256" ? "SHA-256" : "SHA-512", bytes);
  return `${algorithm}:${toHex(hash)}`;
}

async function findManifest(ctx: RegistryContext, req: RepositoryRequest, reference: string) {
  const parsed = requireLookupReference(reference);
  if (parsed.kind === "tag") {
    const tagged = await ctx.repositories.getTaggedManifest(req.repository, parsed.tag, req.freshness);
    if (!tagged) throw new RegistryError("MANIFEST_UNKNOWN", { detail: { tag: parsed.tag } });
    return tagged;
  }
  const digest = parsed.digest.value;
  const manifest = await ctx.repositories.getManifest(req.repository, digest, req.freshness);
  if (!manifest) throw new RegistryError("MANIFEST_UNKNOWN", { detail: { digest } });
  return { ...manifest, digest };
}

export async function getManifest(ctx: RegistryContext, req: RepositoryRequest, reference: string): Promise<Response> {
  const manifest = await findManifest(ctx, req, reference);
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

/** Largest image config read for its labels (real configs are a few KiB). */
const MAX_LABEL_CONFIG_BYTES = 1024 * 1024;
const EXPIRES_AFTER_LABEL = "quay.expires-after";
const EXPIRY_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/**
 * The tag's expiry from the image config's `quay.expires-after` label (Quay's format: a number and one of
 * s, m, h, d, w, e.g. `2w`), as docs/lifecycle.md "Retention" describes; nothing when the label is absent
 * or malformed, or the config cannot be read (the push's blob check then decides).
 */
async function labelExpiry(ctx: RegistryContext, req: RepositoryRequest, config: { digest: string; size: number }): Promise<{ expiresAt?: number }> {
  if (config.size > MAX_LABEL_CONFIG_BYTES) return {};
  let labels: unknown;
  try {
    // One ledger read (the writer's consistent view) and one R2 read per push by tag of an image manifest.
    const link = await ctx.repositories.getBlobLink(req.repository, config.digest, "own-writes");
    const object = link ? await ctx.objects.read(link.key) : null;
    if (!object) return {};
    labels = (JSON.parse(await object.text()) as { config?: { Labels?: unknown } }).config?.Labels;
  } catch {
    return {};
  }
  const value = typeof labels === "object" && labels !== null ? (labels as Record<string, unknown>)[EXPIRES_AFTER_LABEL] : undefined;
  const match = typeof value === "string" ? /^(\d{1,6})([smhdw])$/.exec(value.trim()) : null;
  return match ? { expiresAt: Date.now() + Number(match[1]) * EXPIRY_UNITS[match[2]!]! * 1000 } : {};
}

/**
 * Most blobs plus child manifests one manifest may reference: the ledger checks each, and a 4 MiB manifest
 * could otherwise list ~40,000 of them. Real images have tens of layers, indexes tens of platforms.
 */
export const MAX_MANIFEST_REFERENCES = 1000;

export async function putManifest(ctx: RegistryContext, req: RepositoryRequest, reference: string): Promise<Response> {
  const parsed = requireManifestReference(reference);
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
  // One ledger transaction: every blob and child is checked before anything is written, then the manifest,
  // its blob references, its referrer entry and its tag are recorded together (nothing half-written).
  const result = await ctx.repositories.putManifest(req.repository, {
    digest,
    mediaType: document.mediaType,
    bytes: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
    blobs: document.blobs.map((blob) => blob.digest),
    children: document.children.map((child) => child.digest),
    ...(document.subject
      ? {
          referrer: {
            subject: document.subject.digest,
            descriptor: {
              mediaType: document.mediaType,
              digest,
              size: bytes.length,
              ...(document.artifactType !== undefined ? { artifactType: document.artifactType } : {}),
              ...(document.annotations !== undefined ? { annotations: document.annotations } : {}),
            },
          },
        }
      : {}),
    ...(parsed.kind === "tag" ? { tag: parsed.tag } : {}),
    ...(parsed.kind === "tag" && document.config ? await labelExpiry(ctx, req, document.config) : {}),
    actor: req.actor,
  });
  if (!result.ok && "denied" in result) throw immutableTagDenied(result.denied);
  if (!result.ok) throw new RegistryError("MANIFEST_BLOB_UNKNOWN", { detail: { digests: result.missing.slice(0, 20) } });
  const headers: Record<string, string> = {
    Location: `/v2/${req.repository}/manifests/${digest}`,
    [CONTENT_DIGEST_HEADER]: digest,
  };
  // spec.md "Pushing Manifests with Subject": OCI-Subject tells the client the referrers API is supported.
  if (document.subject) headers[SUBJECT_HEADER] = document.subject.digest;
  return new Response(null, { status: 201, headers });
}

/**
 * An immutable tag (docs/lifecycle.md) refused a move or delete: spec.md's `DENIED` ("requested access to the
 * resource is denied"), 403, naming the rule. The ledger decided it inside the tag's compare-and-set.
 */
function immutableTagDenied(denied: ImmutableTagDenial): RegistryError {
  return new RegistryError("DENIED", {
    status: 403,
    message: `tag ${denied.tag} is immutable (${denied.scope} rule ${JSON.stringify(denied.rule)}): it cannot be overwritten or deleted`,
    detail: { tag: denied.tag, rule: denied.rule, scope: denied.scope },
  });
}

export async function deleteManifest(ctx: RegistryContext, req: RepositoryRequest, reference: string): Promise<Response> {
  const parsed = requireLookupReference(reference);
  if (parsed.kind === "tag") {
    // spec.md "Deleting tags": removes the tag only, never the manifest.
    const result = await ctx.repositories.deleteTag(req.repository, parsed.tag, req.actor);
    if (!result.ok && result.reason === "immutable") throw immutableTagDenied(result.denied);
    if (!result.ok) throw new RegistryError("MANIFEST_UNKNOWN", { detail: { tag: parsed.tag } });
    return new Response(null, { status: 202 });
  }
  // One ledger transaction removes the manifest with its tags, referrer entry and blob references.
  const digest = parsed.digest.value;
  const result = await ctx.repositories.deleteManifest(req.repository, digest, req.actor);
  if (!result.ok && result.reason === "immutable") throw immutableTagDenied(result.denied);
  if (!result.ok) throw new RegistryError("MANIFEST_UNKNOWN", { detail: { digest } });
  return new Response(null, { status: 202 });
}
