/**
 * Notifications end to end (issue 16 "Done when"): podman pushes to the Worker under `wrangler dev`, whose
 * queue (miniflare's) delivers signed CloudEvents to receivers on 127.0.0.1 in this process
 * (test/support/webhook-receiver.mjs). Every delivery is verified with the recipe README "Notifications"
 * documents (examples/webhook-receiver.mjs). Retries are 1–2 s apart here (test/e2e/global-setup.ts).
 */
import { mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// Plain ESM: the documented verification recipe, and the receiver the workers projects use too.
import { verifyWebhook } from "../../examples/webhook-receiver.mjs";
import { startWebhookReceiver } from "../support/webhook-receiver.mjs";
import { writeOciLayout } from "../../scripts/lib/oci-image.mjs";
import { TLS, adminOk, adminPassword, adminRequest, creds, registryHost, registryUrl, runAsync, runOk } from "./support";

interface Received {
  headers: Record<string, string>;
  body: string;
  status: number;
}
interface Receiver {
  url: string;
  port: number;
  received: Map<string, Received[]>;
  close: () => Promise<void>;
}

const NS = "hooks";
let workDir: string;
let receiver: Receiver;
let pusher: { username: string; secret: string };
let localImage: string;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(read: () => T | Promise<T>, done: (value: T) => boolean, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await sleep(300);
  }
}

/** Each delivery verified with the documented recipe, as parsed CloudEvents with the receiver's answer. */
function verified(list: Received[], secret: string) {
  return list.map((delivery) => {
    expect(verifyWebhook(secret, delivery.headers, delivery.body), delivery.body).toBe(true);
    expect(delivery.headers["content-type"]).toBe("application/cloudevents+json");
    return { ...JSON.parse(delivery.body), answered: delivery.status };
  });
}

/** podman push of the local test image (never spawnSync: the receivers answer from this process). */
async function podmanPush(repository: string, tag: string): Promise<void> {
  const target = `${registryHost()}/${repository}:${tag}`;
  runOk("podman", ["tag", localImage, target]);
  const push = await runAsync("podman", ["push", TLS, "--creds", creds(pusher), target]);
  expect(push.code, push.stderr).toBe(0);
  runOk("podman", ["rmi", target]);
}

async function subscribe(url: string, extra: Record<string, unknown>): Promise<{ id: string; secret: string }> {
  return adminOk("POST", `/namespaces/${NS}/webhooks`, { url, ...extra });
}

async function deliveryLog(id: string): Promise<{ sequence: number; type: string; status: string; attempts: number; lastError: string | null }[]> {
  const response = await adminRequest("GET", `/namespaces/${NS}/webhooks/${id}/deliveries`);
  expect(response.status).toBe(200);
  return response.json.deliveries;
}

beforeAll(async () => {
  // Lowercase only: podman names an image pulled from `oci:<dir>` after the directory's path.
  workDir = join(tmpdir(), `edge-registry-hooks-${crypto.randomUUID()}`);
  mkdirSync(workDir);
  receiver = (await startWebhookReceiver()) as Receiver;
  await adminOk("POST", "/namespaces", { name: NS });
  const account = await adminOk("POST", "/service-accounts", { namespace: NS, name: "pusher", grants: [{ namespace: NS, role: "admin" }] });
  pusher = { username: account.username, secret: account.token };
  const source = join(workDir, "layout");
  await writeOciLayout(source, [{ seed: 61, layerSizes: [128 * 1024, 32 * 1024] }], "v1");
  // podman pull prints the stored image's id last.
  localImage = runOk("podman", ["pull", `oci:${source}:v1`]).stdout.trim().split("\n").at(-1)!;
});

