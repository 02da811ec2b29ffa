/**
 * Notifications (issue 16, README "Notifications"): webhook subscriptions per namespace through the admin
 * and account APIs, CloudEvents recorded by the repository ledger in commit order and delivered through the
 * real queue (miniflare) to the local receiver on 127.0.0.1 (test/support/webhook-receiver.mjs), signed as
 * Standard Webhooks define; retries, in-order holds and the dead-letter queue with retries of 1 s
 * (vitest.config.ts NOTIFICATION_TEST_VARS).
 */
import { describe, expect, it } from "vitest";
import { inject } from "vitest";
import { env } from "cloudflare:workers";
import { SealedBox } from "../../src/crypto/sealed-box";
import { generateWebhookSecret, signWebhook, verifyWebhook } from "../../src/crypto/webhook-signature";
import { adminCall, basic, bearer, call, createUser, ledgerOf, pushImage, repositoryFixture, uniqueName } from "../helpers/registry";

const receiverUrl = () => (inject as unknown as (key: string) => string)("webhookReceiverUrl");

interface Received {
  headers: Record<string, string>;
  body: string;
  status: number;
}

async function received(name: string): Promise<Received[]> {
  return (await (await fetch(`${receiverUrl()}/received/${name}`)).json()) as Received[];
}

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 40_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function subscribe(ns: string, hookPath: string, extra: Record<string, unknown> = {}): Promise<{ id: string; secret: string }> {
  const response = await adminCall("POST", `/namespaces/${ns}/webhooks`, { url: `${receiverUrl()}/hooks/${hookPath}`, ...extra });
  expect(response.status, await response.clone().text()).toBe(201);
  return response.json();
}

/** The received deliveries' events, each verified with the documented recipe (a failure throws). */
async function verifiedEvents(list: Received[], secret: string) {
  const events = [];
  for (const delivery of list) {
    const headers = { id: delivery.headers["webhook-id"]!, timestamp: delivery.headers["webhook-timestamp"]!, signature: delivery.headers["webhook-signature"]! };
    expect(await verifyWebhook(secret, headers, delivery.body), `signature of ${delivery.body}`).toBe(true);
    expect(delivery.headers["content-type"]).toBe("application/cloudevents+json");
    const event = JSON.parse(delivery.body);
    expect(event.id).toBe(headers.id);
    events.push({ ...event, status: delivery.status });
  }
  return events;
}

