// @ts-check
// `edge-registry push SOURCE DEST`: pushes an image in chunks that fit the registry's request body limit
// (README "Pushing large images", issue 13). Clients such as podman and skopeo send each layer as one
// request, which Cloudflare refuses over 100 MB (platform.md §3); this command sends PATCH chunks of at
// most the limit the registry advertises (OCI-Chunk-Max-Length), several blobs at a time, resumes a broken
// chunk (or a killed push) from the session's Range, and verifies every digest while reading.
import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { SourceError, openSource } from "./lib/image-source.mjs";
import { Progress, formatBytes } from "./lib/progress.mjs";
import { NetworkError, RegistryClient, RegistryRefusal, backoffMs, errorText, sleep, storedCredentials, withRetry } from "./lib/registry-client.mjs";

export const PUSH_USAGE = `usage: edge-registry push [options] SOURCE REPOSITORY[:TAG]

SOURCE (skopeo's transport syntax):
  oci:DIR[:TAG]             an OCI image layout directory (skopeo copy … oci:DIR:TAG, buildah push … oci:DIR)
  oci-archive:FILE[:TAG]    a tar of an OCI image layout
  docker-archive:FILE[:REF] what \`podman save\` / \`docker save\` write (REF: a RepoTag or @N if several)
REPOSITORY[:TAG] on the registry (TAG defaults to latest), e.g. acme/app:v1

options:
  --registry URL            registry (EDGE_REGISTRY_URL; default https://127.0.0.1:8787)
  --user NAME --password P  an account that may push; --password-stdin reads the password from stdin.
                            Without them: EDGE_REGISTRY_USER/EDGE_REGISTRY_PASSWORD, then the credentials podman
                            or docker stored for the registry (--authfile FILE, $REGISTRY_AUTH_FILE,
                            $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json,
                            ~/.docker/config.json), then (loopback registry) the admin in ./.dev.vars
  --tls-verify=false        accept the registry's certificate unverified (the local self-signed one; implied
                            for 127.0.0.1/localhost as in the admin commands; --tls-verify=true forces checks)
  --chunk-size SIZE         largest PATCH body (e.g. 50MB, 64MiB; default: the registry's OCI-Chunk-Max-Length,
                            else 95MB; never more than the registry's limit)
  --parallel N              blobs uploaded at once (default 3)
  --mount-from REPO         try a cross-repository mount from REPO first (repeatable; needs pull on it)
  --json                    print a machine-readable summary on stdout

A push that breaks off resumes where the registry's upload session stands when run again (sessions are
remembered in $XDG_CACHE_HOME/edge-registry/uploads, ~/.cache by default, for a day).
exit codes: 0 pushed, 1 the registry refused, 2 usage or source error, 3 could not reach the registry`;

const DEFAULT_CHUNK_BYTES = 95_000_000;
const DEFAULT_PARALLEL = 3;
/** Resume records older than this are stale: the registry drops sessions idle for a day (storage-schema.md). */
const RESUME_MAX_AGE_MS = 24 * 3600 * 1000;
const VALUE_FLAGS = new Set(["registry", "user", "password", "authfile", "chunk-size", "parallel", "mount-from"]);
const BOOLEAN_FLAGS = new Set(["password-stdin", "json", "help", "insecure", "tls-verify"]);

class UsageError extends Error {}

/** Whether the command line's first positional argument is `push` (global options may come first). */
export function isPushCommand(/** @type {string[]} */ argv) {
  for (let i = 0; i < argv.length; i++) {
    const arg = /** @type {string} */ (argv[i]);
    if (!arg.startsWith("--")) return arg === "push";
    if (!arg.includes("=") && !BOOLEAN_FLAGS.has(arg.slice(2))) i++;
  }
  return false;
}

