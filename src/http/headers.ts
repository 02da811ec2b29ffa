/** Header names and fixed values used across the HTTP layer. */
export const API_VERSION_HEADER = "Docker-Distribution-API-Version";
export const API_VERSION = "registry/2.0";
export const CONTENT_DIGEST_HEADER = "Docker-Content-Digest";
export const UPLOAD_UUID_HEADER = "Docker-Upload-UUID";
export const SUBJECT_HEADER = "OCI-Subject";
export const FILTERS_APPLIED_HEADER = "OCI-Filters-Applied";
/**
 * Largest chunk (request body) an upload session accepts: the proposed distribution-spec header (not in
 * v1.1; opencontainers/distribution-spec "chunk max length" proposal). v1.1's OCI-Chunk-Min-Length is not
 * sent: this registry has no minimum (src/registry/uploads.ts says why).
 */
export const CHUNK_MAX_LENGTH_HEADER = "OCI-Chunk-Max-Length";

/** Headers every JSON or HTML answer carries. */
export const SECURITY_HEADERS: Record<string, string> = {
  "X-Content-Type-Options": "nosniff",
  "Cache-Control": "no-store",
};

export function jsonResponse(body: unknown, status = 200, headers: HeadersInit = {}): Response {
  const response = new Response(JSON.stringify(body), { status, headers });
  response.headers.set("Content-Type", "application/json; charset=utf-8");
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
    if (!response.headers.has(name)) response.headers.set(name, value);
  }
  return response;
}
