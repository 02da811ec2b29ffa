/**
 * Expiry of untagged manifests (issue 14 item 2, docs/lifecycle.md "Untagged manifests"): off by default; set
 * per repository or per namespace; the repository's alarm removes manifests no tag has pointed at for longer
 * than the retention, except those an index of the repository or a referrer relationship keeps, in bounded
 * batches, each audited. Times are passed to the ledger's lifecycle round (runLifecycle), never waited for.
 */
import { describe, expect, it } from "vitest";
import { OCI_INDEX, OCI_MANIFEST, adminCall, bearer, call, digestOf, ledgerOf, pushImage, repositoryFixture } from "../helpers/registry";

const HOUR = 3600 * 1000;

async function putManifest(repository: string, reference: string, token: string, document: Record<string, unknown>, mediaType = OCI_MANIFEST): Promise<string> {
  const bytes = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType, ...document }));
  const response = await call(`/v2/${repository}/manifests/${reference}`, { method: "PUT", headers: { ...bearer(token), "Content-Type": mediaType }, body: bytes });
  expect(response.status, await response.clone().text()).toBe(201);
  return digestOf(bytes);
}

async function present(repository: string, digest: string): Promise<boolean> {
  return ledgerOf(repository).hasManifest(digest);
}

async function audited(target: string): Promise<boolean> {
  for (let attempt = 0; attempt < 40; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 250));
    const events = (await (await adminCall("GET", "/audit?action=manifest.expire&limit=100")).json()) as { events: { actor: string; target: string }[] };
    if (events.events.some((event) => event.actor === "retention" && event.target === target)) return true;
  }
  return false;
}

