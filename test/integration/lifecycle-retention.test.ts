/**
 * Retention (issue 14, docs/lifecycle.md "Retention"): keep the newest N tags matching a pattern, expire tags
 * after a duration, and Quay's `quay.expires-after` label. Each removal is a recorded tag move (actor
 * `retention`), audited, and never touches an immutable tag. Time is passed to the ledger, never waited for.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { OCI_MANIFEST, adminCall, bearer, call, digestOf, ledgerOf, pushBlob, pushImage, randomBytes, repositoryFixture } from "../helpers/registry";

const DAY = 24 * 3600 * 1000;
const tick = () => new Promise((resolve) => setTimeout(resolve, 3));

async function tagsOf(repo: string): Promise<string[]> {
  return (await ledgerOf(repo).listTags("", 1000)).sort();
}

/** Pushes one image under several tags, in order, each move a little later than the one before. */
async function tagInOrder(repo: string, token: string, tags: string[]): Promise<void> {
  const image = await pushImage(repo, tags[0]!, token);
  for (const tag of tags.slice(1)) {
    await tick();
    const response = await call(`/v2/${repo}/manifests/${tag}`, { method: "PUT", headers: { ...bearer(token), "Content-Type": OCI_MANIFEST }, body: image.bytes });
    expect(response.status).toBe(201);
  }
}

/** Pushes an image whose config carries `labels`, under `tag`. */
async function pushLabelled(repo: string, token: string, tag: string, labels: Record<string, string>): Promise<string> {
  const config = new TextEncoder().encode(JSON.stringify({ architecture: "amd64", os: "linux", config: { Labels: labels }, rootfs: { type: "layers", diff_ids: [] } }));
  const layer = randomBytes(300);
  const bytes = new TextEncoder().encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: await pushBlob(repo, config, token), size: config.length },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: await pushBlob(repo, layer, token), size: layer.length }],
    }),
  );
  const response = await call(`/v2/${repo}/manifests/${tag}`, { method: "PUT", headers: { ...bearer(token), "Content-Type": OCI_MANIFEST }, body: bytes });
  expect(response.status).toBe(201);
  return digestOf(bytes);
}

