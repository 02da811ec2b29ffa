/**
 * Grammar of repository names, tags and digests (distribution-spec spec.md "Pulling manifests").
 * Every name, tag and digest is validated here before any storage key is built from it.
 */
import { RegistryError } from "../http/oci-errors";

// spec.md: <name> MUST match [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
const COMPONENT = "[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*";
const NAME_PATTERN = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
// spec.md: <reference> as a tag MUST match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
const TAG_PATTERN = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DIGEST_HEX_LENGTH = { sha256: 64, sha512: 128 } as const;
/** distribution/reference RepositoryNameTotalLengthMax; many clients cap host + name at 255. */
export const MAX_NAME_LENGTH = 255;

export type DigestAlgorithm = keyof typeof DIGEST_HEX_LENGTH;

/** A validated digest such as `sha256:<64 hex>`. */
export interface Digest {
  algorithm: DigestAlgorithm;
  hex: string;
  /** `<algorithm>:<hex>`. */
  value: string;
}

export function isValidRepositoryName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && NAME_PATTERN.test(name);
}

export function isValidTag(tag: string): boolean {
  return TAG_PATTERN.test(tag);
}

/** Parses a digest; undefined where it is malformed or uses an algorithm the registry does not know. */
export function parseDigest(value: string): Digest | undefined {
  const colon = value.indexOf(":");
  if (colon < 0) return undefined;
  const algorithm = value.slice(0, colon);
  const hex = value.slice(colon + 1);
  if (!(algorithm in DIGEST_HEX_LENGTH)) return undefined;
  const expected = DIGEST_HEX_LENGTH[algorithm as DigestAlgorithm];
  // spec.md "Digests": encoded portion is lowercase hex of the algorithm's exact length.
  if (hex.length !== expected || !/^[a-f0-9]+$/.test(hex)) return undefined;
  return { algorithm: algorithm as DigestAlgorithm, hex, value };
}

export function requireRepositoryName(name: string): string {
  if (!isValidRepositoryName(name)) {
    throw new RegistryError("NAME_INVALID", { detail: { name: name.slice(0, MAX_NAME_LENGTH + 1) } });
  }
  return name;
}

export function requireDigest(value: string): Digest {
  const digest = parseDigest(value);
  if (!digest) throw new RegistryError("DIGEST_INVALID", { message: "invalid digest", detail: { digest: value.slice(0, 200) } });
  return digest;
}

/** A manifest reference is a tag or a digest. */
export type ManifestReference = { kind: "tag"; tag: string } | { kind: "digest"; digest: Digest };

export function parseManifestReference(reference: string): ManifestReference {
  if (reference.includes(":")) return { kind: "digest", digest: requireDigest(reference) };
  if (!isValidTag(reference)) {
    // spec.md: a malformed tag reference answers MANIFEST_INVALID (distribution: TAG_INVALID).
    throw new RegistryError("MANIFEST_INVALID", { message: "invalid tag", detail: { tag: reference.slice(0, 200) } });
  }
  return { kind: "tag", tag: reference };
}

/**
 * A reference to look up (GET, HEAD, DELETE): one that can name nothing in the grammar is undefined, so the
 * caller answers 404 (spec.md end-3 lists only 404 for a manifest that is not there).
 */
export function parseLookupReference(reference: string): ManifestReference | undefined {
  if (reference.includes(":")) {
    const digest = parseDigest(reference);
    return digest && { kind: "digest", digest };
  }
  return isValidTag(reference) ? { kind: "tag", tag: reference } : undefined;
}

/** parseLookupReference, answering 404 MANIFEST_UNKNOWN for a reference that cannot exist. */
export function requireLookupReference(reference: string): ManifestReference {
  const parsed = parseLookupReference(reference);
  if (!parsed) throw new RegistryError("MANIFEST_UNKNOWN", { detail: { reference: reference.slice(0, 200) } });
  return parsed;
}
