/**
 * `BENCH_ONLY=baseline npm run bench`: this version beside the version before the ledgers (issue 11), in one run
 * on one machine, each served by its own `wrangler dev` with its own bench Worker: skopeo push and pull of the
 * bench images (the two registries alternate within each run), then token and manifest GET rates (interleaved
 * rounds). The baseline is built from git (`BENCH_BASELINE_REF`, default the last commit before the Durable
 * Objects) into `.bench/baseline/`. Its section of BENCHMARKS.md is replaced; the rest is kept.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { withSection } from "./markdown.mjs";

export const BASELINE_HEADING = "## Before and after the ledgers";
/** Past the read-your-writes windows (src/storage/recent-writes.ts: 65 s for repositories, 70 s for identities). */
const STEADY_STATE_AFTER_MS = 75_000;
/** The last commit before the Durable Object ledgers (issue 11). */
const DEFAULT_BASELINE_REF = "72e91a1";

/** A registry served by `wrangler dev` (scripts/wrangler-dev.mjs): what this module uses of it. @typedef {{ url: string, stop: () => unknown }} Server */

/** The bench's service account on one server (scripts/bench.mjs setUpAccount). @typedef {{ basic: string, creds: string, credsFlag: string[] }} Account */

/**
 * What scripts/bench.mjs provides.
 * @typedef {object} BaselineTools
 * @property {string} benchDir
 * @property {string} projectRoot
 * @property {number} port
 * @property {number} runs
 * @property {string[]} imageNames
 * @property {(values: number[]) => number} median
 * @property {(value: number) => string} seconds
 * @property {import("./cost-model.mjs").BenchRequest} request
 * @property {(url: string, headers?: Record<string, string>) => { rps: number, p50: number, p99: number, requests: number }} wrk
 * @property {(source: string, destination: string, credsFlag: string[]) => number} skopeoCopy
 * @property {(layout: string, host: string, credsFlag: string[], repository: string, label: string) => Promise<{ repository: string, seconds: number }>} pushWithRetries
 * @property {(url: string) => Promise<Account>} setUp
 * @property {(root: string, name: string, port: number) => Promise<Server>} startServer
 */

/**
 * The baseline's sources, exported from git once per ref, sharing this checkout's node_modules.
 * @param {string} projectRoot
 * @param {string} benchDir
 * @param {string} ref
 */
function baselineSources(projectRoot, benchDir, ref) {
  const commit = execFileSync("git", ["rev-parse", "--short", `${ref}^{commit}`], { cwd: projectRoot, encoding: "utf8" }).trim();
  const root = join(benchDir, "baseline", commit);
  if (!existsSync(join(root, "bench", "wrangler.toml"))) {
    rmSync(root, { recursive: true, force: true });
    mkdirSync(root, { recursive: true });
    execFileSync("sh", ["-c", `git archive ${commit} | tar -x -C '${root}'`], { cwd: projectRoot });
    symlinkSync(join(projectRoot, "node_modules"), join(root, "node_modules"));
  }
  return { root, commit };
}

/**
 * @param {BaselineTools} tools what scripts/bench.mjs provides: benchDir, projectRoot, port, runs, imageNames,
 *   startServer(root, name, port) → { url, stop }, setUp(url) → { basic, creds, credsFlag }, request, wrk,
 *   skopeoCopy, pushWithRetries(layout, host, credsFlag, repository, label) → { repository, seconds }, median,
 *   seconds(value) → text
 */
