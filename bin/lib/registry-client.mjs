// @ts-check
// A minimal OCI distribution client for `edge-registry push`: the Docker token flow (Basic credentials →
// the realm named by /v2/'s challenge → a Bearer token, renewed before it expires), and one-shot requests
// whose bodies are buffers or byte ranges of a file.
import { createReadStream, existsSync, readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { homedir } from "node:os";
import { join } from "node:path";

/** A network failure: worth retrying. */
export class NetworkError extends Error {}
/** The registry refused: a status and its OCI error text. */
export class RegistryRefusal extends Error {
  constructor(/** @type {string} */ message, /** @type {number} */ status) {
    super(message);
    this.status = status;
  }
}

/**
 * @typedef {{ status: number, headers: import("node:http").IncomingHttpHeaders, body: Buffer }} Reply
 * @typedef {{ username: string, password: string, from: string }} Credentials
 */

/** The OCI error text of a reply, for messages (never the request's credentials). */
export function errorText(/** @type {Reply} */ reply) {
  try {
    const parsed = JSON.parse(reply.body.toString("utf8"));
    const errors = parsed.errors ?? (parsed.error ? [parsed.error] : []);
    if (errors.length > 0) return errors.map((/** @type {any} */ e) => `${e.code ?? "ERROR"}: ${e.message ?? e.error_description ?? ""}`).join("; ");
  } catch {
    // not JSON
  }
  return `HTTP ${reply.status}`;
}

/** `Bearer realm="…",service="…"` → its parameters. */
function challengeParameters(/** @type {string} */ header) {
  /** @type {Record<string, string>} */
  const parameters = {};
  for (const match of header.replace(/^Bearer\s+/i, "").matchAll(/([a-zA-Z_]+)="([^"]*)"/g)) parameters[/** @type {string} */ (match[1]).toLowerCase()] = /** @type {string} */ (match[2]);
  return parameters;
}

/**
 * Stored credentials for `host` from podman's or docker's auth files (containers-auth.json(5)), first match
 * in: --authfile, $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json,
 * $DOCKER_CONFIG/config.json or ~/.docker/config.json. Only inline `auth` entries (no credential helpers).
 * @param {string} host
 * @param {string | undefined} authfile
 * @returns {Credentials | undefined}
 */
export function storedCredentials(host, authfile) {
  const files = [
    authfile,
    process.env.REGISTRY_AUTH_FILE,
    process.env.XDG_RUNTIME_DIR && join(process.env.XDG_RUNTIME_DIR, "containers", "auth.json"),
    join(process.env.XDG_CONFIG_HOME ?? join(homedir(), ".config"), "containers", "auth.json"),
    join(process.env.DOCKER_CONFIG ?? join(homedir(), ".docker"), "config.json"),
  ];
  for (const file of files) {
    if (!file || !existsSync(file)) continue;
    /** @type {Record<string, { auth?: string }>} */
    let auths;
    try {
      auths = JSON.parse(readFileSync(file, "utf8")).auths ?? {};
    } catch {
      continue;
    }
    for (const [key, entry] of Object.entries(auths)) {
      // Keys are `host[:port]`, sometimes with a scheme or a path (docker's `https://index.docker.io/v1/`).
      const keyHost = key.replace(/^[a-z]+:\/\//, "").replace(/\/.*$/, "");
      if (keyHost !== host || !entry.auth) continue;
      const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), from: file };
    }
  }
  return undefined;
}

export class RegistryClient {
  /**
   * @param {{ registry: URL, repository: string, mountFrom: string[], credentials?: Credentials, tlsVerify: boolean }} options
   */
  constructor(options) {
    this.registry = options.registry;
    this.repository = options.repository;
    this.mountFrom = options.mountFrom;
    this.credentials = options.credentials;
    this.tlsVerify = options.tlsVerify;
    /** @type {string | undefined} */
    this.token = undefined;
    this.tokenExpiresAt = 0;
    /** @type {Record<string, string> | undefined} */
    this.challenge = undefined;
    /** @type {{ type: string, name: string, actions: string[] }[]} */
    this.granted = [];
  }

  /** Resolves a path or a Location header against the registry. */
  url(/** @type {string} */ pathOrUrl) {
    return new URL(pathOrUrl, this.registry);
  }

