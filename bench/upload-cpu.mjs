// Benchmark phases of issue 13 (scripts/bench.mjs; `BENCH_ONLY=cpu`, `BENCH_ONLY=large`):
//
// cpu: CPU time of the workerd processes per MiB on each upload path and per token request. Local workerd keeps
//   no CPU account per request, so the method is the processes' utime + stime (/proc/<pid>/stat) around a
//   sequence of requests of one kind, each figure the median of RUNS. That total also holds what production does
//   not bill to the Worker (TLS and HTTP on wrangler's proxy, the local R2 and Durable Object simulators writing
//   to disk), so the same bytes are also put through the bench's bare route (/bench/r2: one streamed R2 put, no
//   hashing) and the difference is given as the registry's own cost; token requests likewise minus /bench/ping.
// large: a 1 GiB layer pushed by `edge-registry push` in chunks of the default 100 MB limit and pulled by
//   skopeo, with the peak RSS growth of the workerd processes during the push.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";

const MiB = 1024 * 1024;
/** Bytes per measured request: within every plan's body limit. */
const CHUNK_MIB = 64;
const TOKEN_REQUESTS = 200;
/** The default MAX_REQUEST_BODY_BYTES (Free and Pro, platform.md §3): what a chunk at the limit carries. */
export const DEFAULT_LIMIT = 100_000_000;

/** @typedef {import("./cost-model.mjs").BenchRequest} BenchRequest */
/** @typedef {import("./cost-model.mjs").BufferedResponse} BufferedResponse */

/**
 * One row of the CPU table: ms per MiB on one upload path, and the net ms of a chunk at the default limit.
 * @typedef {{ path: string, gross: number, bare: number, net: number, chunkAtLimitMs: number }} CpuRow
 */

/**
 * What measureUploadCpu measured.
 * @typedef {object} CpuResult
 * @property {CpuRow[]} rows
 * @property {{ gross: number, ping: number, net: number }} token CPU ms per token request, per /bench/ping, and their difference
 * @property {number} runs
 * @property {number} chunkMiB
 * @property {number} tokenRequests
 */

/**
 * What measureLargeLayer measured.
 * @typedef {object} LargeResult
 * @property {number} downloadFrontSeconds
 * @property {number} downloadDirectSeconds
 * @property {number} layerBytes
 * @property {number} chunks
 * @property {number} pushSeconds
 * @property {number} pullSeconds
 * @property {number} rssGrowthMiB
 * @property {number} rssPeakMiB
 */

