/**
 * Storage usage and namespace quotas (issue 14 item 6, docs/lifecycle.md "Quotas and usage"): exact figures
 * after pushes, deletes and collection; pushes refused before their bytes are stored; racing pushes that
 * together cannot pass a quota, proven by counting outcomes of concurrent requests (every interleaving the
 * holder's serialization allows must give the same count), never by timing.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { BlobUploads } from "../../src/storage/blob-uploads";
import type { NamespaceUsageReport } from "../../src/storage/repository-store";
import { adminCall, basic, bearer, call, createNamespace, createServiceAccount, digestOf, expectOciError, ledgerOf, pushBlob, pushImage, randomBytes, repositoryFixture, adminToken } from "../helpers/registry";

/** The usage report as the admin API answers it. */
type Usage = NamespaceUsageReport;

async function usage(namespace: string): Promise<Usage> {
  const response = await adminCall("GET", `/namespaces/${namespace}/usage`);
  expect(response.status, await response.clone().text()).toBe(200);
  return response.json();
}

async function setQuota(namespace: string, bytes: number): Promise<Usage> {
  const response = await adminCall("PUT", `/namespaces/${namespace}/quota`, { bytes });
  expect(response.status, await response.clone().text()).toBe(200);
  return response.json();
}

/** Every R2 object key under `blobs/` (to show a refused push stored nothing). */
async function blobObjects(): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await env.REGISTRY_BUCKET.list({ prefix: "blobs/", cursor });
    keys.push(...page.objects.map((object) => object.key));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return keys.sort();
}

function monolithic(repository: string, bytes: Uint8Array, digest: string, token: string): Promise<Response> {
  return call(`/v2/${repository}/blobs/uploads/?digest=${digest}`, {
    method: "POST",
    headers: { ...bearer(token), "Content-Type": "application/octet-stream", "Content-Length": String(bytes.length) },
    body: bytes,
  });
}

async function startSession(repository: string, token: string): Promise<string> {
  const response = await call(`/v2/${repository}/blobs/uploads/`, { method: "POST", headers: bearer(token) });
  expect(response.status).toBe(202);
  return response.headers.get("Location")!;
}

function patch(location: string, bytes: Uint8Array, token: string, declared = true): Promise<Response> {
  const body = declared ? bytes : new Response(bytes).body!.pipeThrough(new TransformStream());
  return call(location, {
    method: "PATCH",
    headers: { ...bearer(token), "Content-Type": "application/octet-stream", ...(declared ? { "Content-Length": String(bytes.length) } : {}) },
    body,
    ...(declared ? {} : { duplex: "half" }),
  } as RequestInit);
}

