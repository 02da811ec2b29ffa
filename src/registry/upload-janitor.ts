/**
 * Cleans up abandoned upload sessions (run hourly by the cron trigger in wrangler.toml): a session whose
 * newest state is older than the cutoff has its multipart upload aborted and its state objects deleted.
 * R2 would abort the multipart upload itself after 7 days; this frees the parts and states a day after
 * the client went away.
 */
import { r2Keys } from "../storage/keys";
import type { UploadStore } from "../storage/upload-store";

export const ABANDONED_AFTER_MS = 24 * 3600 * 1000;

export async function cleanAbandonedUploads(bucket: R2Bucket, uploads: UploadStore, now = Date.now()): Promise<number> {
  const newest = new Map<string, number>();
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix: r2Keys.uploadsPrefix, cursor });
    for (const object of page.objects) {
      const id = object.key.slice(r2Keys.uploadsPrefix.length).split("/")[0]!;
      newest.set(id, Math.max(newest.get(id) ?? 0, object.uploaded.getTime()));
    }
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  let cleaned = 0;
  for (const [id, lastWrite] of newest) {
    if (now - lastWrite < ABANDONED_AFTER_MS) continue;
    const session = await uploads.load(id);
    const multipart = session?.state.multipartUploadId;
    if (multipart) await bucket.resumeMultipartUpload(session.state.blobKey, multipart).abort().catch(() => undefined);
    await uploads.delete(id);
    cleaned += 1;
  }
  if (cleaned > 0) console.log(JSON.stringify({ event: "abandoned_uploads_cleaned", count: cleaned }));
  return cleaned;
}