const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (/** @type {number[]} */ values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/**
 * `ctx`: { url, basic (Authorization value of a service account that may push bench/*), request, cpuMs() (CPU ms
 * of the workerd processes so far), runs }. Returns the rows of the CPU table.
 * @param {{ url: string, basic: string, request: BenchRequest, cpuMs: () => number, runs: number }} ctx
 * @returns {Promise<CpuResult>}
 */
export async function measureUploadCpu(ctx) {
  const { url, basic, request, cpuMs, runs } = ctx;
  const repository = "bench/cpu";
  const token = JSON.parse((await request(`${url}/token?service=edge-registry&scope=repository:${repository}:pull,push`, { headers: { Authorization: basic } })).body.toString()).token;
  const auth = { Authorization: `Bearer ${token}` };
  const bytes = randomBytes(CHUNK_MIB * MiB);
  /** @param {BufferedResponse} response @param {number} status @param {string} what */
  const expect = (response, status, what) => {
    if (response.status !== status) throw new Error(`${what}: ${response.status} ${response.body.toString().slice(0, 300)}`);
    return response;
  };
  const start = async () => expect(await request(`${url}/v2/${repository}/blobs/uploads/`, { method: "POST", headers: auth }), 202, "POST").headers.location;
  /** @param {string | undefined} location @param {string} digest */
  const finish = async (location, digest) =>
    expect(await request(`${url}${location}?digest=${digest}`, { method: "PUT", headers: { ...auth, "Content-Length": "0" } }), 201, "PUT");
  /**
   * @param {string | undefined} location
   * @param {Buffer | Readable} body
   * @param {Record<string, string>} headers
   */
  const patch = async (location, body, headers) =>
    expect(await request(`${url}${location}`, { method: "PATCH", headers: { ...auth, "Content-Type": "application/octet-stream", ...headers }, body }), 202, "PATCH").headers.location;
  /** @param {...Buffer} parts */
  const digestOf = (...parts) => {
    const hash = createHash("sha256");
    for (const part of parts) hash.update(part);
    return `sha256:${hash.digest("hex")}`;
  };
  /**
   * CPU ms of `work`, after the server has settled (background work of earlier requests included before).
   * @param {() => Promise<unknown>} work
   */
  const measure = async (work) => {
    await sleep(300);
    const before = cpuMs();
    await work();
    await sleep(300);
    return cpuMs() - before;
  };
  // A fresh random prefix per run: every blob is new to the registry (no deduplication).
  const fresh = () => Buffer.concat([randomBytes(16), bytes.subarray(16)]);

  /** @type {Record<"bare" | "streamed" | "chunked" | "resumed" | "second", number[]>} */
  const paths = {
    bare: [],
    streamed: [],
    chunked: [],
    resumed: [],
    second: [],
  };
  for (let run = 0; run < runs; run++) {
    const body = fresh();
    paths.bare.push(
      await measure(async () => expect(await request(`${url}/bench/r2`, { method: "PUT", headers: { "Content-Length": String(body.length) }, body }), 200, "bare put")),
    );

    // One request with its length declared: streamed into one put, hashed by DigestStream (skopeo's layer PATCH).
    const streamedBody = fresh();
    paths.streamed.push(
      await measure(async () => {
        const location = await patch(await start(), streamedBody, { "Content-Length": String(streamedBody.length) });
        await finish(location, digestOf(streamedBody));
      }),
    );

    // One request without a length (chunked transfer): multipart parts completed within it, hashed natively.
    const chunkedBody = fresh();
    paths.chunked.push(
      await measure(async () => {
        /** @type {Buffer[]} */
        const pieces = [];
        for (let offset = 0; offset < chunkedBody.length; offset += MiB) pieces.push(chunkedBody.subarray(offset, offset + MiB));
        const location = await patch(await start(), Readable.from(pieces), {});
        await finish(location, digestOf(chunkedBody));
      }),
    );

    // Resumed across requests (the push command's chunks after the first): the measured request continues a
    // session two requests old, through the resumable SHA-256 in JS and multipart parts.
    const first = randomBytes(MiB);
    const second = fresh();
    const third = fresh();
    let location = await patch(await start(), first, { "Content-Length": String(first.length), "Content-Range": `0-${first.length - 1}` });
    location = await patch(location, second, { "Content-Length": String(second.length), "Content-Range": `${first.length}-${first.length + second.length - 1}` });
    const offset = first.length + second.length;
    paths.resumed.push(
      await measure(async () => {
        location = await patch(location, third, { "Content-Length": String(third.length), "Content-Range": `${offset}-${offset + third.length - 1}` });
      }),
    );
    await finish(location, digestOf(first, second, third));

    // The second request of a session whose first request stored as many bytes as one object (the push
    // command's second chunk): it copies that object into multipart parts, hashing it in JS, then its own bytes.
    const one = fresh();
    const two = fresh();
    let secondLocation = await patch(await start(), one, { "Content-Length": String(one.length), "Content-Range": `0-${one.length - 1}` });
    paths.second.push(
      await measure(async () => {
        secondLocation = await patch(secondLocation, two, { "Content-Length": String(two.length), "Content-Range": `${one.length}-${one.length + two.length - 1}` });
      }),
    );
    await finish(secondLocation, digestOf(one, two));
  }
  const bare = median(paths.bare) / CHUNK_MIB;
  /** @type {CpuRow[]} */
  const rows = [];
  for (const [name, label] of /** @type {const} */ ([
    ["streamed", "one request, length declared (streamed put, native SHA-256): skopeo/podman layer PATCH, first chunk of the push command"],
    ["chunked", "one request, chunked transfer (multipart completed in the request, native SHA-256)"],
    ["resumed", "resumed across requests (resumable JS SHA-256 + multipart parts): the push command's third and later chunks"],
    ["second", "second request after a first of the same size (copies the first request's object into parts, then as resumed): the push command's second chunk; per MiB it carries"],
  ])) {
    const gross = median(paths[name]) / CHUNK_MIB;
    rows.push({ path: label, gross, bare, net: Math.max(gross - bare, 0), chunkAtLimitMs: Math.max(gross - bare, 0) * (DEFAULT_LIMIT / MiB) });
  }

  // Token requests: sequential, each a new TLS connection, beside the trivial route under the same conditions.
  const tokenUrl = `${url}/token?service=edge-registry&scope=repository:${repository}:pull`;
  /** @type {number[]} */
  const tokenRuns = [];
  /** @type {number[]} */
  const pingRuns = [];
  for (let run = 0; run < runs; run++) {
    pingRuns.push(await measure(async () => {
      for (let i = 0; i < TOKEN_REQUESTS; i++) expect(await request(`${url}/bench/ping`), 200, "ping");
    }));
    tokenRuns.push(await measure(async () => {
      for (let i = 0; i < TOKEN_REQUESTS; i++) expect(await request(tokenUrl, { headers: { Authorization: basic } }), 200, "token");
    }));
  }
  const token_ = { gross: median(tokenRuns) / TOKEN_REQUESTS, ping: median(pingRuns) / TOKEN_REQUESTS };
  return { rows, token: { ...token_, net: Math.max(token_.gross - token_.ping, 0) }, runs, chunkMiB: CHUNK_MIB, tokenRequests: TOKEN_REQUESTS };
}

/**
 * The CPU table as a Markdown section for BENCHMARKS.md.
 * @param {CpuResult} result
 * @param {string} note
 * @returns {string}
 */
export function cpuMarkdown(result, note) {
  const f = (/** @type {number} */ value) => value.toFixed(2);
  return [
    "## CPU per MiB uploaded and per token request",
    "",
    `${note} Method: utime + stime of the workerd processes (/proc/<pid>/stat, 10 ms ticks) around each request sequence, ` +
      `median of ${result.runs} runs of ${result.chunkMiB} MiB per upload path (a fresh blob each) and of ${result.tokenRequests} sequential ` +
      "token requests. Local workerd has no per-request CPU account, and these processes also do what production does not bill " +
      "to a Worker (TLS and HTTP in wrangler's proxy, the local R2 and Durable Object simulators writing to disk): the same bytes " +
      "put through the bench's bare route (one streamed R2 put, no hashing) are subtracted, and `/bench/ping` from the token " +
      "requests. The net figure estimates the Worker's own CPU; the gross one bounds it from above.",
    "",
    "| upload path | gross CPU ms/MiB | bare put ms/MiB | net ms/MiB | net ms for a 100 MB chunk |",
    "|---|---|---|---|---|",
    ...result.rows.map((row) => `| ${row.path} | ${f(row.gross)} | ${f(row.bare)} | ${f(row.net)} | ${row.chunkAtLimitMs.toFixed(0)} |`),
    "",
    `Token request (service account, Basic, one scope): ${f(result.token.gross)} ms gross, /bench/ping ${f(result.token.ping)} ms, ` +
      `net ${f(result.token.net)} ms per request.`,
    "",
  ].join("\n");
}

/**
 * `ctx`: { url, host, creds (user:secret that may push bench/*), layout (an OCI layout with one 1 GiB layer),
 * workdir, cli (bin/edge-registry.mjs), sh (command, args) → { stdout, seconds }, rssKiB() (workerd RSS now),
 * workerUrl (wrangler dev behind the front), request, download (url) → { bytes, seconds } }.
 * @param {object} ctx
 * @param {string} ctx.url
 * @param {string} ctx.workerUrl
 * @param {string} ctx.host
 * @param {string} ctx.creds
 * @param {string} ctx.layout
 * @param {string} ctx.workdir
 * @param {(command: string, args: string[]) => { stdout: string, seconds: number }} ctx.sh
 * @param {() => number} ctx.rssKiB
 * @param {string} ctx.cli
 * @param {BenchRequest} ctx.request
 * @param {(url: string) => Promise<{ bytes: number, seconds: number }>} ctx.download
 * @returns {Promise<LargeResult>}
 */
export async function measureLargeLayer(ctx) {
  const { url, workerUrl, host, creds, layout, workdir, sh, rssKiB, cli, request, download } = ctx;
  const [user, password] = [creds.slice(0, creds.indexOf(":")), creds.slice(creds.indexOf(":") + 1)];
  const repository = `bench/large-${Date.now().toString(36)}`;
  const baseline = rssKiB();
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, rssKiB())), 100);
  let stdout = "";
  try {
    // Spawned, not run synchronously: the RSS sampler keeps running during the push.
    const child = spawn("node", [cli, "push", "--registry", url, "--user", user, "--password-stdin", "--json", "--chunk-size", String(DEFAULT_LIMIT), `oci:${layout}:v1`, `${repository}:v1`], {
      env: { ...process.env, XDG_CACHE_HOME: join(workdir, "push-cache") },
      stdio: ["pipe", "pipe", "inherit"],
    });
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stdin.end(password);
    const code = await new Promise((resolve) => child.on("close", resolve));
    if (code !== 0) throw new Error(`edge-registry push exited with ${code}`);
  } finally {
    clearInterval(sampler);
  }
  /** @type {{ seconds: number, blobs: { digest: string, size: number, chunks: number }[] }} the push command's --json summary */
  const summary = JSON.parse(stdout);
  const target = join(workdir, "pulled-large");
  rmSync(target, { recursive: true, force: true });
  const pulled = sh("skopeo", ["copy", "--src-tls-verify=false", "--src-creds", creds, `docker://${host}/${repository}:v1`, `dir:${target}`]);
  // Every pulled file against its digest.
  /** @type {{ config: { digest: string }, layers: { digest: string }[] }} */
  const manifest = JSON.parse(readFileSync(join(target, "manifest.json"), "utf8"));
  for (const blob of [manifest.config, ...manifest.layers]) {
    const hash = createHash("sha256");
    hash.update(readFileSync(join(target, blob.digest.slice(7))));
    if (`sha256:${hash.digest("hex")}` !== blob.digest) throw new Error(`pulled ${blob.digest} does not verify`);
  }
  rmSync(target, { recursive: true, force: true });
  const layer = summary.blobs.reduce((a, b) => (a.size > b.size ? a : b));
  // The layer's signed-URL download alone, through the front and straight from wrangler dev: what the front costs.
  const basic = `Basic ${Buffer.from(creds).toString("base64")}`;
  const token = JSON.parse((await request(`${url}/token?service=edge-registry&scope=repository:${repository}:pull`, { headers: { Authorization: basic } })).body.toString()).token;
  const redirect = await request(`${url}/v2/${repository}/blobs/${layer.digest}`, { headers: { Authorization: `Bearer ${token}` } });
  const signed = new URL(/** @type {string} the 307's Location */ (redirect.headers.location), url);
  const throughFront = await download(signed.toString());
  const direct = await download(`${workerUrl}${signed.pathname}${signed.search}`);
  for (const fetched of [throughFront, direct]) if (fetched.bytes !== layer.size) throw new Error(`blob download returned ${fetched.bytes} bytes`);
  return {
    downloadFrontSeconds: throughFront.seconds,
    downloadDirectSeconds: direct.seconds,
    layerBytes: layer.size,
    chunks: layer.chunks,
    pushSeconds: summary.seconds,
    pullSeconds: pulled.seconds,
    rssGrowthMiB: (peak - baseline) / 1024,
    rssPeakMiB: peak / 1024,
  };
}