/** A call to the admin API with a web user's own credentials (a namespace administrator, or someone refused). */
const userCall = (user: { username: string; password: string }, method: string, path: string, body?: unknown) =>
  call(`/admin/v1${path}`, {
    method,
    headers: { Authorization: basic(user.username, user.password), ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

describe("webhook signatures", () => {
  it("match the Standard Webhooks test vector and are refused when anything changes", async () => {
    // standard-webhooks/standard-webhooks README "Signature scheme" example.
    const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const body = '{"test": 2432232314}';
    const signature = await signWebhook(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
    expect(signature).toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    const headers = { id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: "1614265330", signature };
    expect(await verifyWebhook(secret, headers, body, 1614265330)).toBe(true);
    expect(await verifyWebhook(secret, headers, body.replace("2", "3"), 1614265330)).toBe(false);
    expect(await verifyWebhook(secret, { ...headers, id: "msg_other" }, body, 1614265330)).toBe(false);
    expect(await verifyWebhook(generateWebhookSecret(), headers, body, 1614265330)).toBe(false);
    // Replay: a timestamp outside the tolerance (5 minutes) is refused.
    expect(await verifyWebhook(secret, headers, body, 1614265330 + 301)).toBe(false);
  });

  it("secrets are sealed under the pepper and bound to their subscription", async () => {
    const sealer = await SealedBox.create(env.SECRET_PEPPER, "webhook-secret");
    const sealed = await sealer.seal("whsec_abc", "ns/one");
    expect(sealed).not.toContain("abc");
    expect(await sealer.open(sealed, "ns/one")).toBe("whsec_abc");
    expect(await sealer.open(sealed, "ns/two")).toBeNull();
    const other = await SealedBox.create(`${env.SECRET_PEPPER}x`, "webhook-secret");
    expect(await other.open(sealed, "ns/one")).toBeNull();
  });
});

describe("webhook subscriptions API", () => {
  it("registry administrators create, list (never the secret), read and delete them; input is validated", async () => {
    const { ns } = await repositoryFixture();
    const created = await subscribe(ns, uniqueName("h"), { events: ["manifest.pushed", "tag.deleted"] });
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    const listed = await (await adminCall("GET", `/namespaces/${ns}/webhooks`)).json<{ webhooks: Record<string, unknown>[] }>();
    expect(listed.webhooks).toHaveLength(1);
    expect(listed.webhooks[0]).toMatchObject({ id: created.id, events: ["manifest.pushed", "tag.deleted"], repository: null, createdBy: "admin" });
    expect(JSON.stringify(listed)).not.toContain(created.secret);
    expect(JSON.stringify(listed)).not.toContain("sealed");
    const one = await (await adminCall("GET", `/namespaces/${ns}/webhooks/${created.id}`)).json();
    expect(JSON.stringify(one)).not.toContain(created.secret);

    const given = generateWebhookSecret();
    const withSecret = await (await adminCall("POST", `/namespaces/${ns}/webhooks`, { url: "https://hooks.example/x", secret: given, repository: `${ns}/app` })).json<{ secret: string }>();
    expect(withSecret.secret).toBe(given);

    for (const [body, why] of [
      [{ url: "http://hooks.example/x" }, "http off loopback"],
      [{ url: "ftp://127.0.0.1/x" }, "not http(s)"],
      [{ url: "https://user:pw@hooks.example/x" }, "credentials in the URL"],
      [{ url: "https://hooks.example/x", events: ["image.exploded"] }, "unknown event"],
      [{ url: "https://hooks.example/x", events: [] }, "no events"],
      [{ url: "https://hooks.example/x", secret: "short" }, "secret not whsec_"],
      [{ url: "https://hooks.example/x", repository: "other/app" }, "repository of another namespace"],
      [{ url: "https://hooks.example/x", extra: 1 }, "unknown field"],
    ] as const) {
      expect((await adminCall("POST", `/namespaces/${ns}/webhooks`, body)).status, why).toBe(400);
    }
    expect((await adminCall("POST", `/namespaces/${uniqueName("missing")}/webhooks`, { url: "https://hooks.example/x" })).status).toBe(404);

    expect((await adminCall("DELETE", `/namespaces/${ns}/webhooks/${created.id}`)).status).toBe(204);
    expect((await adminCall("DELETE", `/namespaces/${ns}/webhooks/${created.id}`)).status).toBe(404);
    expect((await adminCall("GET", `/namespaces/${ns}/webhooks/${created.id}/deliveries`)).status).toBe(404);
  });

  it("go with their namespace: a namespace created again under the name has none", async () => {
    const { ns } = await repositoryFixture();
    await subscribe(ns, uniqueName("gone"));
    expect((await adminCall("DELETE", `/namespaces/${ns}?force=true`)).status).toBe(204);
    expect((await adminCall("POST", "/namespaces", { name: ns })).status).toBe(201);
    expect((await (await adminCall("GET", `/namespaces/${ns}/webhooks`)).json<{ webhooks: unknown[] }>()).webhooks).toEqual([]);
  });

  it("are bounded per namespace", async () => {
    const { ns } = await repositoryFixture();
    for (let i = 0; i < 24; i++) expect((await adminCall("POST", `/namespaces/${ns}/webhooks`, { url: `https://hooks.example/${i}` })).status).toBe(201);
    expect((await adminCall("POST", `/namespaces/${ns}/webhooks`, { url: "https://hooks.example/24" })).status).toBe(201);
    expect((await adminCall("POST", `/namespaces/${ns}/webhooks`, { url: "https://hooks.example/25" })).status).toBe(409);
  });

  it("administrators of the namespace manage them through the admin API; anyone else gets 403", async () => {
    const { ns } = await repositoryFixture();
    const other = (await repositoryFixture()).ns;
    const password = "webhook-admin-password-1234";
    const admin = { username: uniqueName("nsadmin"), password };
    const writer = { username: uniqueName("writer"), password };
    const outsider = { username: uniqueName("outsider"), password };
    await createUser(admin.username, password, [{ namespace: ns, role: "admin" }]);
    await createUser(writer.username, password, [{ namespace: ns, role: "write" }]);
    await createUser(outsider.username, password, [{ namespace: other, role: "admin" }]);

    const created = await userCall(admin, "POST", `/namespaces/${ns}/webhooks`, { url: "https://hooks.example/ns-admin" });
    expect(created.status, await created.clone().text()).toBe(201);
    const { id } = await created.json<{ id: string }>();
    const listed = await (await userCall(admin, "GET", `/namespaces/${ns}/webhooks`)).json<{ webhooks: { id: string; createdBy: string }[] }>();
    expect(listed.webhooks).toEqual([expect.objectContaining({ id, createdBy: admin.username })]);
    expect((await userCall(admin, "GET", `/namespaces/${ns}/webhooks/${id}/deliveries`)).status).toBe(200);

    for (const user of [writer, outsider]) {
      expect((await userCall(user, "GET", `/namespaces/${ns}/webhooks`)).status).toBe(403);
      expect((await userCall(user, "POST", `/namespaces/${ns}/webhooks`, { url: "https://hooks.example/no" })).status).toBe(403);
      expect((await userCall(user, "DELETE", `/namespaces/${ns}/webhooks/${id}`)).status).toBe(403);
      expect((await userCall(user, "GET", `/namespaces/${ns}/webhooks/${id}/deliveries`)).status).toBe(403);
    }
    // The account API administers nothing (admin/route-roles.ts: every administrative route is under /admin/v1).
    expect((await call(`/account/v1/namespaces/${ns}/webhooks`, { headers: { Authorization: basic(admin.username, password) } })).status).toBe(404);
    expect((await userCall(admin, "DELETE", `/namespaces/${ns}/webhooks/${id}`)).status).toBe(204);
  });
});

describe("events", () => {
  it("leave the ledger in commit order, signed CloudEvents with repository, tag, digest, media type, size, actor", async () => {
    const { ns, repo, token } = await repositoryFixture();
    const hook = uniqueName("order");
    const { secret } = await subscribe(ns, hook);
    const first = await pushImage(repo, "v1", token);
    const second = await pushImage(repo, "v2", token, { annotations: { n: "2" } });
    expect((await call(`/v2/${repo}/manifests/v1`, { method: "DELETE", headers: bearer(token) })).status).toBe(202);
    expect((await call(`/v2/${repo}/manifests/${second.digest}`, { method: "DELETE", headers: bearer(token) })).status).toBe(202);

    const list = await until(() => received(hook), (value) => value.length >= 7);
    const events = await verifiedEvents(list, secret);
    expect(events.map((event) => [event.type, event.subject, event.sequence])).toEqual([
      ["io.edge-registry.manifest.pushed", "v1", "1"],
      ["io.edge-registry.tag.moved", "v1", "2"],
      ["io.edge-registry.manifest.pushed", "v2", "3"],
      ["io.edge-registry.tag.moved", "v2", "4"],
      ["io.edge-registry.tag.deleted", "v1", "5"],
      ["io.edge-registry.tag.deleted", "v2", "6"],
      ["io.edge-registry.manifest.deleted", second.digest, "7"],
    ]);
    expect(events[0]).toMatchObject({
      specversion: "1.0",
      source: `/v2/${repo}`,
      datacontenttype: "application/json",
      data: { repository: repo, tag: "v1", digest: first.digest, mediaType: "application/vnd.oci.image.manifest.v1+json", size: first.bytes.length, actor: "admin" },
    });
    expect(events[4].data).toMatchObject({ repository: repo, tag: "v1", previousDigest: first.digest, actor: "admin" });
    expect(events[6].data).toMatchObject({ digest: second.digest, mediaType: "application/vnd.oci.image.manifest.v1+json", size: second.bytes.length });
    expect(new Set(events.map((event) => event.id)).size).toBe(7);

    const log = await (await adminCall("GET", `/namespaces/${ns}/webhooks`)).json<{ webhooks: { id: string }[] }>();
    const deliveries = await (await adminCall("GET", `/namespaces/${ns}/webhooks/${log.webhooks[0]!.id}/deliveries`)).json<{ deliveries: { status: string; attempts: number }[] }>();
    expect(deliveries.deliveries).toHaveLength(7);
    expect(deliveries.deliveries.every((entry) => entry.status === "delivered" && entry.attempts >= 1)).toBe(true);
    expect(JSON.stringify(deliveries)).not.toContain(secret);
  });

  it("of concurrent pushes arrive in the order the ledger committed them, each once, numbered without gaps", async () => {
    const { ns, repo, token } = await repositoryFixture();
    const hook = uniqueName("concurrent");
    const { secret } = await subscribe(ns, hook);
    const image = await pushImage(repo, "base", token);
    // Eight clients tag the same manifest at once: the ledger serializes them in some order; that order is kept.
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        call(`/v2/${repo}/manifests/t${i}`, { method: "PUT", headers: { ...bearer(token), "Content-Type": "application/vnd.oci.image.manifest.v1+json" }, body: image.bytes }).then(
          (response) => expect(response.status).toBe(201),
        ),
      ),
    );
    const events = await verifiedEvents(await until(() => received(hook), (value) => value.length >= 18), secret);
    expect(events.map((event) => Number(event.sequence))).toEqual(Array.from({ length: 18 }, (_, i) => i + 1));
    // Each push's manifest.pushed comes right before its tag.moved (one transaction records both).
    for (let i = 0; i < 18; i += 2) {
      expect(events[i].type).toBe("io.edge-registry.manifest.pushed");
      expect(events[i + 1]).toMatchObject({ type: "io.edge-registry.tag.moved", subject: events[i].subject });
    }
  });

  it("go only to subscriptions of their repository and event types; repository deletion is one event", async () => {
    const { ns, repo, token } = await repositoryFixture("other");
    const narrow = uniqueName("narrow");
    const { secret } = await subscribe(ns, narrow, { repository: repo, events: ["tag.moved", "repository.deleted"] });
    await pushImage(`${ns}/other`, "x", token);
    await pushImage(repo, "v1", token);
    expect((await adminCall("DELETE", `/repositories/${repo}`)).status).toBe(200);
    const list = await until(() => received(narrow), (value) => value.length >= 2);
    const events = await verifiedEvents(list, secret);
    expect(events.map((event) => [event.type, event.sequence, event.data.repository])).toEqual([
      ["io.edge-registry.tag.moved", "2", repo],
      ["io.edge-registry.repository.deleted", "3", repo],
    ]);
  });

  it("tell of the lifecycle's removals: retention (tag.expired) and untagged expiry (manifest.expired), actor retention", async () => {
    const { ns, repo, token } = await repositoryFixture();
    const hook = uniqueName("lifecycle");
    const { secret } = await subscribe(ns, hook, { events: ["tag.expired", "manifest.expired"] });
    expect((await adminCall("POST", `/repositories/${repo}/retention`, { pattern: "build-*", keepNewest: 1 })).status).toBe(201);
    expect((await adminCall("PUT", `/repositories/${repo}/untagged-retention`, { expireAfterSeconds: 3600 })).status).toBe(200);
    const old = await pushImage(repo, "build-1", token);
    await pushImage(repo, "build-2", token, { annotations: { n: "2" } });
    // Retention removes build-1 (the alarm may have already); two hours later its manifest, untagged, expires.
    await ledgerOf(repo).runLifecycle(Date.now());
    await ledgerOf(repo).runLifecycle(Date.now() + 2 * 3600 * 1000);
    const events = await verifiedEvents(await until(() => received(hook), (value) => value.length >= 2), secret);
    expect(events.map((event) => [event.type, event.subject, event.data.actor])).toEqual([
      ["io.edge-registry.tag.expired", "build-1", "retention"],
      ["io.edge-registry.manifest.expired", old.digest, "retention"],
    ]);
    expect(events[0].data).toMatchObject({ repository: repo, previousDigest: old.digest });
    expect(events[1].data).toMatchObject({ repository: repo, digest: old.digest, size: old.bytes.length });
    expect(Number(events[1].sequence)).toBeGreaterThan(Number(events[0].sequence));
  });

  it("reach a receiver that was down once it recovers, in order, with the failed attempts in the delivery log", async () => {
    const { ns, repo, token } = await repositoryFixture();
    const hook = uniqueName("flaky");
    const { id, secret } = await subscribe(ns, `${hook}/fail-3`);
    await pushImage(repo, "v1", token);
    expect((await call(`/v2/${repo}/manifests/v1`, { method: "DELETE", headers: bearer(token) })).status).toBe(202);
    const list = await until(() => received(hook), (value) => value.filter((delivery) => delivery.status === 204).length >= 3);
    const events = await verifiedEvents(list, secret);
    const delivered = events.filter((event) => event.status === 204).map((event) => event.sequence);
    expect(delivered).toEqual(["1", "2", "3"]);
    // In order: nothing of a later event reached the receiver before the earlier one was delivered.
    const firstAccepted = (sequence: string) => events.findIndex((event) => event.sequence === sequence && event.status === 204);
    for (const event of events) {
      const previous = String(Number(event.sequence) - 1);
      if (previous !== "0") expect(events.indexOf(event)).toBeGreaterThan(firstAccepted(previous));
    }
    const log = await until(
      async () => (await (await adminCall("GET", `/namespaces/${ns}/webhooks/${id}/deliveries`)).json<{ deliveries: { sequence: number; status: string; attempts: number; lastError: string | null }[] }>()).deliveries,
      (entries) => entries.length === 3 && entries.every((entry) => entry.status === "delivered"),
    );
    const firstEntry = log.find((entry) => entry.sequence === 1)!;
    expect(firstEntry.attempts).toBe(4);
    expect(firstEntry.lastError).toContain("HTTP 503");
  });

  it("to a receiver that does not answer in time are retried (WEBHOOK_TIMEOUT_MS bounds each attempt)", async () => {
    const { ns, repo, token } = await repositoryFixture();
    const hook = uniqueName("slow");
    const { id } = await subscribe(ns, `${hook}/slow-6000`, { events: ["manifest.pushed"] });
    await pushImage(repo, "v1", token);
    const log = await until(
      async () => (await (await adminCall("GET", `/namespaces/${ns}/webhooks/${id}/deliveries`)).json<{ deliveries: { status: string; lastError: string | null }[] }>()).deliveries,
      (entries) => entries.some((entry) => entry.lastError !== null),
    );
    expect(log[0]).toMatchObject({ status: "retrying", lastError: "no answer within 3000 ms" });
    expect((await adminCall("DELETE", `/namespaces/${ns}/webhooks/${id}`)).status).toBe(204);
  });

  it("to a dead receiver end in the dead-letter queue, the delivery log saying why", async () => {
    const { ns, repo, token } = await repositoryFixture();
    const hook = uniqueName("dead");
    const { id } = await subscribe(ns, `${hook}/dead`, { events: ["manifest.pushed"] });
    // A tagless push: one event (manifest.pushed).
    const image = await pushImage(repo, "v1", token);
    expect(image.digest).toMatch(/^sha256:/);
    const log = await until(
      async () => (await (await adminCall("GET", `/namespaces/${ns}/webhooks/${id}/deliveries`)).json<{ deliveries: { type: string; status: string; attempts: number; lastError: string }[] }>()).deliveries,
      (entries) => entries.some((entry) => entry.status === "dead"),
      55_000,
    );
    const dead = log.find((entry) => entry.type === "io.edge-registry.manifest.pushed")!;
    expect(dead.status).toBe("dead");
    expect(dead.lastError).toContain("dead-letter");
    expect(dead.lastError).toContain("HTTP 503");
    // max_retries = 10 (wrangler.toml): the first attempt and ten retries.
    expect(dead.attempts).toBe(11);
    expect((await received(hook)).length).toBe(11);
  });
});
