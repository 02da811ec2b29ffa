// @ts-check
// Image sources in skopeo's transport syntax (containers-transports(5)): `oci:DIR[:TAG]`,
// `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:REF|:@N]`. Each is read in place (blobs are byte ranges
// of a file) into the manifests to put, children first, and the unique blobs they reference.
import { createHash } from "node:crypto";
import { createReadStream, existsSync, openSync, readSync, closeSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { readTarEntry, readTarIndex } from "./tar.mjs";

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
export const DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar";
const OCI_LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
const INDEX_TYPES = new Set([OCI_INDEX, DOCKER_MANIFEST_LIST]);
const MANIFEST_TYPES = new Set([OCI_MANIFEST, DOCKER_MANIFEST]);
/** image-spec annotations.md: the tag of a manifest in an image layout's index.json. */
const REF_NAME = "org.opencontainers.image.ref.name";

/** @typedef {{ mediaType: string, digest: string, size: number, urls?: string[] }} Descriptor */
/** Where a blob's bytes are: `size` bytes of `path` from `offset`. @typedef {{ path: string, offset: number, size: number }} Location */
/** @typedef {{ descriptor: Descriptor, location: Location }} SourceBlob */
/** @typedef {{ descriptor: Descriptor, bytes: Buffer }} SourceManifest */
/**
 * @typedef {{
 *   description: string,
 *   manifests: SourceManifest[],
 *   blobs: SourceBlob[],
 * }} SourceImage
 * `manifests` in push order (an index's children before it; the last one is tagged); `blobs` unique by digest.
 */

export class SourceError extends Error {}

const sha256 = (/** @type {Buffer} */ bytes) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

/** SHA-256 of a byte range of a file, streamed. */
export async function hashLocation(/** @type {Location} */ location) {
  const hash = createHash("sha256");
  if (location.size > 0) {
    for await (const chunk of createReadStream(location.path, { start: location.offset, end: location.offset + location.size - 1, highWaterMark: 1 << 20 })) {
      hash.update(chunk);
    }
  }
  return `sha256:${hash.digest("hex")}`;
}

/**
 * Splits `transport:path[:ref]` at the first colon after the path, as containers/image does on Unix.
 * @param {string} text
 */
export function parseSource(text) {
  const match = /^(oci|oci-archive|docker-archive):(.+)$/.exec(text);
  if (!match) throw new SourceError(`unsupported source ${JSON.stringify(text)}: use oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE`);
  const transport = /** @type {string} */ (match[1]);
  const rest = /** @type {string} */ (match[2]);
  const colon = rest.indexOf(":");
  const path = colon === -1 ? rest : rest.slice(0, colon);
  const reference = colon === -1 ? undefined : rest.slice(colon + 1);
  if (!path) throw new SourceError(`source ${text} names no path`);
  return { transport, path, reference: reference || undefined };
}

/** Opens a source given in transport syntax. */
export async function openSource(/** @type {string} */ text) {
  const { transport, path, reference } = parseSource(text);
  if (!existsSync(path)) throw new SourceError(`${transport}: ${path} does not exist`);
  if (transport === "oci") return readLayout(text, ociDirectory(path), reference);
  if (transport === "oci-archive") return readLayout(text, ociArchive(path), reference);
  return readDockerArchive(text, path, reference);
}

/**
 * An OCI image layout's files, whether a directory or a tar of one.
 * @typedef {{ has: (name: string) => boolean, read: (name: string) => Buffer, locate: (name: string) => Location | undefined }} LayoutFiles
 */

/** @returns {LayoutFiles} */
function ociDirectory(/** @type {string} */ dir) {
  return {
    has: (name) => existsSync(join(dir, name)),
    read: (name) => readFileSync(join(dir, name)),
    locate: (name) => {
      const path = join(dir, name);
      return existsSync(path) ? { path, offset: 0, size: statSync(path).size } : undefined;
    },
  };
}

/** @returns {LayoutFiles} */
function ociArchive(/** @type {string} */ file) {
  const entries = readTarIndex(file);
  return {
    has: (name) => entries.has(name),
    read: (name) => {
      const entry = entries.get(name);
      if (!entry) throw new SourceError(`${file}: no ${name} in the archive`);
      return readTarEntry(file, entry);
    },
    locate: (name) => {
      const entry = entries.get(name);
      return entry && { path: file, offset: entry.offset, size: entry.size };
    },
  };
}

/** image-layout.md: blobs/<algorithm>/<encoded>. */
function blobPath(/** @type {string} */ digest) {
  const match = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/.exec(digest);
  if (!match) throw new SourceError(`invalid digest ${JSON.stringify(digest)}`);
  return `blobs/${match[1]}/${match[2]}`;
}

function parseJson(/** @type {Buffer} */ bytes, /** @type {string} */ what) {
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch {
    throw new SourceError(`${what} is not JSON`);
  }
}

/**
 * @param {string} description
 * @param {LayoutFiles} files
 * @param {string | undefined} tag
 * @returns {Promise<SourceImage>}
 */
async function readLayout(description, files, tag) {
  if (!files.has("index.json")) throw new SourceError(`${description}: no index.json (not an OCI image layout)`);
  const index = parseJson(files.read("index.json"), "index.json");
  /** @type {(Descriptor & { annotations?: Record<string, string> })[]} */
  const entries = Array.isArray(index.manifests) ? index.manifests : [];
  const matching = tag === undefined ? entries : entries.filter((entry) => entry.annotations?.[REF_NAME] === tag);
  if (matching.length !== 1) {
    const tags = entries.map((entry) => entry.annotations?.[REF_NAME]).filter(Boolean);
    throw new SourceError(
      tag === undefined
        ? `${description}: the layout holds ${entries.length} images; name one (${tags.join(", ") || "untagged"})`
        : `${description}: no image tagged ${tag} in the layout (tags: ${tags.join(", ") || "none"})`,
    );
  }
  /** @type {SourceManifest[]} */
  const manifests = [];
  /** @type {Map<string, SourceBlob>} */
  const blobs = new Map();
  const readBlob = (/** @type {Descriptor} */ descriptor) => {
    const bytes = files.read(blobPath(descriptor.digest));
    if (sha256(bytes) !== descriptor.digest || bytes.length !== descriptor.size) {
      throw new SourceError(`${description}: ${descriptor.digest} does not match its content`);
    }
    return bytes;
  };
  const visit = (/** @type {Descriptor} */ descriptor, /** @type {number} */ depth) => {
    if (depth > 4) throw new SourceError(`${description}: indexes nested too deep`);
    const bytes = readBlob(descriptor);
    const document = parseJson(bytes, descriptor.digest);
    const mediaType = document.mediaType ?? descriptor.mediaType;
    if (INDEX_TYPES.has(mediaType)) {
      for (const child of document.manifests ?? []) visit(child, depth + 1);
    } else if (MANIFEST_TYPES.has(mediaType)) {
      for (const blob of [document.config, ...(document.layers ?? [])]) {
        if (!blob || blobs.has(blob.digest)) continue;
        const location = files.locate(blobPath(blob.digest));
        if (!location) {
          // image-spec descriptor.md: a non-distributable layer with `urls` may be absent from the layout.
          if (blob.urls) continue;
          throw new SourceError(`${description}: blob ${blob.digest} is missing from the layout`);
        }
        if (location.size !== blob.size) throw new SourceError(`${description}: blob ${blob.digest} has ${location.size} bytes, its descriptor says ${blob.size}`);
        blobs.set(blob.digest, { descriptor: { mediaType: blob.mediaType, digest: blob.digest, size: blob.size }, location });
      }
    } else {
      throw new SourceError(`${description}: unsupported manifest media type ${mediaType}`);
    }
    if (!manifests.some((manifest) => manifest.descriptor.digest === descriptor.digest)) {
      manifests.push({ descriptor: { mediaType, digest: descriptor.digest, size: bytes.length }, bytes });
    }
  };
  visit(/** @type {Descriptor} */ (matching[0]), 0);
  return { description, manifests, blobs: [...blobs.values()] };
}

/** Whether a byte range starts with gzip's magic number. */
function isGzip(/** @type {Location} */ location) {
  if (location.size < 2) return false;
  const fd = openSync(location.path, "r");
  try {
    const magic = Buffer.alloc(2);
    readSync(fd, magic, 0, 2, location.offset);
    return magic[0] === 0x1f && magic[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
}

/**
 * `podman save` / `docker save` output: manifest.json lists each image's config file and layer tars. The
 * image becomes an OCI manifest whose layers are those tars as they are, uncompressed
 * (`application/vnd.oci.image.layer.v1.tar`, image-spec layer.md): an uncompressed layer's digest is its
 * diff id, already in the config, so nothing is hashed in advance (the push verifies it while reading);
 * the same archive always gives the same digests, on any machine and zlib version, so repeated pushes
 * deduplicate; and no CPU goes into compression. Layers already gzipped in the archive keep their bytes.
 * @param {string} description
 * @param {string} file
 * @param {string | undefined} reference `REPO:TAG` from RepoTags, or `@N` (the Nth image)
 * @returns {Promise<SourceImage>}
 */
async function readDockerArchive(description, file, reference) {
  const entries = readTarIndex(file);
  const manifestEntry = entries.get("manifest.json");
  if (!manifestEntry) throw new SourceError(`${description}: no manifest.json (not a docker-archive)`);
  /** @type {{ Config: string, RepoTags?: string[], Layers: string[] }[]} */
  const images = parseJson(readTarEntry(file, manifestEntry), "manifest.json");
  let image;
  if (reference === undefined) {
    if (images.length !== 1) throw new SourceError(`${description}: the archive holds ${images.length} images; name one as :REPO:TAG or :@N`);
    image = images[0];
  } else if (reference.startsWith("@")) {
    image = images[Number(reference.slice(1))];
  } else {
    const short = (/** @type {string} */ tag) => tag.replace(/^(localhost|docker\.io)\//, "").replace(/^library\//, "");
    image = images.find((candidate) => (candidate.RepoTags ?? []).some((tag) => tag === reference || short(tag) === short(reference)));
  }
  if (!image) throw new SourceError(`${description}: no image ${reference} in the archive`);
  const locate = (/** @type {string} */ name) => {
    const entry = entries.get(name.replace(/^(\.\/|\/)+/, ""));
    if (!entry) throw new SourceError(`${description}: ${name} is missing from the archive`);
    return { path: file, offset: entry.offset, size: entry.size };
  };
  const configLocation = locate(image.Config);
  const configBytes = readTarEntry(file, { name: image.Config, offset: configLocation.offset, size: configLocation.size });
  const config = parseJson(configBytes, image.Config);
  /** @type {string[]} */
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== image.Layers.length) throw new SourceError(`${description}: ${image.Layers.length} layers but ${diffIds.length} diff ids in the config`);
  /** @type {Map<string, SourceBlob>} */
  const blobs = new Map();
  const configDescriptor = { mediaType: OCI_CONFIG, digest: sha256(configBytes), size: configBytes.length };
  blobs.set(configDescriptor.digest, { descriptor: configDescriptor, location: configLocation });
  /** @type {Descriptor[]} */
  const layers = [];
  for (const [index, name] of image.Layers.entries()) {
    const location = locate(name);
    const gzip = isGzip(location);
    // Uncompressed: the digest is the diff id (verified while pushing). Compressed: hashed here.
    const digest = gzip ? await hashLocation(location) : /** @type {string} */ (diffIds[index]);
    const descriptor = { mediaType: gzip ? OCI_LAYER_TAR_GZIP : OCI_LAYER_TAR, digest, size: location.size };
    layers.push(descriptor);
    if (!blobs.has(digest)) blobs.set(digest, { descriptor, location });
  }
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: configDescriptor, layers }));
  return {
    description,
    manifests: [{ descriptor: { mediaType: OCI_MANIFEST, digest: sha256(bytes), size: bytes.length }, bytes }],
    blobs: [...blobs.values()],
  };
}
