/**
 * A third-party registry for the import and mirror tests: Debian's `docker-registry` (distribution 2.8) on
 * 127.0.0.1 over plain HTTP, with its own storage directory, optionally behind htpasswd (bcrypt) Basic auth.
 * `stop()` and `start()` again keep the storage, so a test can take the upstream down and bring it back.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { tempDir } from "./support";

export interface UpstreamRegistryProcess {
  /** `127.0.0.1:<port>` */
  host: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitUntilServing(host: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}:\n${log()}`);
    const status = await fetch(`http://${host}/v2/`).then((response) => response.status, () => 0);
    if (status === 200 || status === 401) return;
    if (Date.now() > deadline) throw new Error(`docker-registry did not answer on ${host}:\n${log()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Starts docker-registry; with `auth`, only that user (bcrypt via `htpasswd -B`) may pull or push. */
export async function startUpstreamRegistry(auth?: { username: string; password: string }): Promise<UpstreamRegistryProcess> {
  const dir = tempDir("upstream-registry");
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  let authConfig = "";
  if (auth) {
    const htpasswd = join(dir, "htpasswd");
    const made = spawnSync("htpasswd", ["-Bbn", auth.username, auth.password], { encoding: "utf8" });
    if (made.status !== 0) throw new Error(`htpasswd failed: ${made.stderr}`);
    writeFileSync(htpasswd, made.stdout);
    authConfig = `auth:\n  htpasswd:\n    realm: upstream\n    path: ${htpasswd}\n`;
  }
  const config = join(dir, "config.yml");
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, "data")}\n  delete:\n    enabled: true\nhttp:\n  addr: ${host}\n${authConfig}`,
  );
  let child: ChildProcess | undefined;
  let output = "";
  const start = async () => {
    output = "";
    child = spawn("docker-registry", ["serve", config], { stdio: ["ignore", "pipe", "pipe"] });
    for (const stream of [child.stdout!, child.stderr!]) stream.on("data", (chunk) => (output = (output + chunk).slice(-20_000)));
    await waitUntilServing(host, child, () => output);
  };
  const stop = async () => {
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child!.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  };
  await start();
  return { host, start, stop };
}
