/** The OCI grammar (oci/reference.ts) on /v2/: a name, digest or reference it refuses is an OCI error. */
import { RegistryError } from "../http/oci-errors";
import { MAX_NAME_LENGTH, isValidRepositoryName, parseDigest, parseLookupReference, parseManifestReference, type Digest, type ManifestReference } from "../oci/reference";

export function requireRepositoryName(name: string): string {
  if (!isValidRepositoryName(name)) {
    throw new RegistryError("NAME_INVALID", { detail: { name: name.slice(0, MAX_NAME_LENGTH + 1) } });
  }
  return name;
}

export function requireDigest(value: string): Digest {
  const digest = parseDigest(value);
  if (!digest) throw invalidDigest(value);
  return digest;
}

/** A manifest reference being pushed: a malformed digest is DIGEST_INVALID, a malformed tag MANIFEST_INVALID. */
export function requireManifestReference(reference: string): ManifestReference {
  const parsed = parseManifestReference(reference);
  if (parsed.kind !== "invalid") return parsed;
  if (parsed.part === "digest") throw invalidDigest(reference);
  // spec.md: a malformed tag reference answers MANIFEST_INVALID (distribution: TAG_INVALID).
  throw new RegistryError("MANIFEST_INVALID", { message: "invalid tag", detail: { tag: reference.slice(0, 200) } });
}

/** parseLookupReference, answering 404 MANIFEST_UNKNOWN for a reference that cannot exist. */
export function requireLookupReference(reference: string): ManifestReference {
  const parsed = parseLookupReference(reference);
  if (!parsed) throw new RegistryError("MANIFEST_UNKNOWN", { detail: { reference: reference.slice(0, 200) } });
  return parsed;
}

function invalidDigest(value: string): RegistryError {
  return new RegistryError("DIGEST_INVALID", { message: "invalid digest", detail: { digest: value.slice(0, 200) } });
}
