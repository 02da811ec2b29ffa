// `npm test`: installs the real clients if missing, typechecks, checks the deployment bundle, runs every
// vitest project (unit and integration in workerd, twice: plain and on the production-KV model; end-to-end
// with real clients against `wrangler dev`, on the production-KV model),
// and ends with a plain "N passed, N failed" line.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { projectRoot } from "./wrangler-dev.mjs";

const step = (/** @type {string} */ command, /** @type {string[]} */ args) => execFileSync(command, args, { cwd: projectRoot, stdio: "inherit" });
step("node", ["scripts/ensure-clients.mjs"]);
step("npx", ["tsc", "-p", "."]);
step("npx", ["tsc", "-p", "test/e2e"]);
step("npx", ["tsc", "-p", "tsconfig.scripts.json"]); // bin/ and scripts/: JSDoc-typed JavaScript (checkJs)
step("node", ["scripts/check-layers.mjs"]);
step("npx", ["tsc", "-p", "console"]);
step("node", ["scripts/build-console.mjs"]);
step("node", ["scripts/deploy-check.mjs"]);

const report = join(mkdtempSync(join(tmpdir(), "edge-registry-test-")), "vitest.json");
// The workers suite runs twice: on miniflare's strongly consistent KV (`workers`) and on the production-KV
// model (`workers-production-kv`, test/support/production-kv.ts); the client suite runs on the model (`e2e`;
// `e2e-plain` is the same suite without it). The stress project runs separately (npm run test:stress).
const projects = process.argv.length > 2 ? process.argv.slice(2) : ["--project", "workers", "--project", "workers-production-kv", "--project", "e2e"];
const vitest = spawnSync("npx", ["vitest", "run", "--reporter=default", "--reporter=json", `--outputFile.json=${report}`, ...projects], {
  cwd: projectRoot,
  stdio: "inherit",
});
let summary = "";
try {
  const results = JSON.parse(readFileSync(report, "utf8"));
  summary = `${results.numPassedTests} passed, ${results.numFailedTests} failed, ${results.numPendingTests + results.numTodoTests} skipped`;
} catch {
  summary = "0 passed, 1 failed";
}
console.log(`\n${summary}`);
process.exit(vitest.status ?? 1);