/** @param {string[]} argv */
function parseArgs(argv) {
  /** @type {Record<string, string | boolean | string[]>} */
  const flags = { "mount-from": [] };
  /** @type {string[]} */
  const positional = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = /** @type {string} */ (argv[i]);
    if (!arg.startsWith("--")) {
      positional.push(arg);
      continue;
    }
    const [name = "", inline] = arg.slice(2).split(/=(.*)/s, 2);
    if (BOOLEAN_FLAGS.has(name)) {
      if (inline !== undefined && inline !== "true" && inline !== "false") throw new UsageError(`--${name} takes true or false, got ${inline}`);
      flags[name] = inline !== "false";
      continue;
    }
    if (!VALUE_FLAGS.has(name)) throw new UsageError(`unknown option --${name}`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    if (name === "mount-from") /** @type {string[]} */ (flags[name]).push(value);
    else flags[name] = value;
  }
  if (positional[0] === "push") positional.shift();
  return { flags, positional };
}

/** `95MB`, `64MiB`, `6291456` → bytes. */
export function parseSize(/** @type {string} */ text) {
  const match = /^(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?$/i.exec(text.trim());
  if (!match) throw new UsageError(`not a size: ${text} (use e.g. 6291456, 50MB, 64MiB)`);
  /** @type {Record<string, number>} */
  const units = { b: 1, kb: 1e3, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3 };
  return Math.floor(Number(match[1]) * (units[(match[2] ?? "b").toLowerCase()] ?? 1));
}

/** distribution-spec: repository path components and tags. */
const REPOSITORY_NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** `REPOSITORY[:TAG]`, optionally prefixed with `docker://` and the registry's host. */
function parseDestination(/** @type {string} */ text, /** @type {URL} */ registry) {
  let rest = text.replace(/^docker:\/\//, "");
  if (rest.startsWith(`${registry.host}/`)) rest = rest.slice(registry.host.length + 1);
  const slash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  const [repository, tag] = colon > slash ? [rest.slice(0, colon), rest.slice(colon + 1)] : [rest, "latest"];
  if (!REPOSITORY_NAME.test(repository)) throw new UsageError(`invalid repository name ${JSON.stringify(repository)} in ${text}`);
  if (!TAG.test(tag)) throw new UsageError(`invalid tag ${JSON.stringify(tag)} in ${text}`);
  return { repository, tag };
}

function isLoopback(/** @type {URL} */ url) {
  return ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname);
}

/**
 * @param {Record<string, any>} flags
 * @param {URL} registry
 * @returns {import("./lib/registry-client.mjs").Credentials | undefined}
 */
function resolveCredentials(flags, registry) {
  if (flags["password-stdin"] || flags.password !== undefined) {
    if (!flags.user) throw new UsageError("--password needs --user");
    const password = flags["password-stdin"] ? readFileSync(0, "utf8").replace(/\r?\n$/, "") : String(flags.password);
    return { username: String(flags.user), password, from: "the command line" };
  }
  if (flags.user) throw new UsageError("--user needs --password or --password-stdin");
  if (process.env.EDGE_REGISTRY_PASSWORD) {
    return { username: process.env.EDGE_REGISTRY_USER ?? "admin", password: process.env.EDGE_REGISTRY_PASSWORD, from: "EDGE_REGISTRY_PASSWORD" };
  }
  const stored = storedCredentials(registry.host, flags.authfile);
  if (stored) return stored;
  const devVars = join(process.cwd(), ".dev.vars");
  if (isLoopback(registry) && existsSync(devVars)) {
    const password = /^BOOTSTRAP_ADMIN_PASSWORD='([^']*)'$/m.exec(readFileSync(devVars, "utf8"))?.[1];
    if (password) return { username: "admin", password, from: ".dev.vars" };
  }
  return undefined;
}

