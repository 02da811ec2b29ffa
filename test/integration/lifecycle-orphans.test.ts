/**
 * The cron sweep of objects left by requests that crashed (issue 14 item 2, docs/lifecycle.md): a blob object
 * a request wrote and never recorded is deleted once older than any live session and the grace period; an
 * object a blob record, an open session or an in-flight upload names is never touched. Objects are planted
 * exactly as the crashed request would have left them (R2 `blobs/<uuid>` with its writer's metadata).
 */
import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { blobIndexFor } from "../../src/storage/blob-index";
import { BlobUploads } from "../../src/storage/blob-uploads";
import { r2Keys } from "../../src/storage/keys";
import { blobObjectMetadata } from "../../src/storage/upload-state";
import { adminCall, bearer, call, ledgerOf, pushBlob, randomBytes, repositoryFixture } from "../helpers/registry";

const HOUR = 3600 * 1000;
const GRACE_MS = 24 * HOUR;
const uploads = () => new BlobUploads(env.REGISTRY_BUCKET, env.REPOSITORY_LEDGER, env.BLOB_INDEX);
/** Later than any live session (24 h idle + 1 h slack) and the grace period, for objects written now. */
const later = () => Date.now() + 26 * HOUR;

async function blobObjects(): Promise<Set<string>> {
  const keys = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await env.REGISTRY_BUCKET.list({ prefix: r2Keys.blobsPrefix, cursor });
    for (const object of page.objects) keys.add(object.key);
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return keys;
}

/** Writes blob bytes as a request of upload session `upload` does before it records them (then "crashes"). */
async function plantCrashedWrite(repository: string, upload: string, size = 700): Promise<string> {
  const key = r2Keys.blobData(crypto.randomUUID());
  await env.REGISTRY_BUCKET.put(key, randomBytes(size), { customMetadata: blobObjectMetadata({ repository, id: upload }) });
  return key;
}

async function auditDetails(action: string, predicate: (detail: string) => boolean): Promise<boolean> {
  for (let attempt = 0; attempt < 40; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 250));
    const events = (await (await adminCall("GET", `/audit?action=${action}&limit=50`)).json()) as { events: { actor: string; detail: string }[] };
    if (events.events.some((event) => event.actor === "gc" && predicate(event.detail))) return true;
  }
  return false;
}

