// @ts-check
// One HTTP(S) request with the whole answer read into a buffer: the CLI's admin calls, the end-to-end tests
// and the benchmark use it (a local registry has a self-signed certificate: `rejectUnauthorized: false`).
import http from "node:http";
import https from "node:https";

/**
 * @typedef {object} RequestOptions
 * @property {string} [method]
 * @property {Record<string, string | number>} [headers]
 * @property {string | Buffer | NodeJS.ReadableStream} [body] a stream is piped; a string or buffer is sent whole
 * @property {string} [auth] `user:password` for Basic authentication
 * @property {boolean} [rejectUnauthorized] verify the server's certificate (default true)
 * @property {http.Agent | false} [agent] default: no agent (a new connection per request)
 * @property {number} [idleTimeoutMs] fail when the connection is idle this long (default: never)
 */

/**
 * @typedef {object} BufferedResponse
 * @property {number} status
 * @property {import("node:http").IncomingHttpHeaders} headers
 * @property {Buffer} body
 */

/**
 * @param {string | URL} url
 * @param {RequestOptions} [options]
 * @returns {Promise<BufferedResponse>}
 */
export function httpsRequest(url, options = {}) {
  const target = new URL(url);
  const transport = target.protocol === "http:" ? http : https;
  const method = options.method ?? "GET";
  return new Promise((resolve, reject) => {
    const request = transport.request(
      target,
      {
        method,
        headers: options.headers ?? {},
        agent: options.agent ?? false,
        ...(options.auth !== undefined ? { auth: options.auth } : {}),
        rejectUnauthorized: options.rejectUnauthorized ?? true,
      },
      (response) => {
        /** @type {Buffer[]} */
        const chunks = [];
        response.on("data", (chunk) => chunks.push(chunk));
        response.on("error", reject);
        response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }));
      },
    );
    request.on("error", reject);
    const idle = options.idleTimeoutMs;
    if (idle) request.setTimeout(idle, () => request.destroy(new Error(`${method} ${target}: no activity for ${idle / 1000} s`)));
    const body = options.body;
    if (body !== undefined && typeof body !== "string" && !Buffer.isBuffer(body)) body.pipe(request);
    else request.end(body);
  });
}

/** JSON of a buffered answer, or undefined when it is empty or not JSON. @param {Buffer} body */
export function jsonBody(body) {
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
}