export async function compareWithBaseline(tools) {
  const { benchDir, projectRoot, port, runs, imageNames, median } = tools;
  const ref = process.env.BENCH_BASELINE_REF ?? DEFAULT_BASELINE_REF;
  const baseline = baselineSources(projectRoot, benchDir, ref);
  /** @type {Record<string, Server>} "current" and "baseline" */
  const servers = {
    current: await tools.startServer(projectRoot, "current", port),
    baseline: await tools.startServer(baseline.root, `baseline-${baseline.commit}`, port + 3),
  };
  /** @type {string[][]} */
  const rows = [];
  try {
    /** @type {Record<string, Account>} */
    const accounts = {};
    for (const [name, server] of Object.entries(servers)) accounts[name] = await tools.setUp(server.url);
    const hostOf = (/** @type {string} */ name) => new URL(servers[name].url).host;
    // The manifest read by the rate rounds is pushed first; the rates are measured after the steady-state wait.
    /** @type {Record<string, string>} */
    const manifestRepository = {};
    for (const name of Object.keys(servers)) {
      manifestRepository[name] = (await tools.pushWithRetries(`oci:${join(benchDir, "images", imageNames[0])}:v1`, hostOf(name), accounts[name].credsFlag, "bench/manifest", `${name} manifest`)).repository;
    }

    /** @type {Record<string, string>} */
    const lastPushed = {};
    for (const image of imageNames) {
      /** @type {Record<string, Record<string, number[]>>} seconds per registry and phase */
      const times = { current: { push: [], pull: [] }, baseline: { push: [], pull: [] } };
      for (let run = 0; run < runs; run++) {
        // Alternate which registry goes first, so neither always meets a warmer disk cache.
        const order = run % 2 === 0 ? ["current", "baseline"] : ["baseline", "current"];
        for (const name of order) {
          const pushed = await tools.pushWithRetries(`oci:${join(benchDir, "images", image)}:v1`, hostOf(name), accounts[name].credsFlag, `bench/${image.toLowerCase()}-${Date.now().toString(36)}-${run}`, `${name} ${image}`);
          times[name].push.push(pushed.seconds);
          const target = join(benchDir, "pulled");
          rmSync(target, { recursive: true, force: true });
          times[name].pull.push(tools.skopeoCopy(`docker://${hostOf(name)}/${pushed.repository}:v1`, `oci:${target}:v1`, accounts[name].credsFlag));
          lastPushed[`${name} ${image}`] = pushed.repository;
        }
      }
      for (const [phase, label] of [["push", "skopeo push"], ["pull", "skopeo pull right after the push, same location"]]) {
        const now = median(times.current[phase]);
        const before = median(times.baseline[phase]);
        rows.push([`${label}, ${image}`, tools.seconds(now), tools.seconds(before), `${(now / before).toFixed(2)} ×`, "≤ 1.10 ×"]);
      }
    }

    // Past the read-your-writes window of the last push (65 s) and the accounts' identity window (70 s),
    // pulls and requests take the steady-state path (KV at the edge).
    await new Promise((resolve) => setTimeout(resolve, STEADY_STATE_AFTER_MS));
    for (const image of imageNames) {
      /** @type {Record<string, number[]>} */
      const pulls = { current: [], baseline: [] };
      for (let run = 0; run < runs; run++) {
        for (const name of run % 2 === 0 ? ["current", "baseline"] : ["baseline", "current"]) {
          const target = join(benchDir, "pulled");
          rmSync(target, { recursive: true, force: true });
          pulls[name].push(tools.skopeoCopy(`docker://${hostOf(name)}/${lastPushed[`${name} ${image}`]}:v1`, `oci:${target}:v1`, accounts[name].credsFlag));
        }
      }
      const now = median(pulls.current);
      const before = median(pulls.baseline);
      rows.push([`skopeo pull, steady state, ${image}`, tools.seconds(now), tools.seconds(before), `${(now / before).toFixed(2)} ×`, "≤ 1.10 ×"]);
    }

    /** @type {Record<string, Record<string, number[]>>} req/s per registry and kind */
    const rates = { current: { token: [], manifest: [] }, baseline: { token: [], manifest: [] } };
    /** @type {Record<string, Record<string, [url: string, headers: Record<string, string>]>>} wrk's arguments per registry and kind */
    const targets = {};
    for (const [name, server] of Object.entries(servers)) {
      const tokenUrl = `${server.url}/token?service=edge-registry&scope=repository:${manifestRepository[name]}:pull`;
      const token = JSON.parse((await tools.request(tokenUrl, { headers: { Authorization: accounts[name].basic } })).body.toString()).token;
      targets[name] = {
        token: [tokenUrl, { Authorization: accounts[name].basic }],
        manifest: [`${server.url}/v2/${manifestRepository[name]}/manifests/v1`, { Authorization: `Bearer ${token}`, Accept: "application/vnd.oci.image.manifest.v1+json" }],
      };
    }
    for (let round = 0; round < runs; round++) {
      for (const kind of ["token", "manifest"]) for (const name of Object.keys(servers)) rates[name][kind].push(tools.wrk(...targets[name][kind]).rps);
    }
    for (const [kind, label] of [["token", "Token endpoint, service account, 1 scope"], ["manifest", "Manifest GET by tag (bearer), steady state"]]) {
      const now = median(rates.current[kind]);
      const before = median(rates.baseline[kind]);
      rows.push([label, `${now.toFixed(0)} req/s`, `${before.toFixed(0)} req/s`, `${(now / before).toFixed(2)} ×`, "≥ 0.90 ×"]);
    }
  } finally {
    for (const server of Object.values(servers)) server.stop();
  }
  const table = ["| measurement | this version | before the ledgers | ratio | target |", "|---|---|---|---|---|", ...rows.map((row) => `| ${row.join(" | ")} |`)].join("\n");
  const section =
    `${BASELINE_HEADING}\n\nMeasured by \`BENCH_ONLY=baseline npm run bench\` on ${new Date().toISOString().slice(0, 10)}: this version ` +
    `beside commit ${baseline.commit} (before the Durable Object ledgers), each in its own \`wrangler dev\` on this machine, in one run. ` +
    `Medians of ${runs} runs; the two alternate within each run. Times are for a fresh repository with a cleared client blob cache.\n\n${table}\n`;
  return { section, table };
}

/**
 * Puts `section` into `markdown` in place of its previous version, or at the end.
 * @param {string} markdown
 * @param {string} section
 * @returns {string}
 */
export function withBaselineSection(markdown, section) {
  return withSection(markdown, BASELINE_HEADING, section);
}
