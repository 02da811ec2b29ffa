/**
 * Validates a pushed manifest for its media type and lists what it references
 * (OCI image-spec manifest.md and image-index.md; distribution-spec spec.md "Pushing Manifests").
 */
import { RegistryError } from "../http/oci-errors";
import { IMAGE_MANIFEST_TYPES, INDEX_TYPES, OCI_INDEX, OCI_MANIFEST, bareMediaType } from "./media-types";
import { parseDigest } from "../oci/reference";

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface ManifestDocument {
  mediaType: string;
  /** Blobs that must be in the repository: config and layers. */
  blobs: Descriptor[];
  /** An image manifest's config (its labels may set the tag's expiry: registry/manifests.ts). */
  config?: Descriptor;
  /** Manifests that must be in the repository: an index's children. */
  children: Descriptor[];
  subject?: Descriptor;
  /** The artifact type the referrers API reports for this manifest. */
  artifactType?: string;
  annotations?: Record<string, string>;
}

function invalid(message: string): RegistryError {
  return new RegistryError("MANIFEST_INVALID", { message });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringMap(value: unknown, field: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value) || !Object.values(value).every((v) => typeof v === "string")) {
    throw invalid(`${field} must be a map of strings`);
  }
  return value as Record<string, string>;
}

function descriptor(value: unknown, field: string): Descriptor {
  if (!isObject(value)) throw invalid(`${field} must be a descriptor object`);
  const { mediaType, digest, size, artifactType } = value;
  if (typeof mediaType !== "string" || mediaType === "") throw invalid(`${field}.mediaType is required`);
  if (typeof digest !== "string" || !parseDigest(digest)) throw invalid(`${field}.digest is not a valid digest`);
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw invalid(`${field}.size must be a non-negative integer`);
  }
  if (artifactType !== undefined && typeof artifactType !== "string") throw invalid(`${field}.artifactType must be a string`);
  return {
    mediaType,
    digest,
    size,
    ...(artifactType !== undefined ? { artifactType } : {}),
    ...(value.annotations !== undefined ? { annotations: stringMap(value.annotations, `${field}.annotations`) } : {}),
  };
}

function descriptors(value: unknown, field: string): Descriptor[] {
  if (!Array.isArray(value)) throw invalid(`${field} must be an array`);
  return value.map((item, index) => descriptor(item, `${field}[${index}]`));
}

/** Parses and validates a manifest body; `contentType` is the request's Content-Type. */
export function parseManifest(bytes: Uint8Array, contentType: string | null): ManifestDocument {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    throw invalid("manifest is not valid UTF-8 JSON");
  }
  if (!isObject(json)) throw invalid("manifest must be a JSON object");
  if (json.schemaVersion !== 2) throw invalid("schemaVersion must be 2");
  const declared = typeof json.mediaType === "string" ? json.mediaType : undefined;
  const headerType = contentType ? bareMediaType(contentType) : undefined;
  // spec.md: the mediaType field, when present, must match the Content-Type the manifest is pushed with.
  if (declared && headerType && declared !== headerType) {
    throw invalid(`mediaType ${declared} does not match Content-Type ${headerType}`);
  }
  const mediaType = declared ?? headerType ?? (Array.isArray(json.manifests) ? OCI_INDEX : OCI_MANIFEST);
  const subject = json.subject === undefined ? undefined : descriptor(json.subject, "subject");
  const artifactType = json.artifactType;
  if (artifactType !== undefined && typeof artifactType !== "string") throw invalid("artifactType must be a string");
  const annotations = stringMap(json.annotations, "annotations");

  if (IMAGE_MANIFEST_TYPES.has(mediaType)) {
    const config = descriptor(json.config, "config");
    const layers = descriptors(json.layers ?? [], "layers");
    return {
      mediaType,
      blobs: [config, ...layers],
      config,
      children: [],
      subject,
      // image-spec manifest.md: artifactType, else the config's mediaType.
      artifactType: artifactType ?? config.mediaType,
      annotations,
    };
  }
  if (INDEX_TYPES.has(mediaType)) {
    return { mediaType, blobs: [], children: descriptors(json.manifests, "manifests"), subject, artifactType, annotations };
  }
  throw invalid(`unsupported manifest media type ${mediaType}`);
}
