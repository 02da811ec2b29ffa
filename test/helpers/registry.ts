/** Helpers for integration tests that call the Worker in workerd with real local KV and R2. */
import { sha256Hex } from "../../src/crypto/bytes";
import { env, exports } from "cloudflare:workers";
import { expect } from "vitest";
import { runDurableObjectAlarm } from "cloudflare:test";
import { IDENTITY_LEDGER_NAME } from "../../src/storage/identity-ledger";
import { ledgerFor } from "../../src/storage/repository-ledger";

export const ORIGIN = "https://registry.test";
export const SERVICE = "edge-registry";

export function call(path: string, init?: RequestInit): Promise<Response> {
  // Redirects are the response under test, never followed.
  return exports.default.fetch(new Request(`${ORIGIN}${path}`, { redirect: "manual", ...init }));
}

/**
 * Calls the Worker as served in another location: `callAt("b", …)` sends the request to `registry-b.test`,
 * which the production-KV test entry (test/support/production-kv-worker.ts) serves from location "b" of its
 * KV model; location "a" is ORIGIN. Under the plain `workers` project every location is the same KV.
 */
export function callAt(location: string, path: string, init?: RequestInit): Promise<Response> {
  const origin = location === "a" ? ORIGIN : `https://registry-${location}.test`;
  return exports.default.fetch(new Request(`${origin}${path}`, { redirect: "manual", ...init }));
}

