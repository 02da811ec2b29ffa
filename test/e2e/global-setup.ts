/**
 * Starts the Worker with `wrangler dev` (real workerd, local KV and R2, HTTPS on 127.0.0.1) in a fresh
 * state directory for the end-to-end suite, and hands its URL and admin password to the tests.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
// @ts-expect-error: plain ESM helpers shared with `npm start`
import { ensureSecretsFile } from "../../scripts/local-secrets.mjs";
// @ts-expect-error: plain ESM helpers shared with `npm start`
import { startWranglerDev } from "../../scripts/wrangler-dev.mjs";

declare module "vitest" {
  export interface ProvidedContext {
    registryUrl: string;
    adminPassword: string;
    workDir: string;
    /** Everything the Worker and wrangler printed, for the log-hygiene test. */
    serverLog: string;
  }
}

export default async function setup(project: TestProject) {
  const workDir = mkdtempSync(join(tmpdir(), "edge-registry-e2e-"));
  const secrets = (await ensureSecretsFile(join(workDir, "dev.vars"))) as Record<string, string>;
  const port = 20000 + Math.floor(Math.random() * 20000);
  const serverLog = join(workDir, "server.log");
  const server = await startWranglerDev({ port, persistTo: join(workDir, "state"), envFile: join(workDir, "dev.vars"), logFile: serverLog });
  project.provide("registryUrl", server.url);
  project.provide("adminPassword", secrets.BOOTSTRAP_ADMIN_PASSWORD!);
  project.provide("workDir", workDir);
  project.provide("serverLog", serverLog);
  return () => {
    server.stop();
    rmSync(workDir, { recursive: true, force: true });
  };
}