describe("the orphan sweep", () => {
  it("deletes exactly the objects crashed requests left, after the grace period; records, sessions and old objects stay", async () => {
    const { ns, repo, token } = await repositoryFixture();
    const idle = `${ns}/idle`;
    // Referenced: a pushed blob (its record names its object).
    const pushed = await pushBlob(repo, randomBytes(1200), token);
    const pushedKey = (await blobIndexFor(env.BLOB_INDEX, pushed).get())!.key;
    // In flight: an open session whose first chunk is saved (its state names the object).
    const started = await call(`/v2/${repo}/blobs/uploads/`, { method: "POST", headers: bearer(token) });
    const location = started.headers.get("Location")!;
    const patched = await call(location, { method: "PATCH", headers: { ...bearer(token), "Content-Length": "900" }, body: randomBytes(900) });
    expect(patched.status).toBe(202);
    const openSession = location.split("/").at(-1)!;
    const openKey = JSON.parse(JSON.stringify(await ledgerOf(repo).getUpload(openSession))).blobKey as string;
    // A crashed write of that open session (written, never saved): its session lives, so it stays too.
    const crashedInOpenSession = await plantCrashedWrite(repo, openSession);
    // Crashed writes whose sessions are gone: one of a session the ledger abandoned, one of a session that
    // finished (a finish whose bytes lost the blob record, deleting them failed), one of a repository never created.
    const abandoned = await uploads().start(idle);
    const orphanOfAbandoned = await plantCrashedWrite(idle, abandoned.session.state.id, 800);
    expect(await ledgerOf(idle).settleAbandonedUploads(Date.now() + 25 * HOUR)).toBe(1);
    const orphanOfFinished = await plantCrashedWrite(repo, crypto.randomUUID(), 300);
    const orphanElsewhere = await plantCrashedWrite(`${repo}-gone`, crypto.randomUUID(), 200);
    // An object written before objects carried their writer (no metadata): never touched.
    const legacy = r2Keys.blobData(crypto.randomUUID());
    await env.REGISTRY_BUCKET.put(legacy, randomBytes(100));

    const before = await blobObjects();
    for (const key of [pushedKey, openKey, crashedInOpenSession, orphanOfAbandoned, orphanOfFinished, orphanElsewhere, legacy]) expect(before.has(key)).toBe(true);
    // Within the grace period nothing is touched.
    expect((await uploads().sweepOrphanBlobObjects({ graceMs: GRACE_MS })).deleted).toBe(0);
    expect(await blobObjects()).toEqual(before);

    const swept = await uploads().sweepAfterCrashes({ graceMs: GRACE_MS, now: later() }, env.REGISTRY_KV);
    const orphans = [orphanOfAbandoned, orphanOfFinished, orphanElsewhere];
    expect(swept.blobs.deleted).toBe(orphans.length);
    expect(swept.blobs.deletedBytes).toBe(800 + 300 + 200);
    const after = await blobObjects();
    expect([...before].filter((key) => !after.has(key)).sort()).toEqual([...orphans].sort());
    // The pushed blob still downloads; the open session still finishes.
    expect(await env.REGISTRY_BUCKET.head(pushedKey)).not.toBeNull();
    expect(await env.REGISTRY_BUCKET.head(r2Keys.referencedBlob(pushedKey))).not.toBeNull();
    // The run is in the audit log with its counts and bytes.
    expect(await auditDetails("gc.orphans", (detail) => detail.startsWith(`deleted ${orphans.length} orphaned blob objects (1300 bytes)`))).toBe(true);

    // A second run asks no ledger about the marked record again, and deletes nothing more.
    const again = await uploads().sweepOrphanBlobObjects({ graceMs: GRACE_MS, now: later() });
    expect(again.deleted).toBe(0);
    expect(again.checked).toBe(swept.blobs.checked - orphans.length - 1);
    expect(await blobObjects()).toEqual(after);
  });

  it("the cron trigger runs the sweeps (nothing here is old enough to go)", async () => {
    const { repo, token } = await repositoryFixture();
    const digest = await pushBlob(repo, randomBytes(400), token);
    const before = await blobObjects();
    await worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: "0 * * * *" }), env);
    expect(await blobObjects()).toEqual(before);
    expect(await blobIndexFor(env.BLOB_INDEX, digest).get()).not.toBeNull();
  });

  it("a blob record's object whose record was collected is left to the blob index, then swept once unnamed", async () => {
    const { repo, token } = await repositoryFixture();
    const digest = await pushBlob(repo, randomBytes(500), token);
    const index = blobIndexFor(env.BLOB_INDEX, digest);
    const key = (await index.get())!.key;
    // Collected: the link goes, the record goes; the bytes wait KV_STALE_LINK_MS for the index to delete them.
    expect((await adminCall("POST", "/gc", { repository: repo, gracePeriodSeconds: 0 })).status).toBe(200);
    expect(await index.get()).toBeNull();
    // The sweep sees the record no longer names the object: it forgets the claim and leaves the object this run…
    await uploads().sweepOrphanBlobObjects({ graceMs: GRACE_MS, now: later() });
    expect(await env.REGISTRY_BUCKET.head(key)).not.toBeNull();
    // …and the next run deletes it if the index has not already (both only delete unnamed bytes).
    await uploads().sweepOrphanBlobObjects({ graceMs: GRACE_MS, now: later() });
    expect(await env.REGISTRY_BUCKET.head(key)).toBeNull();
    expect(await index.deleteCollectedBytes(Date.now() + 10 * 60_000)).toBe(1);
  });
});