export function basic(username: string, secret: string): string {
  const bytes = new TextEncoder().encode(`${username}:${secret}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}

export const adminAuthorization = () => basic("admin", env.BOOTSTRAP_ADMIN_PASSWORD);

let counter = 0;
/** A namespace name unique within the test file (storage is shared between tests of one file). */
export function uniqueName(prefix = "ns"): string {
  counter += 1;
  return `${prefix}${Date.now().toString(36)}${counter}`;
}

export async function adminCall(method: string, path: string, body?: unknown): Promise<Response> {
  return call(`/admin/v1${path}`, {
    method,
    headers: { Authorization: adminAuthorization(), "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function expectStatus(response: Response, status: number): Promise<Response> {
  if (response.status !== status) {
    throw new Error(`expected ${status}, got ${response.status}: ${await response.text()}`);
  }
  return response;
}

export async function createNamespace(name = uniqueName(), isPublic = false): Promise<{ name: string; organizationId: string }> {
  const response = await expectStatus(await adminCall("POST", "/namespaces", { name, public: isPublic }), 201);
  return response.json();
}

export type GrantInput = { namespace?: string; repository?: string; role: "read" | "write" | "admin" };

export async function createServiceAccount(namespace: string, name: string, grants: GrantInput[]): Promise<{ username: string; token: string }> {
  const response = await expectStatus(await adminCall("POST", "/service-accounts", { namespace, name, grants }), 201);
  return response.json();
}

export async function createUser(username: string, password: string, grants: GrantInput[] = [], registryAdmin = false) {
  await expectStatus(await adminCall("POST", "/users", { username, password, registryAdmin }), 201);
  for (const grant of grants) await expectStatus(await adminCall("PUT", `/users/${username}/grants`, grant), 200);
}

/** A token from the GET endpoint; `credentials` undefined means anonymous. */
export async function tokenFor(credentials: { username: string; secret: string } | undefined, scopes: string[]): Promise<string> {
  const query = new URLSearchParams({ service: SERVICE });
  for (const scope of scopes) query.append("scope", scope);
  const headers: Record<string, string> = credentials ? { Authorization: basic(credentials.username, credentials.secret) } : {};
  const response = await expectStatus(await call(`/token?${query}`, { headers }), 200);
  return ((await response.json()) as { token: string }).token;
}

export function bearer(token: string): Record<string, string> {
  return { Authorization: `Bearer ${token}` };
}

/** Asserts an OCI error response: status, JSON body with `errors[0].code`, and the API version header. */
export async function expectOciError(response: Response, status: number, code: string): Promise<{ code: string; message: string; detail: unknown }> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  expect(response.headers.get("Content-Type")).toMatch(/^application\/json/);
  const body = JSON.parse(text) as { errors: { code: string; message: string; detail: unknown }[] };
  expect(body.errors[0]?.code, text).toBe(code);
  return body.errors[0]!;
}

export { sha256Hex };

export async function digestOf(bytes: Uint8Array): Promise<string> {
  return `sha256:${await sha256Hex(bytes)}`;
}

export function randomBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let offset = 0; offset < length; offset += 65536) crypto.getRandomValues(bytes.subarray(offset, Math.min(length, offset + 65536)));
  return bytes;
}

/** Pushes a blob with a monolithic POST ?digest= and returns its digest. */
export async function pushBlob(repository: string, bytes: Uint8Array, token: string): Promise<string> {
  const digest = await digestOf(bytes);
  const response = await call(`/v2/${repository}/blobs/uploads/?digest=${digest}`, {
    method: "POST",
    headers: { ...bearer(token), "Content-Type": "application/octet-stream", "Content-Length": String(bytes.length) },
    body: bytes,
  });
  await expectStatus(response, 201);
  return digest;
}

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";

/** Pushes a config and one layer, then an image manifest under `reference`; returns the manifest and its digest. */
export async function pushImage(repository: string, reference: string, token: string, extra: Record<string, unknown> = {}) {
  const layer = randomBytes(1024);
  const config = new TextEncoder().encode(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }));
  const layerDigest = await pushBlob(repository, layer, token);
  const configDigest = await pushBlob(repository, config, token);
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.length },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: layerDigest, size: layer.length }],
    ...extra,
  };
  const bytes = new TextEncoder().encode(JSON.stringify(manifest));
  const response = await call(`/v2/${repository}/manifests/${reference}`, {
    method: "PUT",
    headers: { ...bearer(token), "Content-Type": OCI_MANIFEST },
    body: bytes,
  });
  await expectStatus(response, 201);
  return { manifest, bytes, digest: await digestOf(bytes), layerDigest, configDigest };
}

/** A token with every action on `repositories`, from the bootstrap admin. */
export function adminToken(...repositories: string[]): Promise<string> {
  return tokenFor(
    { username: "admin", secret: env.BOOTSTRAP_ADMIN_PASSWORD },
    repositories.map((repository) => `repository:${repository}:pull,push,delete`),
  );
}

/**
 * A fresh namespace with repository `<ns>/app` and an admin token for it and for `<ns>/<extra>` siblings.
 * Use as `beforeAll(async () => ({ ns, repo, token } = await repositoryFixture("other")));`.
 */
export async function repositoryFixture(...siblings: string[]): Promise<{ ns: string; repo: string; token: string }> {
  const ns = (await createNamespace()).name;
  const repo = `${ns}/app`;
  return { ns, repo, token: await adminToken(repo, ...siblings.map((sibling) => `${ns}/${sibling}`)) };
}

/** The repository ledger (Durable Object) of a repository, called through the real binding. */
export function ledgerOf(repository: string) {
  return ledgerFor(env.REPOSITORY_LEDGER, repository);
}

/** The identity ledger (Durable Object), called through the real binding. */
export const identityLedger = () => env.IDENTITY_LEDGER.get(env.IDENTITY_LEDGER.idFromName(IDENTITY_LEDGER_NAME));

/** Runs the identity ledger's alarm until `check` holds (publication waits out KV's one write per second per key). */
export async function untilIdentityPublished(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("not published in time");
    await runDurableObjectAlarm(identityLedger());
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Waits, when needed, until the rate limiters' current window has `needMs` left. Local rate limiting counts in
 * fixed 60 s windows that all reset together (platform.md §7), so a test that counts failures up to a limit
 * must not straddle a reset; production counts per location, approximately, and is not what such tests check.
 */
export async function withinOneRateWindow(needMs = 20_000): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < needMs) await new Promise((resolve) => setTimeout(resolve, left + 50));
}
