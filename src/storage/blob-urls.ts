/**
 * Short-lived URLs that authorize a blob download by themselves, since clients must not forward
 * Authorization across hosts on a redirect (distribution-spec spec.md "redirect").
 *
 * - With R2 S3 credentials: an R2 presigned URL (SigV4 query signing through aws4fetch).
 * - Without (local development): a URL to this Worker's /blob-data/ route, HMAC-signed with an expiry.
 */
import { AwsClient } from "aws4fetch";
import type { R2PresignConfig } from "../config/config";
import type { Hmac } from "../crypto/secrets";
import { BLOB_DATA_PATH } from "../http/paths";

export interface BlobUrlSigner {
  /** A URL valid for `lifetimeSeconds` that downloads the object at `key`. */
  sign(key: string, origin: string): Promise<string>;
}

export class R2PresignedUrls implements BlobUrlSigner {
  private readonly client: AwsClient;

  constructor(
    private readonly config: R2PresignConfig,
    private readonly lifetimeSeconds: number,
  ) {
    this.client = new AwsClient({
      accessKeyId: config.accessKeyId,
      secretAccessKey: config.secretAccessKey,
      service: "s3",
      region: "auto",
    });
  }

  async sign(key: string): Promise<string> {
    const url = new URL(
      `https://${this.config.accountId}.r2.cloudflarestorage.com/${this.config.bucketName}/${key}`,
    );
    url.searchParams.set("X-Amz-Expires", String(this.lifetimeSeconds));
    const signed = await this.client.sign(new Request(url, { method: "GET" }), { aws: { signQuery: true } });
    return signed.url;
  }
}

/** URLs served by this Worker from the R2 binding: `/blob-data/<key>?expires=<unix>&signature=<hex>`. */
export class WorkerSignedUrls implements BlobUrlSigner {
  constructor(
    private readonly hmac: Hmac,
    private readonly lifetimeSeconds: number,
  ) {}

  async sign(key: string, origin: string): Promise<string> {
    const expires = Math.floor(Date.now() / 1000) + this.lifetimeSeconds;
    const signature = await this.hmac.signHex(`${key}\n${expires}`);
    return `${origin}${BLOB_DATA_PATH}${key}?expires=${expires}&signature=${signature}`;
  }

  /** The key a signed URL grants, or undefined where the signature is wrong or expired. */
  async verify(url: URL): Promise<string | undefined> {
    const key = url.pathname.slice(BLOB_DATA_PATH.length);
    const expires = Number(url.searchParams.get("expires"));
    const signature = url.searchParams.get("signature") ?? "";
    if (!Number.isInteger(expires) || expires < Math.floor(Date.now() / 1000)) return undefined;
    return (await this.hmac.verifyHex(`${key}\n${expires}`, signature)) ? key : undefined;
  }
}