describe("retention rules", () => {
  it("keep newest N: exactly the older matching tags go, recorded in the history and the audit log; a dry run only lists them", async () => {
    const { repo, token } = await repositoryFixture();
    await tagInOrder(repo, token, ["build-1", "build-2", "latest", "build-3", "build-4"]);
    const rule = await adminCall("POST", `/repositories/${repo}/retention`, { pattern: "build-*", keepNewest: 2 });
    expect(rule.status).toBe(201);
    expect((await adminCall("POST", `/repositories/${repo}/retention`, { pattern: "x" })).status).toBe(400);
    expect((await adminCall("POST", `/repositories/${repo}/retention`, { pattern: "x", expireAfterSeconds: 1 })).status).toBe(400);

    const dry = await adminCall("POST", `/repositories/${repo}/retention/run`, { dryRun: true });
    expect(((await dry.json()) as { removed: { tag: string }[] }).removed.map((removal) => removal.tag).sort()).toEqual(["build-1", "build-2"]);
    expect(await tagsOf(repo)).toEqual(["build-1", "build-2", "build-3", "build-4", "latest"]);

    const run = await adminCall("POST", `/repositories/${repo}/retention/run`, {});
    const removed = ((await run.json()) as { removed: { tag: string; reason: string }[] }).removed;
    expect(removed.map((removal) => removal.tag).sort()).toEqual(["build-1", "build-2"]);
    expect(removed[0]!.reason).toBe("rule build-*: keep newest 2");
    expect(await tagsOf(repo)).toEqual(["build-3", "build-4", "latest"]);
    const history = await ledgerOf(repo).tagHistory("build-1");
    expect(history.at(-1)).toMatchObject({ to: null, actor: "retention" });
    // A second run has nothing to do.
    expect(await ledgerOf(repo).applyRetention()).toEqual([]);
    let audited = 0;
    for (let attempt = 0; attempt < 40 && audited < 2; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 250));
      const events = (await (await adminCall("GET", "/audit?action=tag.expire&limit=50")).json()) as { events: { actor: string; target: string }[] };
      audited = events.events.filter((event) => event.actor === "retention" && event.target.startsWith(`${repo}:build-`)).length;
    }
    expect(audited).toBe(2);
  });

  it("expire after a duration, by each tag's last move; immutable tags are never removed", async () => {
    const { repo, token } = await repositoryFixture();
    await tagInOrder(repo, token, ["tmp-a", "tmp-b", "keep"]);
    expect((await adminCall("POST", `/repositories/${repo}/immutable-tags`, { pattern: "tmp-b" })).status).toBe(201);
    expect((await adminCall("POST", `/repositories/${repo}/retention`, { pattern: "tmp-*", expireAfterSeconds: 3600 })).status).toBe(201);
    const ledger = ledgerOf(repo);
    expect(await ledger.applyRetention({ now: Date.now() + 30 * 60_000 })).toEqual([]);
    const removed = await ledger.applyRetention({ now: Date.now() + 2 * 3600_000 });
    expect(removed.map((removal) => removal.tag)).toEqual(["tmp-a"]);
    expect(await tagsOf(repo)).toEqual(["keep", "tmp-b"]);
    const listed = (await (await adminCall("GET", `/repositories/${repo}/retention`)).json()) as { rules: { pattern: string; expireAfterSeconds: number }[] };
    expect(listed.rules).toEqual([expect.objectContaining({ pattern: "tmp-*", expireAfterSeconds: 3600, keepNewest: null })]);
    expect((await adminCall("DELETE", `/repositories/${repo}/retention`, { pattern: "tmp-*" })).status).toBe(204);
    expect((await adminCall("DELETE", `/repositories/${repo}/retention`, { pattern: "tmp-*" })).status).toBe(404);
  });

  it("the ledger's alarm applies a rule by itself", async () => {
    const { repo, token } = await repositoryFixture();
    await tagInOrder(repo, token, ["x-1", "x-2"]);
    expect((await adminCall("POST", `/repositories/${repo}/retention`, { pattern: "x-*", keepNewest: 1 })).status).toBe(201);
    for (let attempt = 0; attempt < 20 && (await tagsOf(repo)).length > 1; attempt++) {
      await runDurableObjectAlarm(ledgerOf(repo));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await tagsOf(repo)).toEqual(["x-2"]);
  });
});

describe("the quay.expires-after label", () => {
  it("expires the tag after the label's duration; a push of an image without it clears the expiry", async () => {
    const { repo, token } = await repositoryFixture();
    const labelled = await pushLabelled(repo, token, "short", { "quay.expires-after": "2w" });
    await pushLabelled(repo, token, "odd", { "quay.expires-after": "soon" });
    const ledger = ledgerOf(repo);
    expect(await ledger.applyRetention({ now: Date.now() + 13 * DAY })).toEqual([]);
    expect(await ledger.applyRetention({ now: Date.now() + 15 * DAY, dryRun: true })).toEqual([
      { tag: "short", digest: labelled, reason: "quay.expires-after label" },
    ]);
    // The same tag pushed again with an unlabelled image: no expiry any more.
    await pushLabelled(repo, token, "short", { other: "x" });
    expect(await ledger.applyRetention({ now: Date.now() + 15 * DAY })).toEqual([]);
    const again = await pushLabelled(repo, token, "gone", { "quay.expires-after": "1d" });
    expect(await ledger.applyRetention({ now: Date.now() + 2 * DAY })).toEqual([{ tag: "gone", digest: again, reason: "quay.expires-after label" }]);
    expect(await tagsOf(repo)).toEqual(["odd", "short"]);
    expect((await ledger.tagHistory("gone")).at(-1)).toMatchObject({ from: again, to: null, actor: "retention" });
  });
});
