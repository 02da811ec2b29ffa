// `npm run bench`: measures the registry side by side with baselines in one run on this machine and
// prints one table, also written to BENCHMARKS.md. Everything listens on 127.0.0.1.
//
//   1. token endpoint and manifest GET: wrk req/s and p50/p99, beside /bench/ping on the same workerd
//   2. blob pull: the 307 redirect plus the signed-URL download of a 512 MiB blob
//   3. skopeo push and pull (3 × 32 MiB and 1 × 512 MiB), median of 3, beside Debian's docker-registry, served
//      over TLS like the Worker (and, for reference, over plain HTTP)
//   4. substrate ceiling: a bare streamed R2 put/get of the same 512 MiB in the same workerd
//   5. workerd RSS growth during the 512 MiB push; CPU per token request; bundle size
//   0. first, the cost model: billable KV, Durable Object and R2 operations per user-level operation
//      (bench/cost-model.mjs). `BENCH_ONLY=costs npm run bench` runs only that (about a minute) and replaces
//      only its section of BENCHMARKS.md.
//   `BENCH_ONLY=baseline npm run bench` instead compares this version with the one before the ledgers
//      (bench/baseline.mjs: push, pull and request rates, two `wrangler dev` side by side) and replaces only
//      its section of BENCHMARKS.md.
//   6. CPU ms per MiB on each upload path and per token request (bench/upload-cpu.mjs; `BENCH_ONLY=cpu`, a few
//      minutes), and a 1 GiB layer pushed by `edge-registry push` and pulled by skopeo with workerd's RSS
//      (`BENCH_ONLY=large`); each alone replaces only its own section of BENCHMARKS.md.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, createReadStream } from "node:fs";
import https from "node:https";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { httpsRequest } from "../bin/lib/https-request.mjs";
import { writeOciLayout } from "./lib/oci-image.mjs";
import { BASELINE_HEADING, compareWithBaseline, withBaselineSection } from "../bench/baseline.mjs";
import { COST_LAYERS, costMarkdown, measureCosts, withCostSection } from "../bench/cost-model.mjs";
import { sectionOf, withSection } from "../bench/markdown.mjs";
import { CPU_HEADING, LARGE_HEADING, cpuMarkdown, largeMarkdown, layoutReady, measureLargeLayer, measureUploadCpu } from "../bench/upload-cpu.mjs";
import { ensureSecretsFile } from "./local-secrets.mjs";
import { OFFLINE_ENV, projectRoot, startWranglerDev } from "./wrangler-dev.mjs";

const MiB = 1024 * 1024;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const WRK_SECONDS = Number(process.env.BENCH_WRK_SECONDS ?? 8);
const benchDir = join(projectRoot, ".bench");
// BENCH_PORT moves the Worker (and docker-registry on the next two ports) when 28787 is taken.
const port = Number(process.env.BENCH_PORT ?? 28787);
const dockerRegistryPorts = { tls: port + 1, http: port + 2 };
const COSTS_ONLY = process.env.BENCH_ONLY === "costs";
const BASELINE_ONLY = process.env.BENCH_ONLY === "baseline";
/** BENCH_ONLY=cpu or large: that phase of bench/upload-cpu.mjs alone. */
const PHASE_ONLY = ["cpu", "large"].includes(process.env.BENCH_ONLY ?? "") ? process.env.BENCH_ONLY : undefined;
const IDLE_TIMEOUT_MS = 120_000;

/** @typedef {import("../bench/cost-model.mjs").BenchRequest} BenchRequest */
/** wrk's figures for one URL: req/s, p50 and p99 in ms, and the request count. @typedef {{ rps: number, p50: number, p99: number, requests: number }} WrkResult */
/** A docker-registry started by startDockerRegistries. @typedef {{ child: import("node:child_process").ChildProcess, host: string }} DockerRegistry */
/** Median seconds of one registry's push and pull of one image. @typedef {{ push: number, pull: number, pullCpu: number, substratePull?: number }} Timing */