describe("usage figures", () => {
  it("are exact after pushes (deduplicated and logical), a manifest delete and a collection", async () => {
    const { ns, repo, token } = await repositoryFixture("second");
    const second = `${ns}/second`;
    const first = await pushImage(repo, "v1", token);
    const other = await pushImage(second, "v1", token);
    // pushImage's config is the same JSON everywhere: one digest, stored once, referenced by both images.
    expect(other.configDigest).toBe(first.configDigest);
    const configSize = first.manifest.config.size;
    const layer = first.manifest.layers[0]!.size;
    const otherLayer = other.manifest.layers[0]!.size;
    // The same image twice in one repository: logical bytes count each manifest's blobs as pushed.
    const retag = await call(`/v2/${repo}/manifests/v2`, { method: "PUT", headers: { ...bearer(token), "Content-Type": first.manifest.mediaType }, body: first.bytes });
    expect(retag.status).toBe(201);
    const withExtra = await pushImage(repo, "v3", token, { annotations: { build: "3" } });

    let report = await usage(ns);
    const thirdLayer = withExtra.manifest.layers[0]!.size;
    expect(report.usedBytes).toBe(configSize + layer + otherLayer + thirdLayer);
    expect(report.blobs).toBe(4);
    expect(report.quotaBytes).toBeNull();
    expect(report.reservedBytes).toBe(0);
    const byName = Object.fromEntries(report.repositories.map((row) => [row.name, row]));
    expect(byName[repo]).toMatchObject({ storedBytes: configSize + layer + thirdLayer, logicalBytes: 2 * configSize + layer + thirdLayer, manifests: 2 });
    expect(byName[second]).toMatchObject({ storedBytes: configSize + otherLayer, logicalBytes: configSize + otherLayer, manifests: 1 });
    expect(report.logicalBytes).toBe(3 * configSize + layer + otherLayer + thirdLayer);
    const repositoryReport = await (await adminCall("GET", `/repositories/${repo}/usage`)).json();
    expect(repositoryReport).toEqual({ name: repo, ...byName[repo] });

    // A manifest delete lowers the logical bytes at once; the stored bytes stay until collection.
    expect((await call(`/v2/${repo}/manifests/${withExtra.digest}`, { method: "DELETE", headers: bearer(token) })).status).toBe(202);
    report = await usage(ns);
    expect(report.usedBytes).toBe(configSize + layer + otherLayer + thirdLayer);
    expect(report.logicalBytes).toBe(2 * configSize + layer + otherLayer);
    // Once the restore window is given up and the links collected, the namespace no longer counts the layer.
    expect((await adminCall("DELETE", `/repositories/${repo}/tags/history`, {})).status).toBe(200);
    const gc = await adminCall("POST", "/gc", { repository: repo, gracePeriodSeconds: 0 });
    expect(((await gc.json()) as { links: number }).links).toBe(1);
    report = await usage(ns);
    expect(report.usedBytes).toBe(configSize + layer + otherLayer);
    expect(report.blobs).toBe(3);

    // Deleting a repository: its links go; the config, still linked by the other repository, is counted once.
    expect((await adminCall("DELETE", `/repositories/${repo}`)).status).toBe(200);
    await ledgerOf(repo).sendUnlinks();
    report = await usage(ns);
    expect(report.usedBytes).toBe(configSize + otherLayer);
    expect(report.repositories.map((row) => row.name)).toEqual([second]);
    expect(report.logicalBytes).toBe(configSize + otherLayer);
  });

  it("unknown namespaces and repositories are 404; quotas are set and cleared by administrators, audited", async () => {
    expect((await adminCall("GET", "/namespaces/nosuchns0/usage")).status).toBe(404);
    expect((await adminCall("GET", "/repositories/nosuchns0/app/usage")).status).toBe(404);
    const ns = (await createNamespace()).name;
    expect((await adminCall("PUT", `/namespaces/${ns}/quota`, { bytes: -1 })).status).toBe(400);
    expect((await adminCall("PUT", `/namespaces/${ns}/quota`, {})).status).toBe(400);
    expect((await setQuota(ns, 5000)).quotaBytes).toBe(5000);
    expect((await usage(ns)).quotaBytes).toBe(5000);
    expect((await adminCall("DELETE", `/namespaces/${ns}/quota`)).status).toBe(204);
    expect((await usage(ns)).quotaBytes).toBeNull();
    // A deleted namespace's quota goes with it: a namespace created later under the name has none.
    await setQuota(ns, 7000);
    expect((await adminCall("DELETE", `/namespaces/${ns}`)).status).toBe(204);
    await createNamespace(ns);
    expect((await usage(ns)).quotaBytes).toBeNull();
    let audited = false;
    for (let attempt = 0; attempt < 40 && !audited; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 250));
      const events = (await (await adminCall("GET", "/audit?action=quota.set&limit=50")).json()) as { events: { target: string; detail: string }[] };
      audited = events.events.some((event) => event.target === `namespace:${ns}` && event.detail === "bytes=5000");
    }
    expect(audited).toBe(true);
  });
});

