// The local stand-in for Cloudflare's edge in front of `wrangler dev`: it refuses a request body over the zone
// plan's limit before the Worker sees the request, as production does (platform.md §3: "Max request body",
// exceeding it → 413), so a push that fails in production fails locally first. The Worker's own 413
// (src/registry/uploads.ts) stays as the second line.
//
// - A declared Content-Length over the limit: 413 at once; nothing is forwarded.
// - A body of undeclared length (chunked): forwarded as it streams, counted; once past the limit the body to
//   the Worker ends there (the Worker, holding bodies to the same limit, saves none of it) and the client gets
//   413 from the front.
// - Everything else passes through untouched, streamed both ways (no body is buffered): method, path, every
//   header including Host (the Worker reads the request's hostname: location A is 127.0.0.1, B localhost),
//   and the Worker's answers, redirects included.
//
// The 413 carries Cloudflare's status and `Server: cloudflare`, and is sent as soon as the limit is passed. Its
// body is an OCI error (JSON) naming the limit and the push command: the answer a zone gets with the Custom Error
// Rule in README "Limits" (production's default body is an HTML page saying "413 Request Entity Too Large").
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

/** Hop-by-hop headers (RFC 9110 §7.6.1): each connection has its own; Node frames both sides itself. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "expect"]);
/** After a 413, the rest of the client's body is read and dropped for at most this long, so the client reads the answer. */
const LINGER_MS = 30_000;

/** The OCI error body of the edge's 413, in the registry's words (the Worker's own 413 says the same). */
/** @param {number} limit */
export function bodyTooLargeError(limit) {
  return {
    errors: [
      {
        code: "SIZE_INVALID",
        message:
          `request body over this registry's limit of ${limit} bytes per request (Cloudflare's request body limit for the zone's plan, ` +
          `MAX_REQUEST_BODY_BYTES); push images with layers over it with \`npx edge-registry push SOURCE REPOSITORY:TAG\`, ` +
          `which sends each blob in chunks within the limit`,
        detail: { limit },
      },
    ],
  };
}

/** A self-signed certificate for 127.0.0.1 and localhost, made once per front (openssl, EC P-256). */
function selfSignedCertificate() {
  const dir = mkdtempSync(join(tmpdir(), "edge-registry-front-"));
  try {
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650",
      "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
    ], { stdio: "ignore" });
    return { key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Listens on https://127.0.0.1:`port` and forwards to the Worker at https://127.0.0.1:`upstreamPort`.
 * Returns `{ close }`; `refused()` counts the requests it answered 413.
 * @param {{ port: number, upstreamPort: number, maxRequestBodyBytes: number, log?: (line: string) => void }} options
 */
export async function startBodyLimitFront({ port, upstreamPort, maxRequestBodyBytes, log = () => {} }) {
  const limit = maxRequestBodyBytes;
  const upstreamAgent = new https.Agent({ keepAlive: true, rejectUnauthorized: false, maxSockets: 64 });
  let refused = 0;

  /**
   * @param {import("node:http").IncomingMessage} req @param {import("node:http").ServerResponse} res
   * @param {import("node:http").ClientRequest} [upstream]
   */
  function refuse(req, res, upstream) {
    refused++;
    log(`[body-limit-front] 413 ${req.method} ${req.url}: body over ${limit} bytes (MAX_REQUEST_BODY_BYTES)`);
    // The Worker has the bytes up to and past the limit: ending its body here, it refuses them too (its own
    // 413, nothing saved), an answer nobody reads. Cutting the connection instead is no refusal under wrangler
    // dev: a forwarded body broken off reaches the Worker as complete.
    upstream?.end();
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = JSON.stringify(bodyTooLargeError(limit));
    // No `Connection: close`: Node would then close the socket while the client is still sending, and the
    // client (skopeo) would see a broken pipe instead of this answer. The rest of the body is read and dropped
    // (never forwarded, never kept); a body still coming after LINGER_MS is cut off.
    res.writeHead(413, "Request Entity Too Large", {
      "Content-Type": "application/json",
      "Content-Length": Buffer.byteLength(body),
      Server: "cloudflare",
    });
    res.end(body);
    const linger = setTimeout(() => req.socket.destroy(), LINGER_MS);
    linger.unref();
    req.on("end", () => clearTimeout(linger));
    req.on("close", () => clearTimeout(linger));
    req.resume();
  }

  /** @param {import("node:http").IncomingMessage} req @param {import("node:http").ServerResponse} res */
  function handle(req, res) {
    const declared = req.headers["content-length"];
    // platform.md §3: a body over the plan's limit never reaches the Worker.
    if (declared !== undefined && Number(declared) > limit) return refuse(req, res);
    const headers = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      if (!HOP_BY_HOP.has(req.rawHeaders[i].toLowerCase())) headers.push(req.rawHeaders[i], req.rawHeaders[i + 1]);
    }
    const upstream = https.request({
      host: "127.0.0.1",
      port: upstreamPort,
      method: req.method,
      path: req.url,
      headers,
      agent: upstreamAgent,
      // The Host header is forwarded as the client sent it; TLS to the local Worker needs no name check.
      servername: "localhost",
      setHost: false,
    });
    upstream.on("response", (answer) => {
      const answerHeaders = [];
      for (let i = 0; i < answer.rawHeaders.length; i += 2) {
        if (!HOP_BY_HOP.has(answer.rawHeaders[i].toLowerCase())) answerHeaders.push(answer.rawHeaders[i], answer.rawHeaders[i + 1]);
      }
      // Already answered (the body went over the limit): the Worker's own answer is dropped.
      if (res.headersSent || res.destroyed) {
        answer.resume();
        return;
      }
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, answerHeaders);
      answer.pipe(res);
      answer.on("error", () => res.destroy());
    });
    upstream.on("error", (error) => {
      if (res.headersSent || res.destroyed) {
        res.destroy();
        return;
      }
      const body = `the local Worker did not answer: ${error.message}\n`;
      res.writeHead(502, { "Content-Type": "text/plain", "Content-Length": Buffer.byteLength(body) });
      res.end(body);
    });
    // The client went away before the answer was complete: so does the request to the Worker.
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    let received = 0;
    req.on("data", (/** @type {Buffer} */ chunk) => {
      received += chunk.length;
      const more = upstream.write(chunk);
      // platform.md §3: a streamed body is held to the same limit, counted as it arrives.
      if (received > limit) {
        req.removeAllListeners("data");
        refuse(req, res, upstream);
      } else if (!more) {
        req.pause();
        upstream.once("drain", () => req.resume());
      }
    });
    req.on("end", () => {
      if (received <= limit) upstream.end();
    });
    req.on("error", () => upstream.destroy());
  }

  const server = https.createServer({ ...selfSignedCertificate() }, handle);
  // Large uploads take minutes: no request or idle timeout of the front's own (production has none for HTTP).
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.setTimeout(0);
  server.keepAliveTimeout = 65_000;
  // Expect: 100-continue with a declared body over the limit is refused before the client sends it.
  server.on("checkContinue", (req, res) => {
    const declared = req.headers["content-length"];
    if (declared !== undefined && Number(declared) > limit) return refuse(req, res);
    res.writeContinue();
    handle(req, res);
  });
  /** @type {Promise<void>} */
  const listening = new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  await listening;
  return {
    refused: () => refused,
    close: () =>
      /** @type {Promise<void>} */ (new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        upstreamAgent.destroy();
      })),
  };
}

