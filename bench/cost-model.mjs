// The cost model of `npm run bench` (issue 11 item 7): billable operations per user-level operation,
// counted by the bench Worker's wrapped bindings (bench/billing.ts) and read from its /bench/costs route.
// Each operation runs alone: counters are reset, the operation runs, and the counters are read once they
// have stopped changing (work the Worker finishes after answering, e.g. waitUntil or a ledger's publication).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withSection } from "./markdown.mjs";

export const COST_HEADING = "## Billable operations per user-level operation";

export const COST_LAYERS = 3;

/**
 * The billable operations the bench Worker counted (the `Costs` of bench/billing.ts, as /bench/costs answers).
 * @typedef {object} Costs
 * @property {number} kvRead
 * @property {number} kvWrite
 * @property {number} kvDelete
 * @property {number} kvList
 * @property {number} doRequest
 * @property {number} r2ClassA
 * @property {number} r2ClassB
 * @property {number} r2Free
 * @property {Record<string, number>} byMethod per method ("kv.get", "r2.put", "do.REPOSITORY_LEDGER.commit", …)
 */

/** @typedef {Exclude<keyof Costs, "byMethod" | "r2Free">} CostColumn */

/** One row of the cost table: the counted operations of one user-level operation. @typedef {Costs & { operation: string, target: string }} CostRow */

/** One buffered answer of `request`. @typedef {import("../bin/lib/https-request.mjs").BufferedResponse} BufferedResponse */

/**
 * The bench's request: one HTTPS request to the local Worker, its answer buffered.
 * @typedef {(url: string, options?: { method?: string, headers?: Record<string, string | number>, body?: import("../bin/lib/https-request.mjs").RequestOptions["body"] }) => Promise<BufferedResponse>} BenchRequest
 */

/** @type {[CostColumn, string][]} */
const COLUMNS = [
  ["kvRead", "KV reads"],
  ["kvWrite", "KV writes"],
  ["kvDelete", "KV deletes"],
  ["kvList", "KV lists"],
  ["doRequest", "DO requests"],
  ["r2ClassA", "R2 class A"],
  ["r2ClassB", "R2 class B"],
];

const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs each user-level operation against the bench Worker at `url` and returns one row per operation.
 * `deps`: request(url, {method, headers}) → {status, headers, body}; skopeo(args) runs a skopeo command and
 * throws on failure; clearClientCaches(); layout: an OCI layout directory holding an image of COST_LAYERS
 * layers tagged v1; host: host:port as clients name it; basic: the Authorization header of a service account
 * allowed pull, push and delete on `bench/`; creds: its user:secret.
 * @param {object} deps
 * @param {string} deps.url
 * @param {string} deps.host
 * @param {string} deps.basic
 * @param {string} deps.creds
 * @param {BenchRequest} deps.request
 * @param {(args: string[]) => unknown} deps.skopeo
 * @param {() => void} deps.clearClientCaches
 * @param {string} deps.layout
 * @returns {Promise<CostRow[]>}
 */