/** Installs `pkg` (Debian, as root) when `command` is missing, else exits. @param {string} command @param {string} pkg */
function need(command, pkg) {
  if (spawnSync("sh", ["-c", `command -v ${command}`]).status === 0) return;
  if (process.getuid?.() === 0 && existsSync("/etc/debian_version")) {
    execFileSync("apt-get", ["install", "-y", "-qq", pkg], { stdio: "inherit", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  } else {
    console.error(`the benchmark needs ${command} (Debian package ${pkg})`);
    process.exit(1);
  }
}

/**
 * Runs a command to completion; throws when it fails.
 * @param {string} command
 * @param {string[]} args
 * @param {Omit<import("node:child_process").SpawnSyncOptions, "encoding">} [options]
 * @returns {{ stdout: string, seconds: number }}
 */
function sh(command, args, options = {}) {
  const started = performance.now();
  const result = spawnSync(command, args, { encoding: "utf8", maxBuffer: 64 * MiB, ...options });
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed:\n${result.stderr}\n${result.stdout}`);
  return { stdout: result.stdout, seconds: (performance.now() - started) / 1000 };
}

const median = (/** @type {number[]} */ values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

// No keep-alive: a reused socket that workerd already closed fails the next request with "socket hang up".
const agent = new https.Agent({ keepAlive: false, rejectUnauthorized: false });

/**
 * One request, its answer buffered (bin/lib/https-request.mjs, shared with the CLI and the tests).
 * @param {string} url
 * @param {Parameters<BenchRequest>[1]} [options]
 */
function request(url, { method = "GET", headers = {}, body } = {}) {
  return httpsRequest(url, { method, headers, body, agent, rejectUnauthorized: false, idleTimeoutMs: IDLE_TIMEOUT_MS });
}

/**
 * Streams a response body to nowhere; returns seconds and bytes.
 * @param {string} url
 * @param {Record<string, string>} [headers]
 * @returns {Promise<{ status: number | undefined, bytes: number, seconds: number, encoding: string | undefined }>}
 */
function download(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    https
      .get(url, { headers, agent }, (res) => {
        let bytes = 0;
        res.on("data", (chunk) => (bytes += chunk.length));
        res.on("end", () => resolve({ status: res.statusCode, bytes, seconds: (performance.now() - started) / 1000, encoding: res.headers["content-encoding"] }));
      })
      .on("error", reject)
      .setTimeout(IDLE_TIMEOUT_MS, /** @this {import("node:http").ClientRequest} */ function () {
        this.destroy(new Error(`GET ${url}: no activity for ${IDLE_TIMEOUT_MS / 1000} s`));
      });
  });
}

/**
 * The workerd processes started under a process (wrangler spawns workerd).
 * @param {number} rootPid
 * @returns {number[]}
 */
function workerdPids(rootPid) {
  /** @type {Map<number, number[]>} parent pid → child pids */
  const children = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      /** @type {number[]} set just above */ (children.get(ppid)).push(Number(entry));
    } catch {
      // process ended
    }
  }
  /** @type {number[]} */
  const found = [];
  const walk = (/** @type {number} */ pid) => {
    for (const child of children.get(pid) ?? []) {
      try {
        if (readFileSync(`/proc/${child}/comm`, "utf8").trim() === "workerd") found.push(child);
      } catch {
        // gone
      }
      walk(child);
    }
  };
  walk(rootPid);
  return found;
}

const rssKiB = (/** @type {number[]} */ pids) => pids.reduce((sum, pid) => sum + Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0), 0);
const cpuTicks = (/** @type {number[]} */ pids) =>
  pids.reduce((sum, pid) => {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return sum + Number(fields[11]) + Number(fields[12]);
  }, 0);
const TICKS_PER_SECOND = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim() || 100);

/**
 * Runs wrk and returns req/s, p50 and p99 in ms, and the request count.
 * @param {string} url
 * @param {Record<string, string>} [headers]
 * @returns {WrkResult}
 */
function wrk(url, headers = {}) {
  const args = ["-t2", "-c16", `-d${WRK_SECONDS}s`, "--latency"];
  for (const [name, value] of Object.entries(headers)) args.push("-H", `${name}: ${value}`);
  const output = sh("wrk", [...args, url]).stdout;
  if (!/Latency Distribution/.test(output)) throw new Error(`unexpected wrk output for ${url}:\n${output}`);
  const toMs = (/** @type {string} */ text) => {
    const match = /([\d.]+)(us|ms|s|m)\b/.exec(text);
    if (!match) throw new Error(`unexpected wrk latency "${text}" for ${url}:\n${output}`);
    return Number(match[1]) * /** @type {Record<string, number>} */ ({ us: 0.001, ms: 1, s: 1000, m: 60_000 })[match[2]];
  };
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0);
  if (non2xx > 0) throw new Error(`wrk saw ${non2xx} error responses from ${url}`);
  // Lines of wrk's --latency output (checked above); a missing one throws here as it always did.
  const line = (/** @type {RegExp} */ pattern) => /** @type {RegExpExecArray} */ (pattern.exec(output))[1];
  return {
    rps: Number(line(/Requests\/sec:\s+([\d.]+)/)),
    p50: toMs(line(/^\s+50%\s+(\S+)/m)),
    p99: toMs(line(/^\s+99%\s+(\S+)/m)),
    requests: Number(line(/(\d+) requests in/)),
  };
}

/** The bench images' OCI layouts under .bench/images, generated once; returns their names. */
async function ensureImages() {
  const images = {
    "3x32MiB": { seed: 101, layerSizes: [32 * MiB, 32 * MiB, 32 * MiB], gzip: true },
    "1x512MiB": { seed: 202, layerSizes: [512 * MiB], gzip: true },
  };
  for (const [name, image] of Object.entries(images)) {
    const dir = join(benchDir, "images", name);
    if (!existsSync(join(dir, "index.json"))) {
      console.log(`generating image ${name} (deterministic, once)…`);
      rmSync(dir, { recursive: true, force: true });
      await writeOciLayout(dir, [image], "v1");
    }
  }
  return Object.keys(images);
}

/**
 * Bundles `<root>/bench/worker.ts` once and returns a config in `outDir` that serves that fixed bundle: `wrangler
 * dev` watches its sources and would reload the Worker (a new workerd, failed requests) if a file changed mid-run.
 * @param {string} [root]
 * @param {string} [outDir]
 */
function bundleOnce(root = projectRoot, outDir = benchDir) {
  const dist = join(outDir, "dist");
  rmSync(dist, { recursive: true, force: true });
  execFileSync("npx", ["wrangler", "deploy", "--dry-run", "--config", join(root, "bench", "wrangler.toml"), "--outdir", dist], {
    cwd: root,
    env: { ...process.env, ...OFFLINE_ENV },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const config = readFileSync(join(root, "bench", "wrangler.toml"), "utf8").replace(/^main = .*$/m, 'main = "dist/worker.js"');
  const path = join(outDir, "wrangler.toml");
  writeFileSync(path, config);
  return path;
}

/**
 * Debian's docker-registry twice: over TLS (a self-signed certificate, as the Worker is served locally), the
 * like-for-like baseline, since the client's TLS work is part of every pull; and over plain HTTP, for reference.
 * @returns {Record<string, DockerRegistry>} by transport: tls, http
 */
function startDockerRegistries() {
  const root = join(benchDir, "docker-registry");
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const cert = join(root, "cert.pem");
  const key = join(root, "key.pem");
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], { stdio: "ignore" });
  /** @type {Record<string, DockerRegistry>} */
  const started = {};
  for (const [transport, registryPort] of Object.entries(dockerRegistryPorts)) {
    const config = join(root, `${transport}.yml`);
    const tls = transport === "tls" ? `  tls:\n    certificate: ${cert}\n    key: ${key}\n` : "";
    writeFileSync(
      config,
      `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(root, transport)}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${registryPort}\n${tls}`,
    );
    started[transport] = { child: spawn("docker-registry", ["serve", config], { stdio: "ignore", detached: true }), host: `127.0.0.1:${registryPort}` };
  }
  return started;
}

/**
 * An image's layer descriptors from its OCI layout, each with the path of its blob file.
 * @param {string} imageName
 * @returns {{ digest: string, size: number, path: string }[]}
 */
function layersOf(imageName) {
  const layout = join(benchDir, "images", imageName);
  /** @type {{ manifests: { digest: string }[] }} */
  const index = JSON.parse(readFileSync(join(layout, "index.json"), "utf8"));
  /** @type {{ layers: { digest: string, size: number }[] }} */
  const manifest = JSON.parse(readFileSync(join(layout, "blobs", "sha256", index.manifests[0].digest.slice(7)), "utf8"));
  return manifest.layers.map((layer) => ({ ...layer, path: join(layout, "blobs", "sha256", layer.digest.slice(7)) }));
}

/**
 * The pull ceiling of local R2 for an image: its layers' very objects (found through the registry's redirect)
 * read concurrently, as skopeo reads them, through the bare route of the same workerd. Seconds per run.
 * @param {string} serverUrl
 * @param {string} repository
 * @param {string} imageName
 * @param {string} basicAuthorization
 */
async function bareLayerGets(serverUrl, repository, imageName, basicAuthorization) {
  const tokenUrl = `${serverUrl}/token?service=edge-registry&scope=repository:${repository}:pull`;
  const token = JSON.parse((await request(tokenUrl, { headers: { Authorization: basicAuthorization } })).body.toString()).token;
  /** @type {string[]} */
  const keys = [];
  for (const layer of layersOf(imageName)) {
    const redirect = await request(`${serverUrl}/v2/${repository}/blobs/${layer.digest}`, { headers: { Authorization: `Bearer ${token}` } });
    keys.push(new URL(/** @type {string} the 307's Location */ (redirect.headers.location), serverUrl).pathname.replace(/^\/blob-data\//, ""));
  }
  /** @type {number[]} */
  const runs = [];
  for (let run = 0; run < RUNS; run++) {
    const started = performance.now();
    await Promise.all(keys.map((key) => download(`${serverUrl}/bench/r2?key=${encodeURIComponent(key)}`)));
    runs.push((performance.now() - started) / 1000);
  }
  return runs;
}

function clearClientCaches() {
  // containers/image remembers where blobs were seen and turns later pushes into mounts: start cold.
  for (const dir of ["/var/lib/containers/cache", join(process.env.HOME ?? "/root", ".local/share/containers/cache")]) {
    if (existsSync(dir)) for (const file of readdirSync(dir)) if (file.startsWith("blob-info-cache")) rmSync(join(dir, file), { force: true });
  }
}

/** Push attempts that failed and were retried, for the report. @type {string[]} */
const failedPushes = [];

/**
 * skopeo copy of `layout` to a fresh repository; seconds of the attempt that succeeded. A push that fails is
 * counted and reported, then tried again (at most 3 more times) under a new name: local `wrangler dev`
 * intermittently answers 503 after a long upload (README "Known local issue").
 * @param {string} layout
 * @param {string} host
 * @param {string[]} credsFlag
 * @param {string} repository
 * @param {string} label
 * @returns {Promise<{ repository: string, seconds: number }>}
 */
async function pushWithRetries(layout, host, credsFlag, repository, label) {
  for (let attempt = 0; ; attempt++) {
    const started = performance.now();
    /** @type {string | undefined} the last line of skopeo's error output, or undefined when it succeeded */
    const failure = await new Promise((resolve) => {
      clearClientCaches();
      const child = spawn("skopeo", ["copy", "--dest-tls-verify=false", ...credsFlag, layout, `docker://${host}/${repository}-${attempt}:v1`], { stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (chunk) => (stderr += chunk));
      child.on("exit", (code) => resolve(code === 0 ? undefined : stderr.trim().split("\n").at(-1)));
    });
    if (!failure) return { repository: `${repository}-${attempt}`, seconds: (performance.now() - started) / 1000 };
    failedPushes.push(`${label}: ${/HTTP status: ([^"]+)/.exec(failure)?.[1] ?? failure.slice(-100)}`);
    if (attempt === 3) throw new Error(`push of ${label} failed 4 times: ${failure}`);
  }
}