/** Where interrupted upload sessions are remembered, per registry, repository and digest. */
class ResumeStore {
  constructor(/** @type {URL} */ registry, /** @type {string} */ repository) {
    this.dir = join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "edge-registry", "uploads");
    this.registry = registry.origin;
    this.repository = repository;
  }

  path(/** @type {string} */ digest) {
    const key = createHash("sha256").update(`${this.registry}\n${this.repository}\n${digest}`).digest("hex");
    return join(this.dir, `${key}.json`);
  }

  /** @returns {string | undefined} the session's Location */
  load(/** @type {string} */ digest) {
    try {
      const record = JSON.parse(readFileSync(this.path(digest), "utf8"));
      if (Date.now() - Date.parse(record.updatedAt) < RESUME_MAX_AGE_MS) return record.location;
    } catch {
      // no record
    }
    return undefined;
  }

  save(/** @type {string} */ digest, /** @type {string} */ location) {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const record = { registry: this.registry, repository: this.repository, digest, location, updatedAt: new Date().toISOString() };
    writeFileSync(this.path(digest), JSON.stringify(record), { mode: 0o600 });
  }

  drop(/** @type {string} */ digest) {
    rmSync(this.path(digest), { force: true });
  }
}

/** spec.md: `Range: 0-<last byte>`; this registry answers `0-0` for an empty session. */
function rangeOffset(/** @type {string | string[] | undefined} */ header, /** @type {number} */ expected) {
  const match = typeof header === "string" ? /^(?:bytes=)?0-(\d+)$/.exec(header.trim()) : null;
  if (!match) return undefined;
  const end = Number(match[1]);
  // `0-0` is both "nothing" and "one byte": trust the one this client expects.
  return end === 0 ? (expected === 1 ? 1 : 0) : end + 1;
}

/** SHA-256 state after feeding bytes [from, to) of a blob's location into `hash`. */
async function hashRange(
  /** @type {import("node:crypto").Hash} */ hash,
  /** @type {import("./lib/image-source.mjs").Location} */ location,
  /** @type {number} */ from,
  /** @type {number} */ to,
) {
  if (to > from) {
    const stream = createReadStream(location.path, { start: location.offset + from, end: location.offset + to - 1, highWaterMark: 1 << 20 });
    for await (const chunk of stream) hash.update(chunk);
  }
  return hash;
}

/**
 * @typedef {{ digest: string, size: number, mediaType: string, result: "exists" | "mounted" | "uploaded",
 *   bytesSent: number, chunks: number, resumedFrom: number, retries: number, seconds: number }} BlobResult
 * @typedef {{ client: RegistryClient, progress: Progress, resume: ResumeStore, chunkSize: number | undefined,
 *   mountFrom: string[] }} PushContext
 */

/**
 * Pushes one blob unless the repository has it: mount, else upload in chunks (resuming a remembered
 * session), verifying the digest over the bytes as they are read.
 * @param {PushContext} ctx
 * @param {import("./lib/image-source.mjs").SourceBlob} blob
 * @returns {Promise<BlobResult>}
 */