describe("namespace administrators", () => {
  it("read their namespace's usage and quota (and its repositories') through the account API; others learn nothing", async () => {
    const { ns, repo, token } = await repositoryFixture();
    const other = (await createNamespace()).name;
    await pushBlob(repo, randomBytes(321), token);
    await setQuota(ns, 9999);
    const owner = await createServiceAccount(ns, "owner", [{ namespace: ns, role: "admin" }]);
    const writer = await createServiceAccount(ns, "writer", [{ namespace: ns, role: "write" }]);
    const get = (path: string, account: { username: string; token: string }) => call(path, { headers: { Authorization: basic(account.username, account.token) } });
    const own = await get(`/account/v1/namespaces/${ns}/usage`, owner);
    expect(own.status).toBe(200);
    expect(await own.json()).toMatchObject({ namespace: ns, quotaBytes: 9999, usedBytes: 321 });
    expect((await get(`/account/v1/repositories/${repo}/usage`, owner)).status).toBe(200);
    // Not an administrator of it, or another namespace: the same 404 as a namespace that does not exist.
    for (const [path, account] of [
      [`/account/v1/namespaces/${ns}/usage`, writer],
      [`/account/v1/repositories/${repo}/usage`, writer],
      [`/account/v1/namespaces/${other}/usage`, owner],
    ] as const) {
      expect((await get(path, account)).status).toBe(404);
    }
    // The quota itself stays with registry administrators.
    expect((await call(`/admin/v1/namespaces/${ns}/quota`, { method: "PUT", headers: { Authorization: basic(owner.username, owner.token), "Content-Type": "application/json" }, body: "{\"bytes\":1}" })).status).toBe(403);
  });
});

