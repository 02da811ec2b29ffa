/** Blob downloads through the running Worker, as a client sees them on the wire. */
import { createHash } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { writeOciLayout } from "../../scripts/lib/oci-image.mjs";
import { adminOk, creds, httpsRequest, registryHost, registryUrl, runOk, tempDir } from "./support";

let token: string;
let layer: { digest: string; size: number };

beforeAll(async () => {
  await adminOk("POST", "/namespaces", { name: "wire" });
  const account = await adminOk("POST", "/service-accounts", { namespace: "wire", name: "reader", grants: [{ namespace: "wire", role: "write" }] });
  const source = tempDir("wire");
  await writeOciLayout(source, [{ seed: 71, layerSizes: [3 * 1024 * 1024] }], "v1");
  runOk("skopeo", ["copy", "--dest-tls-verify=false", "--dest-compress=false", "--dest-creds", creds({ username: account.username, secret: account.token }), `oci:${source}:v1`, `docker://${registryHost()}/wire/app:v1`]);
  const basic = Buffer.from(`${account.username}:${account.token}`).toString("base64");
  const tokenResponse = await httpsRequest(`${registryUrl()}/token?service=edge-registry&scope=repository:wire/app:pull`, { headers: { Authorization: `Basic ${basic}` } });
  token = JSON.parse(tokenResponse.body.toString()).token;
  const manifest = await httpsRequest(`${registryUrl()}/v2/wire/app/manifests/v1`, {
    headers: { Authorization: `Bearer ${token}`, Accept: "application/vnd.oci.image.manifest.v1+json" },
  });
  layer = JSON.parse(manifest.body.toString()).layers[0];
});

async function signedUrl(): Promise<string> {
  const redirect = await httpsRequest(`${registryUrl()}/v2/wire/app/blobs/${layer.digest}`, { headers: { Authorization: `Bearer ${token}` } });
  expect(redirect.status).toBe(307);
  return new URL(String(redirect.headers.location), registryUrl()).toString();
}

describe("blob download", () => {
  it("is served byte for byte, never gzip-encoded on the fly, even when the client accepts gzip (skopeo does)", async () => {
    const response = await httpsRequest(await signedUrl(), { headers: { "Accept-Encoding": "gzip" } });
    expect(response.status).toBe(200);
    expect(response.headers["content-encoding"]).toBeUndefined();
    expect(response.headers["content-type"]).toBe("application/octet-stream");
    expect(Number(response.headers["content-length"])).toBe(layer.size);
    expect(`sha256:${createHash("sha256").update(response.body).digest("hex")}`).toBe(layer.digest);
  });

  it("answers a Range request with 206", async () => {
    const response = await httpsRequest(await signedUrl(), { headers: { Range: "bytes=0-1023" } });
    expect(response.status).toBe(206);
    expect(response.body.length).toBe(1024);
    expect(response.headers["content-range"]).toBe(`bytes 0-1023/${layer.size}`);
  });

  it("a signed URL does not need (or forward) the bearer token", async () => {
    const response = await httpsRequest(await signedUrl(), { method: "HEAD" });
    expect(response.status).toBe(200);
  });
});