/** skopeo copy from `source` to `destination`; seconds. @param {string} source @param {string} destination @param {string[]} credsFlag */
function skopeoCopy(source, destination, credsFlag) {
  clearClientCaches();
  return sh("skopeo", ["copy", "--src-tls-verify=false", "--dest-tls-verify=false", ...credsFlag, source, destination]).seconds;
}

/** The image of the cost model: COST_LAYERS small layers (the counts do not depend on layer size below 16 MiB). */
async function ensureCostImage() {
  const dir = join(benchDir, "images", `cost-${COST_LAYERS}x1MiB`);
  if (!existsSync(join(dir, "index.json"))) {
    rmSync(dir, { recursive: true, force: true });
    await writeOciLayout(dir, [{ seed: 404, layerSizes: Array.from({ length: COST_LAYERS }, () => MiB), gzip: true }], "v1");
  }
  return dir;
}

/**
 * Namespace `bench` and a service account that administers it, through the admin API of the server at `url`.
 * @param {string} url
 * @param {string} adminPassword
 */
async function setUpAccount(url, adminPassword) {
  const admin = { Authorization: `Basic ${Buffer.from(`admin:${adminPassword}`).toString("base64")}`, "Content-Type": "application/json" };
  await request(`${url}/admin/v1/namespaces`, { method: "POST", headers: admin, body: JSON.stringify({ name: "bench" }) });
  /** @type {{ username: string, token: string }} */
  const created = JSON.parse(
    (await request(`${url}/admin/v1/service-accounts`, { method: "POST", headers: admin, body: JSON.stringify({ namespace: "bench", name: "ci", grants: [{ namespace: "bench", role: "admin" }] }) })).body.toString(),
  );
  const creds = `${created.username}:${created.token}`;
  return { creds, basic: `Basic ${Buffer.from(creds).toString("base64")}`, credsFlag: ["--dest-creds", creds, "--src-creds", creds] };
}