describe("a quota", () => {
  it("accepts a push that fits and refuses one that would pass it, before its bytes are stored", async () => {
    const { ns, repo, token } = await repositoryFixture();
    await setQuota(ns, 3000);
    const fits = randomBytes(2000);
    await pushBlob(repo, fits, token);
    expect((await usage(ns)).usedBytes).toBe(2000);

    const tooBig = randomBytes(1001);
    const before = await blobObjects();
    const refused = await expectOciError(await monolithic(repo, tooBig, await digestOf(tooBig), token), 403, "DENIED");
    expect(refused.message).toContain(`namespace ${ns} would exceed its storage quota: 2000 bytes used`);
    expect(refused.message).toContain("quota of 3000 bytes");
    expect(refused.detail).toMatchObject({ namespace: ns, usedBytes: 2000, quotaBytes: 3000, requestedBytes: 1001 });
    expect(await blobObjects()).toEqual(before);
    // What still fits is accepted; the namespace is then exactly full.
    await pushBlob(repo, randomBytes(1000), token);
    expect((await usage(ns))).toMatchObject({ usedBytes: 3000, reservedBytes: 0 });
  });

  it("chunked uploads: a PATCH that would pass it is refused (declared or not), the session stays where it was", async () => {
    const { ns, repo, token } = await repositoryFixture();
    await setQuota(ns, 4000);
    const location = await startSession(repo, token);
    const first = randomBytes(1500);
    expect((await patch(location, first, token)).status).toBe(202);
    const before = await blobObjects();
    await expectOciError(await patch(location, randomBytes(3000), token), 403, "DENIED");
    // Without a declared length the body is capped at the room left, and its first byte past it refused.
    const undeclared = await expectOciError(await patch(location, randomBytes(2600), token, false), 403, "DENIED");
    expect(undeclared.message).toContain("quota of 4000 bytes");
    expect(await blobObjects()).toEqual(before);
    const status = await call(location, { headers: bearer(token) });
    expect(status.headers.get("Range")).toBe("0-1499");
    // A chunk that fits, then the finish: the blob is linked and counted exactly.
    const second = randomBytes(2500);
    expect((await patch(location, second, token, false)).status).toBe(202);
    const all = new Uint8Array([...first, ...second]);
    const digest = await digestOf(all);
    const put = await call(`${location}?digest=${digest}`, { method: "PUT", headers: bearer(token) });
    expect(put.status, await put.clone().text()).toBe(201);
    expect(await usage(ns)).toMatchObject({ usedBytes: 4000, reservedBytes: 0 });
  });

  it("a refused or broken request keeps no room: its session's reservation shrinks back to the bytes it holds", async () => {
    const { ns, repo, token } = await repositoryFixture();
    await setQuota(ns, 4000);
    const location = await startSession(repo, token);
    expect((await patch(location, randomBytes(1500), token)).status).toBe(202);
    // Capped at the room left (2500), refused at its 2501st byte: none of it is kept.
    await expectOciError(await patch(location, randomBytes(2600), token, false), 403, "DENIED");
    expect(await usage(ns)).toMatchObject({ usedBytes: 0, reservedBytes: 1500 });
    // Another upload gets the room the refused request had been granted.
    const other = randomBytes(2500);
    const pushed = await monolithic(repo, other, await digestOf(other), token);
    expect(pushed.status, await pushed.clone().text()).toBe(201);
    // A second session whose first body breaks off: released entirely.
    const broken = await startSession(repo, token);
    const failing = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(randomBytes(100));
        controller.error(new Error("client went away"));
      },
    });
    await call(broken, { method: "PATCH", headers: { ...bearer(token), "Content-Type": "application/octet-stream" }, body: failing, duplex: "half" } as RequestInit).catch(() => undefined);
    for (let tries = 0; tries < 50 && (await usage(ns)).reservedBytes !== 1500; tries++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await usage(ns)).toMatchObject({ usedBytes: 2500, reservedBytes: 1500 });
    const last = randomBytes(10);
    const full = await expectOciError(await monolithic(repo, last, await digestOf(last), token), 403, "DENIED");
    expect(full.message).toContain("2500 bytes used and 1500 reserved by uploads in progress of a quota of 4000 bytes; this upload needs 10 bytes");
  });

  it("a blob the namespace holds already costs nothing: a full namespace accepts it in another repository, and a mount", async () => {
    const { ns, repo, token } = await repositoryFixture("copy", "mounted");
    await setQuota(ns, 1200);
    const bytes = randomBytes(1200);
    const digest = await pushBlob(repo, bytes, token);
    expect(await pushBlob(`${ns}/copy`, bytes, token)).toBe(digest);
    const mounted = await call(`/v2/${ns}/mounted/blobs/uploads/?mount=${digest}&from=${repo}`, { method: "POST", headers: bearer(token) });
    expect(mounted.status).toBe(201);
    expect(await usage(ns)).toMatchObject({ usedBytes: 1200, blobs: 1 });
    // Something new is refused.
    await expectOciError(await monolithic(repo, randomBytes(1), await digestOf(randomBytes(1)), token), 403, "DENIED");
  });

  it("a mount from another namespace counts the blob and is refused when it would pass the quota", async () => {
    const source = await repositoryFixture();
    const target = await repositoryFixture();
    const bytes = randomBytes(900);
    const digest = await pushBlob(source.repo, bytes, source.token);
    await setQuota(target.ns, 800);
    const token = await adminToken(source.repo, target.repo);
    const refused = await call(`/v2/${target.repo}/blobs/uploads/?mount=${digest}&from=${source.repo}`, { method: "POST", headers: bearer(token) });
    const error = await expectOciError(refused, 403, "DENIED");
    expect(error.message).toContain("quota of 800 bytes");
    expect(await ledgerOf(target.repo).getBlobLink(digest)).toBeNull();
    await setQuota(target.ns, 900);
    const accepted = await call(`/v2/${target.repo}/blobs/uploads/?mount=${digest}&from=${source.repo}`, { method: "POST", headers: bearer(token) });
    expect(accepted.status).toBe(201);
    expect(await usage(target.ns)).toMatchObject({ usedBytes: 900, blobs: 1 });
  });
});

