// Bundles the Worker for deployment without deploying (`wrangler deploy --dry-run`), offline.
import { execFileSync } from "node:child_process";
import { mkdtempSync, statSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { OFFLINE_ENV, projectRoot } from "./wrangler-dev.mjs";

const outdir = mkdtempSync(join(tmpdir(), "edge-registry-bundle-"));
for (const args of [["--env="], ["--env", "production"]]) {
  execFileSync("npx", ["wrangler", "deploy", "--dry-run", "--outdir", outdir, ...args], {
    cwd: projectRoot,
    env: { ...process.env, ...OFFLINE_ENV },
    stdio: ["ignore", "ignore", "inherit"],
  });
}
const bundle = join(outdir, "index.js");
console.log(`wrangler deploy --dry-run: bundled ${statSync(bundle).size} bytes (${gzipSync(readFileSync(bundle)).length} gzip)`);
