import type { Env } from "../../src/config/env";
import { describe, expect, it } from "vitest";
import { R2PresignedUrls, WorkerSignedUrls } from "../../src/storage/blob-urls";
import { Hmac } from "../../src/crypto/secrets";
import { parseConfig } from "../../src/config/config";

const presign = { accountId: "0123456789abcdef0123456789abcdef", bucketName: "blobs", accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" };

describe("R2 presigned URLs (SigV4 query signing)", () => {
  it("point at the bucket's S3 endpoint and carry a short expiry and a signature over the host", async () => {
    const url = new URL(await new R2PresignedUrls(presign, 300).sign("blobs/abc"));
    expect(url.origin).toBe(`https://${presign.accountId}.r2.cloudflarestorage.com`);
    expect(url.pathname).toBe("/blobs/blobs/abc");
    expect(url.searchParams.get("X-Amz-Algorithm")).toBe("AWS4-HMAC-SHA256");
    expect(url.searchParams.get("X-Amz-Expires")).toBe("300");
    expect(url.searchParams.get("X-Amz-Credential")).toMatch(/^AKIDEXAMPLE\/\d{8}\/auto\/s3\/aws4_request$/);
    expect(url.searchParams.get("X-Amz-SignedHeaders")).toBe("host");
    expect(url.searchParams.get("X-Amz-Signature")).toMatch(/^[0-9a-f]{64}$/);
  });

  it("differ per key and per secret", async () => {
    const a = new URL(await new R2PresignedUrls(presign, 300).sign("blobs/a")).searchParams.get("X-Amz-Signature");
    const b = new URL(await new R2PresignedUrls(presign, 300).sign("blobs/b")).searchParams.get("X-Amz-Signature");
    const c = new URL(await new R2PresignedUrls({ ...presign, secretAccessKey: "other" }, 300).sign("blobs/a")).searchParams.get("X-Amz-Signature");
    expect(new Set([a, b, c]).size).toBe(3);
  });

  it("are used when, and only when, all four R2 settings are configured", () => {
    const base = {
      REGISTRY_KV: {},
      REGISTRY_BUCKET: {},
      REPOSITORY_LEDGER: {},
      BLOB_INDEX: {},
      IDENTITY_LEDGER: {},
      SIGNING_KEYS: "{}",
      SECRET_PEPPER: "p".repeat(32),
    } as unknown as Env;
    expect(parseConfig(base).r2Presign).toBeUndefined();
    expect(
      parseConfig({ ...base, R2_ACCOUNT_ID: presign.accountId, R2_BUCKET_NAME: "blobs", R2_ACCESS_KEY_ID: "k", R2_SECRET_ACCESS_KEY: "s" }).r2Presign,
    ).toMatchObject({ bucketName: "blobs" });
    expect(() => parseConfig({ ...base, R2_ACCESS_KEY_ID: "k" })).toThrow(/R2_ACCOUNT_ID/);
  });
});

describe("Worker-signed URLs", () => {
  it("verify only their own key before expiry", async () => {
    const urls = new WorkerSignedUrls(await Hmac.create("x".repeat(32), "blob-url"), 60);
    const signed = new URL(await urls.sign("blobs/k", "https://r.test"));
    expect(await urls.verify(signed)).toBe("blobs/k");
    const other = new WorkerSignedUrls(await Hmac.create("y".repeat(32), "blob-url"), 60);
    expect(await other.verify(signed)).toBeUndefined();
  });
});