afterAll(async () => {
  if (localImage) run("podman", ["rmi", "-f", localImage]);
  await receiver?.close();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

function run(command: string, args: string[]) {
  try {
    runOk(command, args);
  } catch {
    // best effort cleanup
  }
}

describe("notifications", () => {
  it("a podman push produces signed CloudEvents that the documented recipe verifies", async () => {
    const { secret } = await subscribe(`${receiver.url}/hooks/push`, { repository: `${NS}/app` });
    await podmanPush(`${NS}/app`, "v1");
    const list = await until(() => receiver.received.get("push") ?? [], (value) => value.length >= 2, 30_000);
    const events = verified(list, secret);
    expect(events.map((event) => [event.type, event.subject, event.sequence])).toEqual([
      ["io.edge-registry.manifest.pushed", "v1", "1"],
      ["io.edge-registry.tag.moved", "v1", "2"],
    ]);
    const pushed = events[0];
    expect(pushed).toMatchObject({ specversion: "1.0", source: `/v2/${NS}/app`, datacontenttype: "application/json" });
    expect(pushed.data).toMatchObject({ repository: `${NS}/app`, tag: "v1", actor: pusher.username });
    expect(pushed.data.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(pushed.data.mediaType).toMatch(/manifest/);
    expect(pushed.data.size).toBeGreaterThan(0);
    expect(Date.parse(pushed.time)).toBeGreaterThan(Date.now() - 120_000);
    // A tampered body or another secret does not verify.
    expect(verifyWebhook(secret, list[0]!.headers, list[0]!.body.replace("v1", "v2"))).toBe(false);
    expect(verifyWebhook(`whsec_${Buffer.alloc(32, 1).toString("base64")}`, list[0]!.headers, list[0]!.body)).toBe(false);
  });

  it("a receiver that is down for a while gets every event once it recovers, at least once and in order", async () => {
    // Refused connections first (nothing listens on the port), then two 503 answers, then 204.
    const down = (await startWebhookReceiver()) as Receiver;
    const port = down.port;
    await down.close();
    const { id, secret } = await subscribe(`http://127.0.0.1:${port}/hooks/recovering/fail-2`, { repository: `${NS}/flaky` });
    const started = Date.now();
    await podmanPush(`${NS}/flaky`, "v1");
    await podmanPush(`${NS}/flaky`, "v2");
    // Deletes the manifest (by the digest v1 names): both tags go, then the manifest.
    const removed = await runAsync("skopeo", ["delete", TLS, "--creds", creds(pusher), `docker://${registryHost()}/${NS}/flaky:v1`]);
    expect(removed.code, removed.stderr).toBe(0);
    await sleep(Math.max(0, 4000 - (Date.now() - started)));
    const recovered = (await startWebhookReceiver({ port })) as Receiver;
    try {
      const list = await until(
        () => recovered.received.get("recovering") ?? [],
        (value) => new Set(value.filter((delivery) => delivery.status === 204).map((delivery) => JSON.parse(delivery.body).sequence)).size >= 7,
      );
      const events = verified(list, secret);
      // At least once: every event, accepted (first) in sequence order.
      const order = events.filter((event) => event.answered === 204).map((event) => event.sequence);
      expect([...new Set(order)]).toEqual(["1", "2", "3", "4", "5", "6", "7"]);
      const firstAccepted = ["1", "2", "3", "4", "5", "6", "7"].map((sequence) => events.find((event) => event.sequence === sequence && event.answered === 204));
      expect(firstAccepted.map((event) => event?.type)).toEqual([
        "io.edge-registry.manifest.pushed",
        "io.edge-registry.tag.moved",
        "io.edge-registry.manifest.pushed",
        "io.edge-registry.tag.moved",
        "io.edge-registry.tag.deleted",
        "io.edge-registry.tag.deleted",
        "io.edge-registry.manifest.deleted",
      ]);
      // Nothing of a later event was even attempted before the one before it was accepted.
      for (const [index, event] of events.entries()) {
        const previous = Number(event.sequence) - 1;
        if (previous === 0) continue;
        const acceptedAt = events.findIndex((other) => Number(other.sequence) === previous && other.answered === 204);
        expect(acceptedAt, `event ${event.sequence} before ${previous} was delivered`).toBeGreaterThanOrEqual(0);
        expect(acceptedAt).toBeLessThan(index);
      }
      const log = await until(() => deliveryLog(id), (entries) => entries.length === 7 && entries.every((entry) => entry.status === "delivered"), 30_000);
      expect(log.every((entry) => entry.status === "delivered")).toBe(true);
      const first = log.find((entry) => entry.sequence === 1)!;
      expect(first.attempts).toBeGreaterThanOrEqual(3);
      expect(first.lastError).toMatch(/connection failed|HTTP 503/);
    } finally {
      await recovered.close();
    }
  });

  it("a dead receiver ends in the dead-letter queue, and the delivery log (CLI) says why", async () => {
    const cli = (...args: string[]) => runOk("node", ["bin/edge-registry.mjs", ...args, "--registry", registryUrl(), "--password-stdin"], { input: adminPassword() });
    const created = JSON.parse(
      cli("--json", "webhooks", "create", NS, `${receiver.url}/hooks/dead/dead`, "--event", "manifest.pushed", "--repository", `${NS}/dead`).stdout,
    ) as { id: string; secret: string; events: string[] };
    expect(created.events).toEqual(["manifest.pushed"]);
    expect(cli("webhooks", "list", NS).stdout).toContain(created.id);
    expect(cli("webhooks", "list", NS).stdout).not.toContain(created.secret);
    await podmanPush(`${NS}/dead`, "v1");
    const log = await until(() => deliveryLog(created.id), (entries) => entries.some((entry) => entry.status === "dead"), 120_000);
    const dead = log.find((entry) => entry.type === "io.edge-registry.manifest.pushed")!;
    expect(dead).toMatchObject({ sequence: 1, status: "dead" });
    expect(dead.lastError).toContain("dead-letter");
    expect(dead.lastError).toContain("HTTP 503");
    // The first attempt and max_retries (10, wrangler.toml) retries, each one signed.
    expect(dead.attempts).toBe(11);
    const attempts = verified(receiver.received.get("dead") ?? [], created.secret);
    expect(attempts).toHaveLength(11);
    expect(new Set(attempts.map((event) => event.id)).size).toBe(1);
    const printed = cli("webhooks", "deliveries", NS, created.id).stdout;
    expect(printed).toMatch(/dead/);
    expect(printed).toContain("dead-letter");
    expect(cli("webhooks", "delete", NS, created.id).stdout).toContain("deleted webhook");
  });
});