describe("untagged manifests", () => {
  it("are kept by default", async () => {
    const { repo, token } = await repositoryFixture();
    const untagged = await pushImage(repo, "v2", token, { annotations: { n: "2" } });
    // A tag DELETE removes the tag only: the manifest is now untagged.
    expect((await call(`/v2/${repo}/manifests/v2`, { method: "DELETE", headers: bearer(token) })).status).toBe(202);
    const round = await ledgerOf(repo).runLifecycle(Date.now() + 365 * 24 * HOUR);
    expect(round.untaggedManifests).toBe(0);
    expect(await present(repo, untagged.digest)).toBe(true);
  });

  it("expire after the repository's retention unless an index or a referrer relationship keeps them; audited; restorable", async () => {
    const { repo, token } = await repositoryFixture();
    const tagged = await pushImage(repo, "v1", token);
    // Untagged by a tag delete (the tag history names it, so it stays restorable after expiry).
    const retagged = await pushImage(repo, "old", token, { annotations: { n: "old" } });
    expect((await call(`/v2/${repo}/manifests/old`, { method: "DELETE", headers: bearer(token) })).status).toBe(202);
    // Pushed by digest only, never tagged.
    const byDigest = await pushImage(repo, "tmp", token, { annotations: { n: "digest" } });
    expect((await call(`/v2/${repo}/manifests/tmp`, { method: "DELETE", headers: bearer(token) })).status).toBe(202);
    // An untagged index and its child (pushed by digest): the child is kept while the index exists.
    const child = await pushImage(repo, "child", token, { annotations: { n: "child" } });
    expect((await call(`/v2/${repo}/manifests/child`, { method: "DELETE", headers: bearer(token) })).status).toBe(202);
    const index = await putManifest(repo, "idx", token, { manifests: [{ mediaType: OCI_MANIFEST, digest: child.digest, size: child.bytes.length }] }, OCI_INDEX);
    expect((await call(`/v2/${repo}/manifests/idx`, { method: "DELETE", headers: bearer(token) })).status).toBe(202);
    // An untagged subject with an untagged referrer (a signature): each keeps the other.
    const subject = await pushImage(repo, "subj", token, { annotations: { n: "subject" } });
    expect((await call(`/v2/${repo}/manifests/subj`, { method: "DELETE", headers: bearer(token) })).status).toBe(202);
    const referrer = await pushImage(repo, "sig", token, {
      artifactType: "application/example.signature",
      subject: { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.bytes.length },
      annotations: { n: "sig" },
    });
    expect((await call(`/v2/${repo}/manifests/sig`, { method: "DELETE", headers: bearer(token) })).status).toBe(202);

    const ledger = ledgerOf(repo);
    // Every untagged manifest is still there (tag deletes remove tags, not manifests)…
    for (const digest of [retagged.digest, byDigest.digest, child.digest, index, subject.digest, referrer.digest]) expect(await present(repo, digest)).toBe(true);
    const set = await adminCall("PUT", `/repositories/${repo}/untagged-retention`, { expireAfterSeconds: 3600 });
    expect(set.status).toBe(200);
    expect(await set.json()).toMatchObject({ expireAfterSeconds: 3600, effectiveExpireAfterSeconds: 3600 });
    // …and within the retention none expires.
    expect((await ledger.runLifecycle(Date.now() + HOUR / 2)).untaggedManifests).toBe(0);
    const dry = await adminCall("POST", `/repositories/${repo}/untagged-retention/run`, { dryRun: true });
    expect(((await dry.json()) as { removed: unknown[] }).removed).toEqual([]);

    // Past it: the plain untagged manifests and the index go; the child (its index existed at the check), the
    // subject and its referrer stay; the tagged image stays.
    const first = await ledger.runLifecycle(Date.now() + 2 * HOUR);
    expect(first.untaggedManifests).toBe(3);
    for (const digest of [retagged.digest, byDigest.digest, index]) expect(await present(repo, digest)).toBe(false);
    for (const digest of [tagged.digest, child.digest, subject.digest, referrer.digest]) expect(await present(repo, digest)).toBe(true);
    // The child is released by its index's removal: the next round takes it; the referrer pair stays for good.
    expect((await ledger.runLifecycle(Date.now() + 2 * HOUR)).untaggedManifests).toBe(1);
    expect(await present(repo, child.digest)).toBe(false);
    expect((await ledger.runLifecycle(Date.now() + 48 * HOUR)).untaggedManifests).toBe(0);
    for (const digest of [tagged.digest, subject.digest, referrer.digest]) expect(await present(repo, digest)).toBe(true);

    for (const digest of [retagged.digest, byDigest.digest, index, child.digest]) expect(await audited(`${repo}@${digest}`)).toBe(true);
    // A manifest a kept history move names is restorable, like any deleted one.
    const restored = await adminCall("POST", `/repositories/${repo}/tags/old/restore`, { digest: retagged.digest });
    expect(restored.status, await restored.clone().text()).toBe(200);
    expect(await present(repo, retagged.digest)).toBe(true);
  });

  it("a namespace's retention applies to its repositories without one of their own, and a repository's overrides it", async () => {
    const { ns, repo, token } = await repositoryFixture("own");
    const own = `${ns}/own`;
    const a = await pushImage(repo, "t", token, { annotations: { n: "a" } });
    const b = await pushImage(own, "t", token, { annotations: { n: "b" } });
    for (const repository of [repo, own]) expect((await call(`/v2/${repository}/manifests/t`, { method: "DELETE", headers: bearer(token) })).status).toBe(202);
    expect((await adminCall("PUT", `/namespaces/${ns}/untagged-retention`, { expireAfterSeconds: 3600 })).status).toBe(200);
    expect((await adminCall("PUT", `/repositories/${own}/untagged-retention`, { expireAfterSeconds: 10 * 24 * 3600 })).status).toBe(200);
    expect(await (await adminCall("GET", `/repositories/${repo}/untagged-retention`)).json()).toMatchObject({
      expireAfterSeconds: null,
      namespaceExpireAfterSeconds: 3600,
      effectiveExpireAfterSeconds: 3600,
    });
    expect((await ledgerOf(repo).runLifecycle(Date.now() + 2 * HOUR)).untaggedManifests).toBe(1);
    expect((await ledgerOf(own).runLifecycle(Date.now() + 2 * HOUR)).untaggedManifests).toBe(0);
    expect(await present(repo, a.digest)).toBe(false);
    expect(await present(own, b.digest)).toBe(true);
    // Cleared: off again.
    expect((await adminCall("DELETE", `/repositories/${own}/untagged-retention`)).status).toBe(204);
    expect((await adminCall("DELETE", `/namespaces/${ns}/untagged-retention`)).status).toBe(204);
    expect((await ledgerOf(own).runLifecycle(Date.now() + 30 * 24 * HOUR)).untaggedManifests).toBe(0);
    expect((await adminCall("PUT", `/repositories/${own}/untagged-retention`, { expireAfterSeconds: 60 })).status).toBe(400);
  });
});
