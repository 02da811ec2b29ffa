/** Header names and fixed values used across the HTTP layer. */
export const API_VERSION_HEADER = "Docker-Distribution-API-Version";
export const API_VERSION = "registry/2.0";
export const CONTENT_DIGEST_HEADER = "Docker-Content-Digest";
export const UPLOAD_UUID_HEADER = "Docker-Upload-UUID";
export const SUBJECT_HEADER = "OCI-Subject";
export const FILTERS_APPLIED_HEADER = "OCI-Filters-Applied";

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