/** The body limit of bench/wrangler.toml, under which skopeo pushes the 512 MiB layer in one request. */
const BENCH_BODY_LIMIT = /** @type {RegExpExecArray} bench/wrangler.toml sets it */ (/^MAX_REQUEST_BODY_BYTES = "(\d+)"$/m.exec(readFileSync(join(projectRoot, "bench", "wrangler.toml"), "utf8")))[1];

/** `BENCH_ONLY=baseline`: this version beside the one before the ledgers (bench/baseline.mjs). */
async function baselineOnly() {
  for (const [command, pkg] of [["skopeo", "skopeo"], ["wrk", "wrk"]]) need(command, pkg);
  mkdirSync(benchDir, { recursive: true });
  // BENCH_IMAGES=3x32MiB (comma-separated) limits the comparison to some of the images.
  const only = process.env.BENCH_IMAGES?.split(",");
  const imageNames = (await ensureImages()).filter((name) => !only || only.includes(name));
  const envFile = join(benchDir, "dev.vars");
  const secrets = await ensureSecretsFile(envFile);
  const { section, table } = await compareWithBaseline({
    benchDir,
    projectRoot,
    port,
    runs: RUNS,
    imageNames,
    median,
    seconds: (value) => `${value.toFixed(2)} s`,
    request,
    wrk,
    skopeoCopy,
    pushWithRetries,
    setUp: (url) => setUpAccount(url, secrets.BOOTSTRAP_ADMIN_PASSWORD),
    startServer: (root, name, serverPort) => {
      const dir = join(benchDir, "servers", name);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      // Both behind the local front with this bench's body limit (the baseline's config predates the var).
      const vars = { MAX_REQUEST_BODY_BYTES: BENCH_BODY_LIMIT };
      return startWranglerDev({ port: serverPort, persistTo: join(dir, "state"), envFile, config: bundleOnce(root, dir), extraArgs: ["--no-bundle"], vars });
    },
  });
  const path = join(projectRoot, "BENCHMARKS.md");
  writeFileSync(path, withBaselineSection(existsSync(path) ? readFileSync(path, "utf8") : "# Benchmarks\n", section));
  console.log(`\n${table}\n\nfailed push attempts (retried): ${failedPushes.length ? failedPushes.join("; ") : "none"}\nwritten to BENCHMARKS.md`);
}