  /**
   * One HTTP exchange. `body` is a buffer, or a byte range of a file streamed with `onData` seeing each
   * piece as it is read (for hashing and progress). Network failures reject with NetworkError.
   * @param {string} method
   * @param {URL} url
   * @param {{ headers?: Record<string, string>, body?: Buffer | { path: string, start: number, end: number, onData?: (chunk: Buffer) => void }, timeoutMs?: number }} [options]
   * @returns {Promise<Reply>}
   */
  exchange(method, url, options = {}) {
    const transport = url.protocol === "http:" ? http : https;
    const body = options.body;
    const headers = { ...options.headers };
    if (Buffer.isBuffer(body)) headers["Content-Length"] = String(body.length);
    else if (body) headers["Content-Length"] = String(body.end - body.start);
    else if (["PUT", "POST", "PATCH"].includes(method)) headers["Content-Length"] = "0";
    return new Promise((resolve, reject) => {
      /** @type {import("node:fs").ReadStream | undefined} */
      let file;
      const request = transport.request(url, { method, headers, agent: false, rejectUnauthorized: this.tlsVerify }, (response) => {
        /** @type {Buffer[]} */
        const chunks = [];
        response.on("data", (chunk) => chunks.push(chunk));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }));
        response.on("error", (error) => reject(new NetworkError(`${method} ${url.pathname}: ${error.message}`)));
      });
      request.setTimeout(options.timeoutMs ?? 120_000, () => request.destroy(new Error("no answer for 120 s")));
      request.on("error", (error) => {
        file?.destroy();
        reject(new NetworkError(`${method} ${url.pathname}: ${error.message}`));
      });
      if (body === undefined) request.end();
      else if (Buffer.isBuffer(body)) request.end(body);
      else if (body.end === body.start) request.end();
      else {
        file = createReadStream(body.path, { start: body.start, end: body.end - 1, highWaterMark: 1 << 20 });
        if (body.onData) file.on("data", (chunk) => body.onData?.(/** @type {Buffer} */ (chunk)));
        file.on("error", (error) => request.destroy(error));
        file.pipe(request);
      }
    });
  }

  /** Scopes this push asks for: push and pull on the destination, pull on mount sources. */
  scopes() {
    return [`repository:${this.repository}:pull,push`, ...this.mountFrom.map((name) => `repository:${name}:pull`)];
  }

  /** Gets (or renews) a token: `GET /v2/` for the challenge, then the realm with Basic credentials. */
  async authenticate() {
    if (!this.challenge) {
      const probe = await this.exchange("GET", this.url("/v2/"));
      if (probe.status === 200) {
        this.challenge = {};
        return;
      }
      const header = probe.headers["www-authenticate"];
      if (probe.status !== 401 || typeof header !== "string" || !/^Bearer /i.test(header)) {
        throw new RegistryRefusal(`${this.registry.origin}/v2/ answered ${probe.status}; is this a registry?`, probe.status);
      }
      this.challenge = challengeParameters(header);
    }
    if (!this.challenge.realm) return;
    const realm = new URL(this.challenge.realm);
    if (this.challenge.service) realm.searchParams.set("service", this.challenge.service);
    for (const scope of this.scopes()) realm.searchParams.append("scope", scope);
    /** @type {Record<string, string>} */
    const headers = {};
    if (this.credentials) {
      headers.Authorization = `Basic ${Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString("base64")}`;
    }
    const reply = await this.exchange("GET", realm, { headers });
    if (reply.status !== 200) {
      const who = this.credentials ? `as ${this.credentials.username}` : "anonymously";
      throw new RegistryRefusal(`login ${who} refused: ${errorText(reply)}`, reply.status);
    }
    const answer = JSON.parse(reply.body.toString("utf8"));
    this.token = answer.token ?? answer.access_token;
    // Renew 30 s before expiry; the token spec's default lifetime is 60 s when none is given.
    this.tokenExpiresAt = Date.now() + ((answer.expires_in ?? 60) - 30) * 1000;
    try {
      const payload = JSON.parse(Buffer.from(String(this.token).split(".")[1] ?? "", "base64url").toString("utf8"));
      this.granted = Array.isArray(payload.access) ? payload.access : [];
    } catch {
      this.granted = [];
    }
  }

  /** Whether the token grants `action` on repository `name` (its `access` claim). */
  grants(/** @type {string} */ name, /** @type {string} */ action) {
    return this.granted.some((entry) => entry.type === "repository" && entry.name === name && entry.actions.includes(action));
  }

  /** @returns {Promise<Record<string, string>>} */
  async authorization() {
    if (this.challenge === undefined || (this.challenge.realm && Date.now() > this.tokenExpiresAt)) await this.authenticate();
    return this.token ? { Authorization: `Bearer ${this.token}` } : {};
  }

  /**
   * A request with the current token; a 401 renews it once. Bodies here are buffers (replayable).
   * @param {string} method
   * @param {string} pathOrUrl
   * @param {{ headers?: Record<string, string>, body?: Buffer }} [options]
   */
  async request(method, pathOrUrl, options = {}) {
    for (let attempt = 0; ; attempt++) {
      const reply = await this.exchange(method, this.url(pathOrUrl), { ...options, headers: { ...(await this.authorization()), ...options.headers } });
      if (reply.status !== 401 || attempt > 0) return reply;
      this.tokenExpiresAt = 0;
    }
  }

  /**
   * Sends a byte range of a file as one PATCH chunk. Not retried here: the caller resumes from the
   * session's Range.
   * @param {string} location
   * @param {{ path: string, start: number, end: number, contentRange: string, onData: (chunk: Buffer) => void }} chunk
   */
  async patch(location, chunk) {
    return this.exchange("PATCH", this.url(location), {
      headers: { ...(await this.authorization()), "Content-Type": "application/octet-stream", "Content-Range": chunk.contentRange },
      body: chunk,
      timeoutMs: 300_000,
    });
  }
}

/** Retries `work` on network failures and 429/5xx answers, with exponential backoff (0.5 s … 8 s). */
export async function withRetry(/** @type {() => Promise<Reply>} */ work, attempts = 6) {
  for (let attempt = 1; ; attempt++) {
    try {
      const reply = await work();
      if ((reply.status === 429 || reply.status >= 500) && attempt < attempts) {
        await sleep(backoffMs(attempt));
        continue;
      }
      return reply;
    } catch (error) {
      if (!(error instanceof NetworkError) || attempt >= attempts) throw error;
      await sleep(backoffMs(attempt));
    }
  }
}

export const backoffMs = (/** @type {number} */ attempt) => Math.min(500 * 2 ** (attempt - 1), 8000);
export const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms));
