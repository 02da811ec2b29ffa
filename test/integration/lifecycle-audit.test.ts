/**
 * Audit records of the lifecycle actions the alarms take by themselves (issue 14 item 7): tag-history
 * pruning and garbage collection of links as per-round summaries with counts and bytes, freed blobs with
 * their digest and bytes, retention's tag removals (each, before it is made). The cron's orphan sweep is
 * covered in lifecycle-orphans.test.ts, untagged-manifest expiry in lifecycle-untagged.test.ts.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { blobIndexFor } from "../../src/storage/blob-index";
import { adminCall, ledgerOf, pushBlob, pushImage, randomBytes, repositoryFixture } from "../helpers/registry";

const DAY = 24 * 3600 * 1000;

type Event = { actor: string; action: string; target?: string; detail?: string };

/** Polls an action's audit stream until an event matches (a KV list: a location sees new keys within its cache time). */
async function findEvent(action: string, match: (event: Event) => boolean): Promise<Event | undefined> {
  for (let attempt = 0; attempt < 40; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 250));
    const events = (await (await adminCall("GET", `/audit?action=${action}&limit=100`)).json()) as { events: Event[] };
    const found = events.events.find(match);
    if (found) return found;
  }
  return undefined;
}

describe("automatic lifecycle actions in the audit log", () => {
  it("one alarm round: history pruning and link collection as summaries, retention per tag; a freed blob with its digest and bytes", async () => {
    const { repo, token } = await repositoryFixture();
    await pushImage(repo, "v1", token);
    await pushImage(repo, "v1", token, { annotations: { n: "2" } });
    await pushImage(repo, "rc-1", token, { annotations: { n: "rc" } });
    const orphan = randomBytes(1234);
    const orphanDigest = await pushBlob(repo, orphan, token);
    expect((await adminCall("POST", `/repositories/${repo}/retention`, { pattern: "rc-*", keepNewest: 0 })).status).toBe(201);

    // Fifteen days on: every move is past the 14-day window, the orphan's link past the 24 h grace period.
    const now = Date.now() + 15 * DAY;
    const round = await ledgerOf(repo).runLifecycle(now);
    expect(round).toMatchObject({ historyManifests: 0, links: 1, linkBytes: orphan.length });
    // The rule's own alarm (set a second after the rule) may have removed rc-1 already, at the real time: then
    // its removal is one more move past the window; either way rc-1 was removed once, and audited.
    expect(round.retentionTags).toBeLessThanOrEqual(1);
    expect(round.historyMoves).toBe(4 - round.retentionTags);
    expect(await ledgerOf(repo).getTag("rc-1")).toBeNull();

    const history = await findEvent("tag-history.expire", (event) => event.target === repo);
    expect(history).toMatchObject({ actor: "retention", detail: `forgot ${round.historyMoves} tag moves older than 14 days and 0 manifests kept only for them` });
    const links = await findEvent("gc.links", (event) => event.target === repo);
    expect(links).toMatchObject({ actor: "gc", detail: `removed 1 unreferenced blob links (${orphan.length} bytes) past the 24 h grace period` });
    expect(await findEvent("tag.expire", (event) => event.target === `${repo}:rc-1`)).toMatchObject({ actor: "retention" });

    // The blob index frees the orphan once no repository has linked it for the grace period: one record.
    const freed = await blobIndexFor(env.BLOB_INDEX, orphanDigest).collectDue(now + DAY + 60_000);
    expect(freed).toEqual({ freed: true, bytes: orphan.length });
    const blob = await findEvent("gc.blob", (event) => event.target === orphanDigest);
    expect(blob).toMatchObject({ actor: "gc", detail: `bytes=${orphan.length}; no repository linked it for the grace period` });

    // A round with nothing to do records nothing.
    const quiet = await ledgerOf(repo).runLifecycle(now);
    expect(quiet).toMatchObject({ historyMoves: 0, links: 0, retentionTags: 0, untaggedManifests: 0 });
  });
});