async function main() {
  if (BASELINE_ONLY) return baselineOnly();
  const tools = COSTS_ONLY || PHASE_ONLY ? [["skopeo", "skopeo"]] : [["skopeo", "skopeo"], ["wrk", "wrk"], ["docker-registry", "docker-registry"], ["openssl", "openssl"]];
  for (const [command, pkg] of tools) need(command, pkg);
  mkdirSync(benchDir, { recursive: true });
  const imageNames = COSTS_ONLY || PHASE_ONLY ? [] : await ensureImages();
  const costImage = PHASE_ONLY ? undefined : await ensureCostImage();
  const largeLayout = join(benchDir, "images", "1x1GiB");
  if ((!PHASE_ONLY || PHASE_ONLY === "large") && !layoutReady(largeLayout)) {
    await writeOciLayout(largeLayout, [{ seed: 1024, layerSizes: [1024 * MiB] }], "v1");
  }
  let cpuSection = "";
  let largeSection = "";
  const phaseNote = () => `Measured by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)} (${cpus().length} × ${cpus()[0]?.model ?? "cpu"}).`;
  let costRows;
  let costSection = "";
  const envFile = join(benchDir, "dev.vars");
  const secrets = await ensureSecretsFile(envFile);
  rmSync(join(benchDir, "state"), { recursive: true, force: true });
  const server = await startWranglerDev({ port, persistTo: join(benchDir, "state"), envFile, config: bundleOnce(), extraArgs: ["--no-bundle"] });
  /** @type {Record<string, DockerRegistry>} */
  const dockers = COSTS_ONLY || PHASE_ONLY ? {} : startDockerRegistries();
  /** @type {{ name: string, value: string, baseline: string, ratio: string, target: string }[]} */
  const results = [];
  /** One row of the table. @param {string} name @param {string} value @param {string} baseline @param {string} ratio @param {string} target */
  const row = (name, value, baseline, ratio, target) => {
    results.push({ name, value, baseline, ratio, target });
    console.log(`${name}: ${value} | ${baseline} | ${ratio} | ${target}`);
  };
  try {
    const pids = workerdPids(/** @type {number} a spawned child's */ (server.child.pid));
    const { basic, creds, credsFlag } = await setUpAccount(server.url, secrets.BOOTSTRAP_ADMIN_PASSWORD);

    // 6. CPU per path and the 1 GiB layer (run first when alone; after the timings in a full run).
    /** @param {string} [which] cpu or large; both when absent */
    const phases = async (which) => {
      if (!which || which === "cpu") {
        const cpu = await measureUploadCpu({ url: server.url, basic, request, runs: RUNS, cpuMs: () => (cpuTicks(pids) / TICKS_PER_SECOND) * 1000 });
        cpuSection = cpuMarkdown(cpu, phaseNote());
        console.log(cpuSection);
      }
      if (!which || which === "large") {
        const large = await measureLargeLayer({
          url: server.url,
          workerUrl: server.workerUrl,
          request,
          download,
          host: `127.0.0.1:${port}`,
          creds,
          layout: largeLayout,
          workdir: benchDir,
          cli: join(projectRoot, "bin", "edge-registry.mjs"),
          sh,
          rssKiB: () => rssKiB(pids),
        });
        largeSection = largeMarkdown(large, phaseNote());
        console.log(largeSection);
      }
    };
    if (PHASE_ONLY) return await phases(PHASE_ONLY);

    // 0. The cost model, each operation alone in the Worker.
    costRows = await measureCosts({
      url: server.url,
      host: `127.0.0.1:${port}`,
      basic,
      creds,
      request,
      skopeo: (args) => sh("skopeo", args),
      clearClientCaches,
      layout: /** @type {string} not a phase run */ (costImage),
    });
    if (COSTS_ONLY) return;

    // 1. Request rates, each beside the trivial route measured right before it.
    sh("skopeo", ["copy", "--dest-tls-verify=false", "--dest-creds", creds, `oci:${join(benchDir, "images", "3x32MiB")}:v1`, `docker://127.0.0.1:${port}/bench/manifest:v1`]);
    const tokenUrl = `${server.url}/token?service=edge-registry&scope=repository:bench/app:pull`;
    const manifestToken = JSON.parse((await request(`${server.url}/token?service=edge-registry&scope=repository:bench/manifest:pull`, { headers: { Authorization: basic } })).body.toString()).token;
    wrk(`${server.url}/bench/ping`); // warm-up
    // Rates swing with scheduling on 2 cores: rounds interleave the routes, and each figure is the median round.
    /** @type {Record<string, Record<string, number>>[]} per round: route → wrk's figures and cpuMs */
    const rounds = [];
    for (let round = 0; round < RUNS; round++) {
      /** @type {Record<string, Record<string, number>>} */
      const measured = {};
      for (const [name, url, headers] of /** @type {[string, string, Record<string, string>][]} */ ([
        ["ping", `${server.url}/bench/ping`, {}],
        ["token", tokenUrl, { Authorization: basic }],
        ["pingLogged", `${server.url}/bench/ping-logged`, {}],
        ["manifest", `${server.url}/v2/bench/manifest/manifests/v1`, { Authorization: `Bearer ${manifestToken}`, Accept: "application/vnd.oci.image.manifest.v1+json" }],
      ])) {
        const ticks = cpuTicks(pids);
        measured[name] = wrk(url, headers);
        measured[name].cpuMs = ((cpuTicks(pids) - ticks) / TICKS_PER_SECOND / measured[name].requests) * 1000;
      }
      rounds.push(measured);
    }
    const medianOf = (/** @type {string} */ name) => {
      const pick = (/** @type {string} */ field) => median(rounds.map((round) => round[name][field]));
      return { rps: pick("rps"), p50: pick("p50"), p99: pick("p99"), cpuMs: pick("cpuMs") };
    };
    const [ping, token, pingLogged, manifest] = ["ping", "token", "pingLogged", "manifest"].map(medianOf);
    const fmtRate = (/** @type {{ rps: number, p50: number, p99: number }} */ r) => `${r.rps.toFixed(0)} req/s (p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms)`;
    row("Token endpoint, service account, 1 scope", fmtRate(token), `/bench/ping ${fmtRate(ping)}`, `${(token.rps / ping.rps).toFixed(2)} ×`, "≥ 0.70 ×");
    row("Token endpoint vs a trivial route that also logs one line", fmtRate(token), `/bench/ping-logged ${fmtRate(pingLogged)}`, `${(token.rps / pingLogged.rps).toFixed(2)} ×`, "—");
    row("Manifest GET by tag (bearer)", fmtRate(manifest), `/bench/ping ${fmtRate(ping)}`, `${(manifest.rps / ping.rps).toFixed(2)} ×`, "≥ 0.60 ×");
    row("CPU per request (workerd processes, incl. TLS/HTTP)", `token ${token.cpuMs.toFixed(2)} ms; manifest ${manifest.cpuMs.toFixed(2)} ms`, `/bench/ping ${ping.cpuMs.toFixed(2)} ms; /bench/ping-logged ${pingLogged.cpuMs.toFixed(2)} ms`, `token +${(token.cpuMs - ping.cpuMs).toFixed(2)} ms`, "—");

    // 2. Substrate ceiling: each image's layers put one after another through the bare route (as skopeo pushes
    //    them), and the 512 MiB layer read back, in the same workerd.
    const bigLayer = layersOf("1x512MiB")[0];
    /** @type {Record<string, number[]>} */
    const substratePut = {};
    /** @type {number[]} */
    const substrateGet = [];
    for (const name of imageNames) {
      substratePut[name] = [];
      for (let run = 0; run < RUNS; run++) {
        const started = performance.now();
        for (const layer of layersOf(name)) {
          const put = await request(`${server.url}/bench/r2`, { method: "PUT", headers: { "Content-Length": statSync(layer.path).size }, body: createReadStream(layer.path) });
          if (put.status !== 200) throw new Error(`bare R2 put failed: ${put.status}`);
        }
        substratePut[name].push((performance.now() - started) / 1000);
        if (name === "1x512MiB") substrateGet.push((await download(`${server.url}/bench/r2`)).seconds);
      }
    }

    // 3. skopeo push and pull, side by side with docker-registry.
    /** @type {Record<string, Timing>} by "<registry> <image>" */
    const timings = {};
    let rssGrowthMiB = 0;
    /** @type {string | undefined} */
    let edgeBigRepository;
    /** @type {Record<string, string>} */
    const repositoryUsed = {};
    for (const name of imageNames) {
      const layout = `oci:${join(benchDir, "images", name)}:v1`;
      for (const [registry, host, flags, serverPids] of /** @type {[string, string, string[], number[]][]} spawned children's pids */ ([
        ["edge", `127.0.0.1:${port}`, credsFlag, pids],
        ["docker-registry", dockers.tls.host, [], [dockers.tls.child.pid]],
        ["docker-registry-http", dockers.http.host, [], [dockers.http.child.pid]],
      ])) {
        /** @type {number[]} */
        const push = [];
        /** @type {number[]} */
        const pull = [];
        /** @type {number[]} */
        const pullCpuSeconds = [];
        for (let run = 0; run < RUNS; run++) {
          const repository = `bench/${name.toLowerCase()}-${Date.now().toString(36)}-${run}`;
          /** @type {NodeJS.Timeout | undefined} */
          let sampler;
          let peak = 0;
          const baseline = registry === "edge" ? rssKiB(pids) : 0;
          if (registry === "edge" && name === "1x512MiB") sampler = setInterval(() => (peak = Math.max(peak, rssKiB(pids))), 50);
          const pushed = await pushWithRetries(layout, host, flags, repository, `${registry} ${name}`);
          repositoryUsed[registry] = pushed.repository;
          push.push(pushed.seconds);
          if (registry === "edge" && name === "1x512MiB") edgeBigRepository = repositoryUsed.edge;
          if (sampler) {
            clearInterval(sampler);
            rssGrowthMiB = Math.max(rssGrowthMiB, (peak - baseline) / 1024);
          }
          const target = join(benchDir, "pulled");
          rmSync(target, { recursive: true, force: true });
          const ticks = cpuTicks(serverPids);
          pull.push(skopeoCopy(`docker://${host}/${repositoryUsed[registry]}:v1`, `oci:${target}:v1`, flags));
          pullCpuSeconds.push((cpuTicks(serverPids) - ticks) / TICKS_PER_SECOND);
        }
        timings[`${registry} ${name}`] = { push: median(push), pull: median(pull), pullCpu: median(pullCpuSeconds) };
        if (registry === "edge") timings[`edge ${name}`].substratePull = median(await bareLayerGets(server.url, repositoryUsed.edge, name, basic));
      }
    }
    const seconds = (/** @type {number} */ value) => `${value.toFixed(2)} s`;
    for (const name of imageNames) {
      const edge = timings[`edge ${name}`];
      const reference = timings[`docker-registry ${name}`];
      const plain = timings[`docker-registry-http ${name}`];
      const ceiling = median(substratePut[name]);
      row(`skopeo push ${name}`, seconds(edge.push), `bare R2 put of its layers ${seconds(ceiling)}; docker-registry ${seconds(reference.push)} (TLS), ${seconds(plain.push)} (HTTP)`, `${(edge.push / ceiling).toFixed(2)} × R2 put`, "≤ 1.20 ×");
      row(`skopeo pull ${name}`, seconds(edge.pull), `docker-registry ${seconds(reference.pull)} (TLS), ${seconds(plain.pull)} (HTTP); bare R2 get of the same layer objects, concurrent ${seconds(/** @type {number} set for edge */ (edge.substratePull))}; server CPU: workerd ${seconds(edge.pullCpu)}, docker-registry ${seconds(reference.pullCpu)} (TLS)`, `${(edge.pull / reference.pull).toFixed(2)} × docker-registry (TLS); ${(edge.pull / plain.pull).toFixed(2)} × (HTTP)`, "≤ 1.00 ×");
    }

    // 4. Blob pull: redirect + signed-URL download of the 512 MiB layer (gzip accepted, as skopeo sends it).
    const blobToken = JSON.parse(
      (await request(`${server.url}/token?service=edge-registry&scope=repository:${edgeBigRepository}:pull`, { headers: { Authorization: basic } })).body.toString(),
    ).token;
    /** @type {number[]} */
    const blobRuns = [];
    /** @type {number[]} */
    const sameObjectRuns = [];
    /** @type {string | undefined} */
    let encoding;
    for (let run = 0; run < RUNS; run++) {
      const started = performance.now();
      const redirect = await request(`${server.url}/v2/${edgeBigRepository}/blobs/${bigLayer.digest}`, { headers: { Authorization: `Bearer ${blobToken}` } });
      const location = /** @type {string} the 307's Location */ (redirect.headers.location);
      const fetched = await download(new URL(location, server.url).toString(), { "Accept-Encoding": "gzip" });
      if (fetched.bytes !== bigLayer.size) throw new Error(`blob download returned ${fetched.bytes} bytes`);
      encoding = fetched.encoding;
      blobRuns.push((performance.now() - started) / 1000);
      // The same object read by the bare route: the registry's own overhead is the ratio to it.
      const key = new URL(location, server.url).pathname.replace(/^\/blob-data\//, "");
      sameObjectRuns.push((await download(`${server.url}/bench/r2?key=${encodeURIComponent(key)}`)).seconds);
    }
    row(
      "Blob pull 512 MiB (307 + signed URL)",
      seconds(median(blobRuns)),
      `bare R2 get of the same object ${seconds(median(sameObjectRuns))}; of the bare-put object ${seconds(median(substrateGet))}`,
      `${(median(blobRuns) / median(sameObjectRuns)).toFixed(2)} × same object; Content-Encoding ${encoding ?? "none"}`,
      "—",
    );
    row("workerd RSS growth during 512 MiB push", `${rssGrowthMiB.toFixed(0)} MiB`, "—", "—", "≤ 64 MiB");
    row("Failed push attempts (retried)", String(failedPushes.length), "—", failedPushes.map((f) => f.replace(/\|/g, "/").slice(0, 120)).join("; ") || "—", "0");

    // 5. A small image must not stall: skopeo copy of a 1 MiB image.
    const small = join(benchDir, "images", "1MiB");
    if (!existsSync(join(small, "index.json"))) await writeOciLayout(small, [{ seed: 303, layerSizes: [MiB], gzip: true }], "v1");
    /** @type {number[]} */
    const smallRuns = [];
    for (let run = 0; run < RUNS; run++) {
      smallRuns.push(skopeoCopy(`oci:${small}:v1`, `docker://127.0.0.1:${port}/bench/small-${run}:v1`, credsFlag));
    }
    row("skopeo copy of a 1 MiB image (login + push)", seconds(median(smallRuns)), "—", "—", "< 2 s");

    await phases();
  } catch (error) {
    // The Worker's own account of what failed (an unhandled error's log line) is in wrangler's output.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    console.error(`wrangler dev output (last 40 lines):\n${server.output().split("\n").slice(-40).join("\n")}`);
    throw error;
  } finally {
    server.stop();
    if (costRows) {
      const note = `Measured by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}.`;
      const path = join(projectRoot, "BENCHMARKS.md");
      // The cost-only run replaces its own section and keeps the timings; a full run rewrites the file below.
      if (COSTS_ONLY) writeFileSync(path, withCostSection(existsSync(path) ? readFileSync(path, "utf8") : "# Benchmarks\n", costMarkdown(costRows, note)));
      costSection = costMarkdown(costRows, note);
    }
    // A phase run alone replaces its own section and keeps the rest.
    const phaseSection = PHASE_ONLY === "cpu" ? cpuSection : PHASE_ONLY === "large" ? largeSection : "";
    if (phaseSection) {
      const path = join(projectRoot, "BENCHMARKS.md");
      const heading = PHASE_ONLY === "cpu" ? CPU_HEADING : LARGE_HEADING;
      writeFileSync(path, withSection(existsSync(path) ? readFileSync(path, "utf8") : "# Benchmarks\n", heading, phaseSection));
    }
    for (const { child } of Object.values(dockers)) {
      try {
        process.kill(-(/** @type {number} a spawned child's */ (child.pid)), "SIGTERM");
      } catch {
        // gone
      }
    }
  }
  if (COSTS_ONLY) {
    console.log(`\n${costSection}\nwritten to BENCHMARKS.md`);
    return;
  }
  if (PHASE_ONLY) {
    console.log("written to BENCHMARKS.md");
    return;
  }

  const bundle = execFileSync("node", ["scripts/deploy-check.mjs"], { cwd: projectRoot, encoding: "utf8", env: { ...process.env, ...OFFLINE_ENV } });
  const bundleMatch = /** @type {RegExpExecArray} deploy-check prints it */ (/bundled (\d+) bytes \((\d+) gzip\)/.exec(bundle));
  row("Bundle size", `${(Number(bundleMatch[1]) / 1024).toFixed(1)} KiB`, "—", `${(Number(bundleMatch[2]) / 1024).toFixed(1)} KiB gzip`, "—");

  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB RAM, Node ${process.version}, workerd via wrangler dev (HTTPS, local KV/R2), skopeo ${sh("skopeo", ["--version"]).stdout.trim().split(" ").at(-1)}`;
  const table = [
    "| measurement | edge-registry | baseline (same run) | ratio | target |",
    "|---|---|---|---|---|",
    ...results.map((r) => `| ${r.name} | ${r.value} | ${r.baseline} | ${r.ratio} | ${r.target} |`),
  ].join("\n");
  const markdown = `# Benchmarks\n\nMeasured by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}: ${machine}. ` +
    `Medians of ${RUNS} runs; wrk -t2 -c16 for ${WRK_SECONDS} s per rate. Images are deterministic (seeded random bytes, gzip level 1), ` +
    `pushed from an OCI layout to a fresh repository with a cleared client blob cache each run.\n\n${table}\n\n` +
    "## Reading the figures\n\n" +
    "- The baselines run in the same workerd in the same run: `/bench/ping` (a trivial response), `/bench/ping-logged` (the same " +
    "plus one log line shaped like the token endpoint's issuance line), and a bare R2 put/get of the same bytes.\n" +
    "- Under `wrangler dev`, every `console.log` line crosses wrangler's inspector proxy to its Node process (a cost production " +
    "does not have): one line takes the trivial route from the ping rate to the ping-logged rate. The token endpoint writes " +
    "one line per issued token (successful issuance goes to structured logs, issue 4), so its ratio to `/bench/ping` is capped " +
    "by that local cost; its ratio to `/bench/ping-logged` compares like with like.\n" +
    "- Uploads: a session's first request with a declared length (skopeo's layer PATCH from an OCI layout) streams into one R2 " +
    "object hashed by DigestStream, so a push is compared with a bare put of the same bytes. A first request without a length " +
    "(a layer compressed on the fly) goes to multipart parts, also hashed natively; bytes in later requests take a resumable " +
    "SHA-256 in JS. Neither is measured here.\n" +
    "- The Worker is served over TLS locally (clients probe HTTPS first), so docker-registry is measured over TLS too: the " +
    "client's TLS work is part of every pull. Its plain-HTTP figure is shown beside it.\n" +
    "- Failed push attempts are local `wrangler dev` proxy resets after long uploads (README, Known local issue); each was retried.\n";
  // The before/after section comes from its own mode (BENCH_ONLY=baseline) and is kept.
  const previous = existsSync(join(projectRoot, "BENCHMARKS.md")) ? readFileSync(join(projectRoot, "BENCHMARKS.md"), "utf8") : "";
  const baselineSection = sectionOf(previous, BASELINE_HEADING);
  const written = withSection(withSection(withCostSection(markdown, costSection), CPU_HEADING, cpuSection), LARGE_HEADING, largeSection);
  writeFileSync(join(projectRoot, "BENCHMARKS.md"), baselineSection ? withBaselineSection(written, baselineSection) : written);
  console.log(`\n${table}\n\n${costSection}\nwritten to BENCHMARKS.md`);
}

await main();
