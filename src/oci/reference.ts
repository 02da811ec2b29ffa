/**
 * Grammar of repository names, tags and digests (distribution-spec spec.md "Pulling manifests").
 * Every name, tag and digest is validated here before any storage key is built from it. Neutral results
 * only: each surface maps a refusal to its own error (registry/oci-names.ts on /v2/).
 */

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

/** A manifest reference is a tag or a digest. */
export type ManifestReference = { kind: "tag"; tag: string } | { kind: "digest"; digest: Digest };

/** A reference that fails the grammar, and which part: a digest (it holds ':') or a tag. */
export interface InvalidReference {
  kind: "invalid";
  part: "digest" | "tag";
}

/** A reference holding ':' is a digest, anything else a tag. */
export function parseManifestReference(reference: string): ManifestReference | InvalidReference {
  if (reference.includes(":")) {
    const digest = parseDigest(reference);
    return digest ? { kind: "digest", digest } : { kind: "invalid", part: "digest" };
  }
  return isValidTag(reference) ? { kind: "tag", tag: reference } : { kind: "invalid", part: "tag" };
}

/**
 * A reference to look up (GET, HEAD, DELETE): one that can name nothing in the grammar is undefined, so the
 * caller answers 404 (spec.md end-3 lists only 404 for a manifest that is not there).
 */
export function parseLookupReference(reference: string): ManifestReference | undefined {
  const parsed = parseManifestReference(reference);
  return parsed.kind === "invalid" ? undefined : parsed;
}
