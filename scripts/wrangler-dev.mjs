// Starts `wrangler dev` for this project on 127.0.0.1 over HTTPS, offline, behind the local stand-in for
// Cloudflare's edge (scripts/body-limit-front.mjs: request bodies over MAX_REQUEST_BODY_BYTES get 413 before
// the Worker runs), and waits until both answer. Clients use the front's port; wrangler dev listens on an
// internal loopback port of its own.
//
// HTTPS matters: skopeo, podman and buildah with --tls-verify=false try https:// first, and a plain-HTTP
// `wrangler dev` never answers a TLS ClientHello, so each client call would stall 10 s before falling back.
import { spawn } from "node:child_process";
import https from "node:https";
import net from "node:net";
import { createWriteStream, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { resolveRequestBodyLimit } from "./body-limit-front.mjs";

export const projectRoot = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Environment that keeps wrangler from reaching the network (telemetry, update checks, request.cf). */
export const OFFLINE_ENV = {
  WRANGLER_SEND_METRICS: "false",
  WRANGLER_HIDE_BANNER: "true",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
};

/**
 * `script` replaces the config's `main` (the production-KV test entry, test/support/production-kv-worker.ts,
 * with the real wrangler.toml's bindings, Durable Objects and migrations); `vars` are extra `--var`s.
 * Returns the front's `url`, the Worker's own `workerUrl` (behind no limit; for probes only) and the
 * `maxRequestBodyBytes` both enforce.
 * @param {{ port: number, persistTo: string, envFile: string, stdio?: "pipe" | "inherit", extraArgs?: string[], config?: string,
 *   logFile?: string, script?: string, vars?: Record<string, string> }} options
 */
export async function startWranglerDev({ port, persistTo, envFile, stdio = "pipe", extraArgs = [], config, logFile, script, vars = {} }) {
  // Another server already on the port would answer the readiness probe below in this session's place.
  await assertPortFree(port);
  // One limit for the front and the Worker: resolved as wrangler would, then handed to the Worker as a --var.
  const maxRequestBodyBytes = resolveRequestBodyLimit({ configPath: config ?? join(projectRoot, "wrangler.toml"), envFile, vars });
  const workerPort = await freePort();
  const args = [
    "wrangler", "dev",
    ...(script ? [script] : []),
    ...(config ? ["--config", config] : []),
    ...Object.entries({ ...vars, MAX_REQUEST_BODY_BYTES: String(maxRequestBodyBytes) }).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
    "--ip", "127.0.0.1",
    "--port", String(workerPort),
    "--local-protocol", "https",
    "--persist-to", persistTo,
    "--env-file", envFile,
    "--show-interactive-dev-session=false",
    ...extraArgs,
  ];
  const child = spawn("npx", args, {
    cwd: projectRoot,
    env: { ...process.env, ...OFFLINE_ENV, WRANGLER_REGISTRY_PATH: isolatedDevRegistry() },
    stdio: ["ignore", stdio, stdio],
    detached: true,
  });
  let output = "";
  const log = logFile ? createWriteStream(logFile, { flags: "a" }) : undefined;
  for (const stream of [child.stdout, child.stderr]) {
    stream?.on("data", (chunk) => {
      if (output.length < 1_000_000) output += chunk;
      log?.write(chunk);
    });
  }
  const workerUrl = `https://127.0.0.1:${workerPort}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}:\n${output}`);
    if ((await probeStatus(`${workerUrl}/v2/`)) === 401) break;
    if (Date.now() > deadline) {
      stopProcessGroup(child);
      throw new Error(`wrangler dev did not answer on ${workerUrl} within 60 s:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  // The front runs as a process of its own, so that it keeps serving while its starter blocks (spawnSync).
  const front = spawn(process.execPath, [join(projectRoot, "scripts", "body-limit-front.mjs"), String(port), String(workerPort), String(maxRequestBodyBytes)], {
    cwd: projectRoot,
    stdio: ["pipe", "pipe", "pipe"],
  });
  /** @type {(ready: boolean) => void} */
  let frontReady = () => {};
  /** @type {Promise<boolean>} */
  const listening = new Promise((resolve) => (frontReady = resolve));
  for (const stream of [front.stdout, front.stderr]) {
    stream.on("data", (chunk) => {
      const text = String(chunk);
      if (text.includes("listening")) frontReady(true);
      const lines = text.replace(/^listening\n/m, "");
      if (!lines) return;
      if (output.length < 1_000_000) output += lines;
      log?.write(lines);
      if (stdio === "inherit") process.stdout.write(lines);
    });
  }
  front.on("exit", () => frontReady(false));
  const stopFront = () => {
    if (front.exitCode === null) front.kill("SIGTERM");
  };
  const url = `https://127.0.0.1:${port}`;
  if (!(await listening) || (await probeStatus(`${url}/v2/`)) !== 401) {
    stopFront();
    stopProcessGroup(child);
    throw new Error(`the front on ${url} does not reach wrangler dev on ${workerUrl}:\n${output}`);
  }
  // wrangler dev ending (a crash, Ctrl+C) takes the front with it.
  child.on("exit", stopFront);
  const stop = () => {
    stopFront();
    stopProcessGroup(child);
  };
  /**
   * Stops the front and wrangler dev's whole process group (npx, wrangler, workerd) and resolves once none is
   * left: SIGTERM first, SIGKILL to whatever still runs after `graceMs`. Resolves with what had to be killed.
   */
  const stopAndWait = async (graceMs = 5000) => {
    stop();
    const gone = () => front.exitCode !== null || front.signalCode !== null;
    const deadline = Date.now() + graceMs;
    while ((!gone() || processGroupAlive(child)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    const killed = [];
    if (!gone()) {
      front.kill("SIGKILL");
      killed.push("body-limit front");
    }
    if (processGroupAlive(child)) {
      stopProcessGroup(child, "SIGKILL");
      killed.push("wrangler dev");
      while (processGroupAlive(child)) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return killed;
  };
  return { child, front, url, workerUrl, maxRequestBodyBytes, output: () => output, stop, stopAndWait };
}

/** A loopback port nothing listens on now (the kernel's choice). @returns {Promise<number>} */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = /** @type {import("node:net").AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
  });
}

/**
 * A dev registry of this session's own. wrangler's shared registry (~/.wrangler/registry) lets local
 * sessions call each other, and every session reloads its proxy whenever another one starts or stops:
 * requests other than GET/HEAD in flight at that moment fail with "503 Your worker restarted mid-request".
 * The registry needs no other session, so each one gets an empty directory.
 */
function isolatedDevRegistry() {
  return mkdtempSync(join(tmpdir(), "edge-registry-dev-registry-"));
}

/** Throws when something already listens on 127.0.0.1:port. @param {number} port @returns {Promise<void>} */
export function assertPortFree(port) {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", (error) => reject(new Error(`port ${port} on 127.0.0.1 is in use (${/** @type {NodeJS.ErrnoException} */ (error).code}): another server is running there`)));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve()));
  });
}

/**
 * The status of a GET against the local self-signed HTTPS server, or undefined when it does not answer.
 * @param {string} url @returns {Promise<number | undefined>}
 */
export function probeStatus(url) {
  return new Promise((resolve) => {
    const request = https.get(url, { rejectUnauthorized: false, timeout: 2000, agent: false }, (response) => {
      response.resume();
      resolve(response.statusCode);
    });
    request.on("error", () => resolve(undefined));
    request.on("timeout", () => request.destroy());
  });
}

/**
 * Signals every process of `child`'s group (it was spawned detached: its own group, with wrangler and workerd).
 * @param {import("node:child_process").ChildProcess} child @param {NodeJS.Signals} [signal]
 */
export function stopProcessGroup(child, signal = "SIGTERM") {
  if (child.pid === undefined) return; // never started: nothing to stop (and -0 would be our own group)
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** Whether any process of `child`'s process group still runs (signal 0 tests without signalling). @param {import("node:child_process").ChildProcess} child */
export function processGroupAlive(child) {
  if (child.pid === undefined) return false;
  try {
    process.kill(-child.pid, 0);
    return true;
  } catch {
    return false;
  }
}