export async function measureCosts({ url, host, basic, creds, request, skopeo, clearClientCaches, layout }) {
  /** @returns {Promise<Costs>} */
  const costsNow = async () => JSON.parse((await request(`${url}/bench/costs`)).body.toString());
  /** @param {() => Promise<unknown>} operation @returns {Promise<Costs>} */
  const measure = async (operation) => {
    await request(`${url}/bench/costs`, { method: "DELETE" });
    await operation();
    let previous = JSON.stringify(await costsNow());
    for (;;) {
      await sleep(400);
      const current = JSON.stringify(await costsNow());
      if (current === previous) return JSON.parse(current);
      previous = current;
    }
  };
  /** @param {BufferedResponse} response @param {number} expected @param {string} what */
  const ok = (response, expected, what) => {
    if (response.status !== expected) throw new Error(`${what}: expected ${expected}, got ${response.status}: ${response.body.toString().slice(0, 300)}`);
    return response;
  };
  const repository = `bench/cost-${Date.now().toString(36)}`;
  /** @type {CostRow[]} */
  const rows = [];
  /** @param {string} operation @param {Costs} counted @param {(counted: Costs) => string} [target] */
  const add = (operation, counted, target) => {
    rows.push({ operation, ...counted, target: target?.(counted) ?? "—" });
    console.log(`cost: ${operation}: ${COLUMNS.map(([field, name]) => `${name} ${counted[field]}`).join(", ")}`);
  };

  const tokenUrl = `${url}/token?service=edge-registry&scope=repository:${repository}:pull`;
  // The account was just created in this location, which then reads it from the identity ledger for 70 s
  // (src/storage/recent-writes.ts: KV may not read its own writes); the steady state is measured last.
  add("Token request (service account, 1 scope), within 70 s of the account's creation in this location", await measure(async () => ok(await request(tokenUrl, { headers: { Authorization: basic } }), 200, "token")));

  add(`skopeo push of a ${COST_LAYERS}-layer image (login, blobs, manifest by tag)`, await measure(async () => {
    clearClientCaches();
    skopeo(["copy", "--dest-tls-verify=false", "--dest-creds", creds, `oci:${layout}:v1`, `docker://${host}/${repository}:v1`]);
  }));

  // Pulls use a pull-only token, as a puller's client has; a push-capable token reads through the ledger (its
  // client must see its own writes), measured apart below.
  /** @param {string} actions @returns {Promise<string>} */
  const tokenWith = async (actions) =>
    JSON.parse(ok(await request(`${url}/token?service=edge-registry&scope=repository:${repository}:${actions}`, { headers: { Authorization: basic } }), 200, "token").body.toString()).token;
  const bearer = { Authorization: `Bearer ${await tokenWith("pull")}` };
  const writer = { Authorization: `Bearer ${await tokenWith("pull,push,delete")}` };
  const accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json";
  /** @type {{ layers: { digest: string }[] }} */
  let manifest;
  /** @type {string | string[] | undefined} */
  let digest;
  const pullByTag = async (authorization = bearer) => {
    const response = ok(await request(`${url}/v2/${repository}/manifests/v1`, { headers: { ...authorization, Accept: accept } }), 200, "manifest by tag");
    manifest = JSON.parse(response.body.toString());
    digest = response.headers["docker-content-digest"];
    for (const layer of manifest.layers) ok(await request(`${url}/v2/${repository}/blobs/${layer.digest}`, { headers: authorization }), 307, "blob redirect");
  };
  // The target of issue 11: a warm pull by tag costs at most N + 2 KV reads and no Durable Object request.
  /** @param {Costs} counted */
  const pullTarget = (counted) => {
    const pass = counted.kvRead <= COST_LAYERS + 2 && counted.doRequest === 0;
    return `≤ ${COST_LAYERS + 2} KV reads, 0 DO requests: ${pass ? "met" : "NOT met"}`;
  };
  add(`Pull by tag right after the push, in the pushing location, pull-only token (for 65 s the tag comes from the ledger, content by digest from KV)`, await measure(() => pullByTag()));
  // Past KV's staleness window the location reads KV again (src/storage/recent-writes.ts), and the isolate
  // no longer reads the just-created account from the identity ledger (src/storage/identity-store.ts).
  await new Promise((resolve) => setTimeout(resolve, 71_000));
  add(`Pull by tag, steady state (manifest + ${COST_LAYERS} blob redirects)`, await measure(() => pullByTag()));
  add(`Pull by tag, warm: the same again`, await measure(() => pullByTag()), pullTarget);
  add(`Pull by tag with a push-capable token (reads its own writes through the ledger)`, await measure(() => pullByTag(writer)));
  add("Pull by digest (manifest only)", await measure(async () => ok(await request(`${url}/v2/${repository}/manifests/${digest}`, { headers: { ...bearer, Accept: accept } }), 200, "manifest by digest")));
  add("Token request, steady state (first after the account's creation window)", await measure(async () => ok(await request(tokenUrl, { headers: { Authorization: basic } }), 200, "token")));
  add("Token request, steady state, repeated (the isolate's login cache, 10 s)", await measure(async () => ok(await request(tokenUrl, { headers: { Authorization: basic } }), 200, "token")));
  const pulled = mkdtempSync(join(tmpdir(), "edge-registry-bench-pull-"));
  add(`skopeo pull by tag (token, manifest, config, ${COST_LAYERS} layer downloads through signed URLs)`, await measure(async () => {
    clearClientCaches();
    skopeo(["copy", "--src-tls-verify=false", "--src-creds", creds, `docker://${host}/${repository}:v1`, `dir:${pulled}`]);
  }));
  rmSync(pulled, { recursive: true, force: true });
  add("Tag list", await measure(async () => ok(await request(`${url}/v2/${repository}/tags/list`, { headers: bearer }), 200, "tag list")));
  add("Delete of the manifest by digest (and its tag)", await measure(async () => ok(await request(`${url}/v2/${repository}/manifests/${digest}`, { method: "DELETE", headers: writer }), 202, "delete")));
  return rows;
}

/**
 * The cost table as a Markdown section for BENCHMARKS.md.
 * @param {CostRow[]} rows
 * @param {string} note
 * @returns {string}
 */
export function costMarkdown(rows, note) {
  /** @param {CostRow} row */
  const detail = (row) =>
    Object.entries(row.byMethod)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([method, n]) => `${method} ${n}`)
      .join(", ");
  return [
    COST_HEADING,
    "",
    `${note} Each figure is counted by wrapping the bench Worker's bindings (bench/billing.ts): KV reads (misses included), writes, deletes and ` +
      "lists; Durable Object requests (every fetch or RPC call on a stub); R2 class A (put, list, multipart create, upload part, " +
      "complete) and class B (get, head). R2 deletes and aborts are free. Work the Durable Objects do on a request's behalf counts " +
      `too. The image has ${COST_LAYERS} layers.`,
    "",
    `| user-level operation | ${COLUMNS.map(([, name]) => name).join(" | ")} | target | calls |`,
    `|---|${COLUMNS.map(() => "---:").join("|")}|---|---|`,
    ...rows.map((row) => `| ${row.operation} | ${COLUMNS.map(([field]) => row[field]).join(" | ")} | ${row.target} | ${detail(row)} |`),
    "",
  ].join("\n");
}

/**
 * Puts `section` into `markdown` in place of its previous version, or at the end.
 * @param {string} markdown
 * @param {string} section
 * @returns {string}
 */
export function withCostSection(markdown, section) {
  return withSection(markdown, COST_HEADING, section);
}
