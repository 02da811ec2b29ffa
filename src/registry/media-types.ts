/** Manifest media types the registry stores (OCI image-spec; Docker image manifest v2 schema 2). */
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
export const DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";

export const IMAGE_MANIFEST_TYPES: ReadonlySet<string> = new Set([OCI_MANIFEST, DOCKER_MANIFEST]);
export const INDEX_TYPES: ReadonlySet<string> = new Set([OCI_INDEX, DOCKER_MANIFEST_LIST]);

/** Strips parameters: `application/json; charset=utf-8` → `application/json`. */
export function bareMediaType(value: string): string {
  return value.split(";")[0]!.trim().toLowerCase();
}

/**
 * Whether an Accept header admits `mediaType`. No header, or a wildcard, admits anything; clients send
 * several types in one header or in several (joined by ", ").
 */
export function accepts(acceptHeader: string | null, mediaType: string): boolean {
  if (acceptHeader === null || acceptHeader.trim() === "") return true;
  return acceptHeader
    .split(",")
    .map(bareMediaType)
    .some((type) => type === mediaType || type === "*/*" || type === "application/*");
}
