/**
 * Starts the Worker with `wrangler dev` (real workerd, local KV and R2, HTTPS on 127.0.0.1) in a fresh
 * state directory for the end-to-end suite, and hands its URL and admin password to the tests.
 *
 * A project that provides `productionKvTtlMs` > 0 (vitest.config.ts: `e2e`) gets the production-KV model:
 * wrangler.toml as it is (bindings, Durable Objects, migrations), with `main` replaced by the test entry
 * test/support/production-kv-worker.ts. It serves `127.0.0.1:<port>` as location A and `localhost:<port>`
 * as location B (wrangler dev passes the request's Host through; both names are loopback).
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { ensureSecretsFile } from "../../scripts/local-secrets.mjs";
import { startWranglerDev } from "../../scripts/wrangler-dev.mjs";

declare module "vitest" {
  export interface ProvidedContext {
    registryUrl: string;
    adminPassword: string;
    workDir: string;
    /** Everything the Worker and wrangler printed, for the log-hygiene test. */
    serverLog: string;
    /** The same server reached as `localhost`: location B when the production-KV model is on. */
    registryUrlB: string;
    /** How long a location of the production-KV model caches a read; 0 when the model is off. */
    productionKvTtlMs: number;
  }
}

const PRODUCTION_KV_ENTRY = "test/support/production-kv-worker.ts";
const KEPT_LOGS = join(__dirname, "..", "..", ".e2e");

export default async function setup(project: TestProject) {
  const workDir = mkdtempSync(join(tmpdir(), "edge-registry-e2e-"));
  const secrets = (await ensureSecretsFile(join(workDir, "dev.vars"))) as Record<string, string>;
  const port = 20000 + Math.floor(Math.random() * 20000);
  const serverLog = join(workDir, "server.log");
  const productionKvTtlMs = Number(project.config.provide?.productionKvTtlMs ?? 0);
  const model = productionKvTtlMs > 0 ? { script: PRODUCTION_KV_ENTRY, vars: { PRODUCTION_KV_TTL_MS: String(productionKvTtlMs) } } : {};
  const server = await startWranglerDev({ port, persistTo: join(workDir, "state"), envFile: join(workDir, "dev.vars"), logFile: serverLog, ...model });
  project.provide("registryUrl", server.url);
  project.provide("registryUrlB", `https://localhost:${port}`);
  project.provide("productionKvTtlMs", productionKvTtlMs);
  project.provide("adminPassword", secrets.BOOTSTRAP_ADMIN_PASSWORD!);
  project.provide("workDir", workDir);
  project.provide("serverLog", serverLog);
  return () => {
    server.stop();
    // The server's log outlives the run (git-ignored `.e2e/`): what a failed client test needs explained.
    mkdirSync(KEPT_LOGS, { recursive: true });
    copyFileSync(serverLog, join(KEPT_LOGS, `server-${project.name}.log`));
    rmSync(workDir, { recursive: true, force: true });
  };
}