async function pushBlob(ctx, blob) {
  const { client, progress, resume } = ctx;
  const { digest, size, mediaType } = blob.descriptor;
  const started = performance.now();
  const bar = progress.bar(digest.slice(7, 19), size);
  /** @type {BlobResult} */
  const result = { digest, size, mediaType, result: "uploaded", bytesSent: 0, chunks: 0, resumedFrom: 0, retries: 0, seconds: 0 };
  const done = (/** @type {BlobResult["result"]} */ how) => {
    result.result = how;
    result.seconds = Number(((performance.now() - started) / 1000).toFixed(3));
    bar.finish(how === "uploaded" ? `pushed in ${result.chunks} chunk(s)` : how === "exists" ? "already in the repository" : "mounted");
    return result;
  };
  const refused = (/** @type {string} */ what, /** @type {import("./lib/registry-client.mjs").Reply} */ reply) => {
    bar.finish("failed");
    return new RegistryRefusal(`${what} ${digest}: ${errorText(reply)}`, reply.status);
  };

  const head = await withRetry(() => client.request("HEAD", `/v2/${client.repository}/blobs/${digest}`));
  if (head.status === 200) {
    resume.drop(digest);
    return done("exists");
  }
  for (const from of ctx.mountFrom) {
    // spec.md "Mounting a blob from another repository": 201 mounted, 202 a session instead (unused here).
    const mount = await withRetry(() => client.request("POST", `/v2/${client.repository}/blobs/uploads/?mount=${digest}&from=${encodeURIComponent(from)}`));
    if (mount.status === 201) return done("mounted");
    if (mount.status === 202 && typeof mount.headers.location === "string") await client.request("DELETE", mount.headers.location).catch(() => undefined);
  }

  /** The registry's session and what it holds: `confirmed.hash` covers bytes [0, confirmed.offset). */
  let location = "";
  let chunkSize = ctx.chunkSize ?? DEFAULT_CHUNK_BYTES;
  let confirmed = { offset: 0, hash: createHash("sha256") };

  const startSession = async () => {
    const reply = await withRetry(() => client.request("POST", `/v2/${client.repository}/blobs/uploads/`));
    if (reply.status !== 202 || typeof reply.headers.location !== "string") throw refused("starting the upload of", reply);
    location = reply.headers.location;
    // The proposed OCI-Chunk-Max-Length: chunks over it would be refused (413), so it caps --chunk-size.
    const max = Number(reply.headers["oci-chunk-max-length"]);
    if (Number.isInteger(max) && max > 0) chunkSize = Math.min(ctx.chunkSize ?? max, max);
    confirmed = { offset: 0, hash: createHash("sha256") };
    resume.save(digest, location);
  };

  /** Asks the session where it stands (GET status) and brings `confirmed` there; false if it is gone. */
  const resync = async () => {
    const reply = await withRetry(() => client.request("GET", location));
    if (reply.status === 404) return false;
    if (reply.status !== 204) throw refused("checking the upload of", reply);
    if (typeof reply.headers.location === "string") location = reply.headers.location;
    const max = Number(reply.headers["oci-chunk-max-length"]);
    if (Number.isInteger(max) && max > 0 && chunkSize > max) chunkSize = max;
    const offset = rangeOffset(reply.headers.range, confirmed.offset);
    if (offset === undefined || offset > size) throw refused("the session's Range for", reply);
    if (offset > confirmed.offset) confirmed = { offset, hash: await hashRange(confirmed.hash, blob.location, confirmed.offset, offset) };
    else if (offset < confirmed.offset) confirmed = { offset, hash: await hashRange(createHash("sha256"), blob.location, 0, offset) };
    return true;
  };

  const remembered = resume.load(digest);
  if (remembered) {
    location = remembered;
    if (await resync()) {
      result.resumedFrom = confirmed.offset;
      bar.note(`resuming a previous upload at ${formatBytes(confirmed.offset)}`);
    } else await startSession();
  } else await startSession();

  let failures = 0;
  let restarts = 0;
  const retry = async (/** @type {string} */ why) => {
    failures += 1;
    result.retries += 1;
    if (failures > 6) {
      bar.finish("failed");
      throw new NetworkError(`uploading ${digest}: ${why} (gave up after ${failures} attempts; run the push again to resume)`);
    }
    bar.note(`${why}; resuming in ${backoffMs(failures) / 1000} s`);
    await sleep(backoffMs(failures));
    if (!(await resync())) {
      if (++restarts > 2) throw new NetworkError(`uploading ${digest}: the registry keeps losing the upload session`);
      await startSession();
    }
  };

  while (confirmed.offset < size) {
    const offset = confirmed.offset;
    const end = Math.min(offset + chunkSize, size);
    const hash = confirmed.hash.copy();
    let sent = 0;
    /** @type {import("./lib/registry-client.mjs").Reply} */
    let reply;
    try {
      reply = await client.patch(location, {
        path: blob.location.path,
        start: blob.location.offset + offset,
        end: blob.location.offset + end,
        contentRange: `${offset}-${end - 1}`,
        onData: (chunk) => {
          hash.update(chunk);
          sent += chunk.length;
          result.bytesSent += chunk.length;
          bar.update(offset + sent);
        },
      });
    } catch (error) {
      if (!(error instanceof NetworkError)) throw error;
      await retry(error.message);
      continue;
    }
    if (reply.status === 202) {
      if (typeof reply.headers.location === "string") location = reply.headers.location;
      if (rangeOffset(reply.headers.range, end) === end) {
        confirmed = { offset: end, hash };
        result.chunks += 1;
        failures = 0;
        resume.save(digest, location);
        bar.note(`chunk ${result.chunks} stored (${formatBytes(end)} / ${formatBytes(size)})`);
        continue;
      }
      await retry(`the registry reports Range ${reply.headers.range} after a chunk ending at ${end}`);
    } else if (reply.status === 401) {
      client.tokenExpiresAt = 0; // renewed by the next request
      await retry("the token expired");
    } else if (reply.status === 413) {
      // The body limit is lower than this chunk (platform.md §3): use what the registry advertises.
      const max = Number(reply.headers["oci-chunk-max-length"]);
      chunkSize = Number.isInteger(max) && max > 0 && max < chunkSize ? max : Math.max(1024 * 1024, Math.floor(chunkSize / 2));
      await retry(`a ${formatBytes(end - offset)} chunk is over the registry's limit; continuing with ${formatBytes(chunkSize)} chunks`);
    } else if (reply.status === 404) {
      await retry("the registry lost the upload session");
    } else if (reply.status === 416 || reply.status === 429 || reply.status >= 500) {
      await retry(`the registry answered ${reply.status} (${errorText(reply)})`);
    } else {
      throw refused("uploading", reply);
    }
  }

  // The digest is verified over the bytes as read before the registry is asked to finish the blob.
  const actual = `sha256:${confirmed.hash.copy().digest("hex")}`;
  if (actual !== digest) {
    await client.request("DELETE", location).catch(() => undefined);
    resume.drop(digest);
    bar.finish("failed");
    throw new SourceError(`the source's blob ${digest} reads as ${actual}: the source is corrupt`);
  }
  const finishUrl = client.url(location);
  finishUrl.searchParams.set("digest", digest);
  const finish = await withRetry(() => client.request("PUT", finishUrl.href));
  if (finish.status !== 201) {
    // A retried PUT whose first attempt finished the session finds it gone: the blob is there.
    const check = finish.status === 404 ? await withRetry(() => client.request("HEAD", `/v2/${client.repository}/blobs/${digest}`)) : undefined;
    if (check?.status !== 200) throw refused("finishing the upload of", finish);
  }
  resume.drop(digest);
  return done("uploaded");
}

