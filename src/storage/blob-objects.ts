/** Read access to stored blob bytes by key, for downloads through Worker-signed URLs (registry/blob-download.ts). */
export class BlobObjects {
  constructor(private readonly bucket: R2Bucket) {}

  head(key: string): Promise<R2Object | null> {
    return this.bucket.head(key);
  }

  /** The object's bytes, or one byte range of them. */
  read(key: string, range?: { offset: number; length: number }): Promise<R2ObjectBody | null> {
    return this.bucket.get(key, range ? { range } : {});
  }
}