describe("racing pushes", () => {
  it("a finish pinned onto a digest another repository links stays within the quota when that link is collected before it settles", async () => {
    const { ns, repo, token } = await repositoryFixture("late");
    const late = `${ns}/late`;
    await setQuota(ns, 1000);
    const bytes = randomBytes(1000);
    const digest = await pushBlob(repo, bytes, token);
    // The namespace is full; a second repository's upload of the same digest finishes for free (pinned)…
    const uploads = new BlobUploads(env.REGISTRY_BUCKET, env.REPOSITORY_LEDGER, env.BLOB_INDEX);
    const handle = await uploads.start(late);
    await uploads.receive(handle, new Response(bytes).body!, { maxBytes: 1000, declaredLength: 1000 }, digest);
    const state = handle.session.state;
    expect(await ledgerOf(late).closeUpload(state.id, handle.lease, { digest, state })).toBe("ok");
    // …then, before it settles, the first repository's link is collected and released.
    expect((await adminCall("POST", "/gc", { repository: repo, gracePeriodSeconds: 0 })).status).toBe(200);
    // The pinned reservation still counts the digest: nothing new fits meanwhile.
    expect(await usage(ns)).toMatchObject({ usedBytes: 0, reservedBytes: 1000 });
    await expectOciError(await monolithic(repo, randomBytes(10), await digestOf(randomBytes(10)), token), 403, "DENIED");
    await uploads.settle(late, state.id, digest, { key: state.blobKey, size: state.offset });
    expect(await usage(ns)).toMatchObject({ usedBytes: 1000, reservedBytes: 0, blobs: 1 });
  });

  it("concurrent single-request pushes: exactly as many as fit are accepted", async () => {
    const { ns, repo, token } = await repositoryFixture("other");
    await setQuota(ns, 3500);
    const blobs = await Promise.all(Array.from({ length: 8 }, async () => {
      const bytes = randomBytes(1000);
      return { bytes, digest: await digestOf(bytes) };
    }));
    const results = await Promise.all(blobs.map(({ bytes, digest }, index) => monolithic(index % 2 ? repo : `${ns}/other`, bytes, digest, token)));
    const statuses = results.map((response) => response.status).sort();
    expect(statuses.filter((status) => status === 201)).toHaveLength(3);
    expect(statuses.filter((status) => status === 403)).toHaveLength(5);
    expect(await usage(ns)).toMatchObject({ usedBytes: 3000, reservedBytes: 0, blobs: 3 });
  });

  it("concurrent chunked sessions: reservations made at each PATCH keep their total within the quota through the finish", async () => {
    const { ns, repo, token } = await repositoryFixture();
    await setQuota(ns, 5000);
    const sessions = await Promise.all(Array.from({ length: 6 }, () => startSession(repo, token)));
    const chunks = sessions.map(() => randomBytes(2000));
    const patched = await Promise.all(sessions.map((location, index) => patch(location, chunks[index]!, token)));
    const accepted = sessions.filter((_, index) => patched[index]!.status === 202);
    expect(accepted).toHaveLength(2);
    expect(patched.filter((response) => response.status === 403)).toHaveLength(4);
    expect((await usage(ns)).reservedBytes).toBe(4000);
    // Every session that got its reservation finishes; the sessions refused hold nothing.
    const finished = await Promise.all(
      sessions.map(async (location, index) => {
        if (patched[index]!.status !== 202) return 0;
        const put = await call(`${location}?digest=${await digestOf(chunks[index]!)}`, { method: "PUT", headers: bearer(token) });
        return put.status;
      }),
    );
    expect(finished.filter((status) => status === 201)).toHaveLength(2);
    expect(await usage(ns)).toMatchObject({ usedBytes: 4000, reservedBytes: 0 });
  });

  it("a digest pinned by a finish costs nothing more: a second push of it fits a namespace with room for one copy", async () => {
    const { ns, repo, token } = await repositoryFixture("twin");
    await setQuota(ns, 1000);
    const uploads = new BlobUploads(env.REGISTRY_BUCKET, env.REPOSITORY_LEDGER, env.BLOB_INDEX);
    const bytes = randomBytes(1000);
    const digest = await digestOf(bytes);
    // Both sessions receive undeclared bodies (no digest known): each may reserve only what is left.
    const handles = await Promise.all([uploads.start(repo), uploads.start(`${ns}/twin`)]);
    await uploads.receive(handles[0]!, new Response(bytes).body!, { maxBytes: 1000, declaredLength: 1000 });
    // The second session cannot reserve room for its copy while the first holds it unpinned…
    await expect(uploads.receive(handles[1]!, new Response(bytes).body!, { maxBytes: 1000, declaredLength: 1000 })).rejects.toThrow(/would exceed its storage quota/);
    // …but once the first finish pins the digest, a single-request push of the same digest costs nothing more.
    await uploads.finish(handles[0]!, digest);
    expect((await monolithic(`${ns}/twin`, bytes, digest, token)).status).toBe(201);
    expect(await usage(ns)).toMatchObject({ usedBytes: 1000, reservedBytes: 0, blobs: 1 });
  });
});
