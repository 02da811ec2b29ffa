/**
 * Cleans up abandoned upload sessions (run hourly by the cron trigger in wrangler.toml): a session whose
 * newest state is older than the cutoff has its bytes dropped (multipart upload aborted, or its one object
 * deleted) and its state objects deleted.
 * R2 would abort the multipart upload itself after 7 days; this frees the parts and states a day after
 * the client went away.
 */
import { r2Keys } from "../storage/keys";
import type { RegistryContext } from "./context";
import { discardUploadBytes } from "./uploads";

export const ABANDONED_AFTER_MS = 24 * 3600 * 1000;

export async function cleanAbandonedUploads(ctx: Pick<RegistryContext, "bucket" | "repositories" | "uploads">, now = Date.now()): Promise<number> {
  const { bucket, uploads } = ctx;
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
    if (session) await discardUploadBytes(ctx, session).catch(() => undefined);
    await uploads.delete(id);
    cleaned += 1;
  }
  if (cleaned > 0) console.log(JSON.stringify({ event: "abandoned_uploads_cleaned", count: cleaned }));
  return cleaned;
}
