/** Helpers for end-to-end tests: real clients (skopeo, podman, buildah) against the running Worker. */
import { spawn, spawnSync } from "node:child_process";
import https from "node:https";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { inject } from "vitest";
import { httpsRequest as sharedRequest } from "../../bin/lib/https-request.mjs";

export const registryUrl = () => inject("registryUrl");

/**
 * No keep-alive: Node 20's default agent reuses idle sockets, and one the server already closed fails the
 * next request with "socket hang up". The certificate is the local self-signed one.
 */
const agent = new https.Agent({ keepAlive: false, rejectUnauthorized: false });
export const registryHost = () => new URL(inject("registryUrl")).host;
/**
 * Location B of the production-KV model: the same server as `localhost:<port>` (location A is 127.0.0.1).
 * With the model off (project e2e-plain) it is the same KV, seen through another name.
 */
export const registryUrlB = () => inject("registryUrlB");
export const registryHostB = () => new URL(inject("registryUrlB")).host;
/** The model's per-location cache TTL in ms, 0 when the model is off: the bound on staleness between locations. */
export const productionKvTtlMs = () => inject("productionKvTtlMs");
export const adminPassword = () => inject("adminPassword");

export function tempDir(prefix: string): string {
  return mkdtempSync(join(inject("workDir"), `${prefix}-`));
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Runs a client command; never through a shell, so credentials are not interpolated. */
export function run(command: string, args: string[], options: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): RunResult {
  const started = performance.now();
  const result = spawnSync(command, args, { encoding: "utf8", input: options.input, timeout: options.timeoutMs ?? 170_000, env: options.env });
  return {
    code: result.status ?? -1,
    stdout: result.stdout ?? "",
    stderr: result.stderr ?? String(result.error ?? ""),
    seconds: (performance.now() - started) / 1000,
  };
}

/** Like run, but without blocking: for clients that must run at the same time. */
export function runAsync(command: string, args: string[], options: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], timeout: options.timeoutMs ?? 170_000 });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.on("error", (error) => (stderr += String(error)));
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr, seconds: (performance.now() - started) / 1000 }));
    child.stdin.end(options.input);
  });
}

/** Like run, but throws with the client's own output when it fails. */
export function runOk(command: string, args: string[], options: { input?: string } = {}): RunResult {
  const result = run(command, args, options);
  if (result.code !== 0) throw new Error(`${command} ${args[0]} failed (${result.code}):\n${result.stderr}\n${result.stdout}`);
  return result;
}

/** A raw HTTPS request to the local registry (self-signed certificate); the body is returned as bytes. */
export function httpsRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return sharedRequest(url, { ...options, agent, rejectUnauthorized: false });
}

/** Calls the admin API over the local self-signed HTTPS. */
/** `server`: another Worker a test started itself (its URL and admin password); the shared one by default. */
export async function adminRequest(
  method: string,
  path: string,
  body?: unknown,
  server: { url: string; password: string } = { url: registryUrl(), password: adminPassword() },
): Promise<{ status: number; json: any }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const response = await sharedRequest(new URL(`/admin/v1${path}`, server.url), {
    method,
    agent,
    rejectUnauthorized: false,
    auth: `admin:${server.password}`,
    headers: payload ? { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(payload) } : {},
    ...(payload ? { body: payload } : {}),
  });
  return { status: response.status, json: response.body.length ? JSON.parse(response.body.toString("utf8")) : undefined };
}

export async function adminOk(method: string, path: string, body?: unknown): Promise<any> {
  const response = await adminRequest(method, path, body);
  if (response.status >= 300) throw new Error(`${method} ${path} → ${response.status}: ${JSON.stringify(response.json)}`);
  return response.json;
}

/** `user:secret` for skopeo's --creds / --src-creds / --dest-creds. */
export const creds = (account: { username: string; secret: string }) => `${account.username}:${account.secret}`;

/** Flags that point a client at the local HTTPS registry with its self-signed certificate. */
export const TLS = "--tls-verify=false";