/** MAX_REQUEST_BODY_BYTES as `wrangler dev` will give it to the Worker: `--var`, else the env file, else the config's [vars]. */
/** @param {{ configPath: string, envFile: string, vars?: Record<string, string>, fallback?: number }} options */
export function resolveRequestBodyLimit({ configPath, envFile, vars = {}, fallback = 100_000_000 }) {
  const name = "MAX_REQUEST_BODY_BYTES";
  if (vars[name] !== undefined) return Number(vars[name]);
  try {
    const line = readFileSync(envFile, "utf8").split("\n").find((entry) => entry.trim().startsWith(`${name}=`));
    if (line) return Number(line.slice(line.indexOf("=") + 1).trim().replace(/^"|"$/g, ""));
  } catch {
    // no env file yet
  }
  // The top-level [vars] table of the TOML config (environments are not used by the local server).
  let section = "";
  for (const raw of readFileSync(configPath, "utf8").split("\n")) {
    const line = raw.trim();
    const header = /^\[+\s*([^\]]+?)\s*\]+/.exec(line);
    if (header) {
      section = header[1] ?? "";
      continue;
    }
    const match = new RegExp(`^${name}\\s*=\\s*"?(\\d+)"?`).exec(line);
    if (section === "vars" && match) return Number(match[1]);
  }
  return fallback;
}

/**
 * Run as a process of its own (startWranglerDev does): `node scripts/body-limit-front.mjs PORT UPSTREAM_PORT
 * LIMIT`. A process of its own keeps serving while the process that started it blocks (a benchmark running
 * clients synchronously). It prints "listening" once it accepts connections, logs refusals on stdout, and
 * exits when its stdin closes (the process that started it is gone) or on SIGTERM.
 */
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [port, upstreamPort, limit] = process.argv.slice(2).map(Number);
  const front = await startBodyLimitFront({ port, upstreamPort, maxRequestBodyBytes: limit, log: (/** @type {string} */ line) => console.log(line) });
  const stop = async () => {
    await front.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.stdin.on("end", stop);
  process.stdin.on("error", stop);
  process.stdin.resume();
  console.log("listening");
}