/** Runs `work` over `items` with at most `limit` at a time; results in input order. */
async function pool(/** @type {any[]} */ items, /** @type {number} */ limit, /** @type {(item: any) => Promise<any>} */ work) {
  const results = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]);
    }
  });
  await Promise.all(workers);
  return results;
}

/** @param {string[]} argv */
async function push(argv) {
  const { flags, positional } = parseArgs(argv);
  if (flags.help) {
    console.log(PUSH_USAGE);
    return;
  }
  if (positional.length !== 2) throw new UsageError("push needs SOURCE and DEST (see edge-registry push --help)");
  const [source, destination] = /** @type {[string, string]} */ (positional);
  const registry = new URL(String(flags.registry ?? process.env.EDGE_REGISTRY_URL ?? "https://127.0.0.1:8787"));
  const { repository, tag } = parseDestination(destination, registry);
  const chunkSize = flags["chunk-size"] === undefined ? undefined : parseSize(String(flags["chunk-size"]));
  if (chunkSize !== undefined && chunkSize < 1) throw new UsageError("--chunk-size must be positive");
  const parallel = flags.parallel === undefined ? DEFAULT_PARALLEL : Number(flags.parallel);
  if (!Number.isInteger(parallel) || parallel < 1 || parallel > 32) throw new UsageError("--parallel must be an integer from 1 to 32");
  const insecure = flags.insecure === true || process.env.EDGE_REGISTRY_INSECURE === "1" || (flags["tls-verify"] === undefined && isLoopback(registry));
  const tlsVerify = flags["tls-verify"] === false ? false : !insecure;
  const mountFrom = /** @type {string[]} */ (flags["mount-from"]);
  for (const name of mountFrom) if (!REPOSITORY_NAME.test(name)) throw new UsageError(`invalid repository name ${JSON.stringify(name)} in --mount-from`);
  const credentials = resolveCredentials(flags, registry);

  const started = performance.now();
  const image = await openSource(source);
  const progress = new Progress({ stream: process.stderr });
  const client = new RegistryClient({ registry, repository, mountFrom, credentials, tlsVerify });
  await client.authenticate();
  if (client.challenge?.realm && !client.grants(repository, "push")) {
    const who = credentials ? `${credentials.username} (credentials from ${credentials.from})` : "anonymous";
    throw new RegistryRefusal(`${who} may not push to ${repository} on ${registry.host}`, 403);
  }
  const total = image.blobs.reduce((sum, blob) => sum + blob.descriptor.size, 0);
  progress.line(`pushing ${image.description} to ${registry.host}/${repository}:${tag}: ${image.blobs.length} blobs, ${formatBytes(total)}`);
  const resume = new ResumeStore(registry, repository);
  // Largest first, so the long uploads start at once and small ones fill the gaps.
  const blobs = [...image.blobs].sort((a, b) => b.descriptor.size - a.descriptor.size);
  /** @type {BlobResult[]} */
  const results = await pool(blobs, parallel, (blob) => pushBlob({ client, progress, resume, chunkSize, mountFrom }, blob));

  // spec.md "Pushing Manifests": children of an index first (by digest), the tagged one last.
  const manifests = [];
  for (const [index, manifest] of image.manifests.entries()) {
    const reference = index === image.manifests.length - 1 ? tag : manifest.descriptor.digest;
    const reply = await withRetry(() =>
      client.request("PUT", `/v2/${repository}/manifests/${reference}`, { headers: { "Content-Type": manifest.descriptor.mediaType }, body: manifest.bytes }),
    );
    if (reply.status !== 201) throw new RegistryRefusal(`putting manifest ${manifest.descriptor.digest}: ${errorText(reply)}`, reply.status);
    const stored = reply.headers["docker-content-digest"];
    if (stored !== undefined && stored !== manifest.descriptor.digest) throw new RegistryRefusal(`the registry stored manifest ${manifest.descriptor.digest} as ${stored}`, 500);
    manifests.push({ digest: manifest.descriptor.digest, mediaType: manifest.descriptor.mediaType, reference });
  }

  const top = /** @type {{ digest: string, mediaType: string }} */ (manifests.at(-1));
  const seconds = (performance.now() - started) / 1000;
  const bytesSent = results.reduce((sum, r) => sum + r.bytesSent, 0);
  const summary = {
    source,
    destination: `${registry.host}/${repository}:${tag}`,
    digest: top.digest,
    mediaType: top.mediaType,
    seconds: Number(seconds.toFixed(3)),
    bytesSent,
    chunks: results.reduce((sum, r) => sum + r.chunks, 0),
    blobsUploaded: results.filter((r) => r.result === "uploaded").length,
    blobsExisting: results.filter((r) => r.result === "exists").length,
    blobsMounted: results.filter((r) => r.result === "mounted").length,
    blobs: results,
    manifests,
  };
  progress.line(
    `pushed ${summary.destination}@${top.digest}: ${summary.blobsUploaded} blobs uploaded (${formatBytes(bytesSent)} in ${summary.chunks} chunks), ` +
      `${summary.blobsExisting} already there, ${summary.blobsMounted} mounted, in ${seconds.toFixed(1)} s`,
  );
  if (flags.json) console.log(JSON.stringify(summary, null, 2));
}

/** Runs `edge-registry push …`; sets the exit code (0 pushed, 1 refused, 2 usage or source, 3 unreachable). */
export async function pushCommand(/** @type {string[]} */ argv) {
  try {
    await push(argv);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof UsageError) {
      console.error(`edge-registry push: ${message}\n(see edge-registry push --help)`);
      process.exitCode = 2;
    } else if (error instanceof SourceError) {
      console.error(`edge-registry push: ${message}`);
      process.exitCode = 2;
    } else if (error instanceof RegistryRefusal) {
      console.error(`edge-registry push: ${message}`);
      process.exitCode = 1;
    } else if (error instanceof NetworkError) {
      console.error(`edge-registry push: cannot reach the registry: ${message}`);
      process.exitCode = 3;
    } else throw error;
  }
}