/**
 * The large-layer figures as a Markdown section for BENCHMARKS.md.
 * @param {LargeResult} result
 * @param {string} note
 * @returns {string}
 */
export function largeMarkdown(result, note) {
  const gib = (result.layerBytes / 1024 ** 3).toFixed(2);
  return [
    "## A 1 GiB layer through the push command",
    "",
    `${note} One incompressible layer of ${result.layerBytes} bytes (${gib} GiB), pushed by \`edge-registry push\` in chunks of the default ` +
      `limit (100,000,000 bytes: ${result.chunks} chunks, one after another, each through the front that enforces the limit) and pulled back by ` +
      "`skopeo copy` into a `dir:` target, every digest verified. RSS: the workerd processes, sampled every 100 ms during the push.",
    "",
    "| push (edge-registry push) | pull (skopeo copy) | workerd RSS growth during the push | workerd RSS peak |",
    "|---|---|---|---|",
    `| ${result.pushSeconds.toFixed(1)} s | ${result.pullSeconds.toFixed(1)} s | ${result.rssGrowthMiB.toFixed(0)} MiB | ${result.rssPeakMiB.toFixed(0)} MiB |`,
    "",
    `The layer's signed-URL download alone: ${result.downloadFrontSeconds.toFixed(1)} s through the front, ` +
      `${result.downloadDirectSeconds.toFixed(1)} s straight from wrangler dev. The layer is a multipart object (the push command's ` +
      "chunks after the first go to parts), which local R2 reads far more slowly than the one-put objects of the skopeo figures " +
      "above; the RSS is every workerd process of wrangler dev, the local R2 and Durable Object simulators included, not one isolate.",
    "",
  ].join("\n");
}

/** Replaces the section headed `heading` (up to the next `## `) in markdown, or appends it. */

export const CPU_HEADING = "## CPU per MiB uploaded and per token request";
export const LARGE_HEADING = "## A 1 GiB layer through the push command";

/** Whether a layout was fully written before (its index.json is written last). */
export const layoutReady = (/** @type {string} */ dir) => existsSync(join(dir, "index.json"));
