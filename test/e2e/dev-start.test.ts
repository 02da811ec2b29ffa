/**
 * The README's start command: it generates local secrets, starts the registry and prints a working login line;
 * SIGTERM (what process managers and CI send) stops it with nothing left running and the port free.
 */
import { spawn, spawnSync } from "node:child_process";
import net from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { run, tempDir } from "./support";

/** Whether something accepts connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** The processes of a process group (ps), as "pid command" lines. */
function processGroup(pgid: number): string[] {
  const ps = spawnSync("ps", ["-eo", "pid=,pgid=,args="], { encoding: "utf8" });
  return ps.stdout
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => Number(fields[1]) === pgid)
    .map((fields) => `${fields[0]} ${fields.slice(2).join(" ")}`);
}

/** Processes whose command line holds `text`, as [pid, pgid, args]. */
function processesMentioning(text: string): [number, number, string][] {
  const ps = spawnSync("ps", ["-eo", "pid=,pgid=,args="], { encoding: "utf8" });
  return ps.stdout
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields.slice(2).join(" ").includes(text))
    .map((fields) => [Number(fields[0]), Number(fields[1]), fields.slice(2).join(" ")]);
}

describe("npm start", () => {
  it("prints a podman login line that works as printed, and stops cleanly on SIGTERM", { timeout: 150_000 }, async () => {
    const dir = tempDir("dev-start");
    const port = 40000 + Math.floor(Math.random() * 10000);
    const child = spawn("node", ["scripts/dev.mjs"], {
      cwd: join(__dirname, "..", ".."),
      env: { ...process.env, PORT: String(port), REGISTRY_STATE_DIR: join(dir, "state"), REGISTRY_ENV_FILE: join(dir, "dev.vars") },
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      const line = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no login line within 90 s:\n${output}`)), 90_000);
        const check = () => {
          const match = /^\s*(printf .+ \| podman login .+)$/m.exec(output);
          if (match) {
            clearTimeout(timer);
            resolve(match[1]!);
          }
        };
        child.stdout.on("data", check);
        child.on("exit", (code) => reject(new Error(`npm start exited with ${code}:\n${output}`)));
      });
      expect(line).toMatch(new RegExp(`^printf '%s\\\\n' '[^']+' \\| podman login --tls-verify=false --password-stdin -u admin 127\\.0\\.0\\.1:${port}$`));
      // Run it exactly as printed (as a user pasting it into a shell), with a private auth file.
      const result = run("sh", ["-c", `${line} --authfile ${join(dir, "auth.json")}`]);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain("Login Succeeded");
      const stateDir = join(dir, "state");
      // wrangler dev runs in a process group of its own (with workerd): the groups of whatever runs with this state directory.
      const wranglerGroups = [...new Set(processesMentioning(stateDir).map(([, pgid]) => pgid))];
      expect(wranglerGroups.length, "wrangler runs with the state directory").toBeGreaterThan(0);
      expect(wranglerGroups.flatMap(processGroup).some((line) => /workerd/.test(line)), "workerd runs in wrangler's group").toBe(true);

      // SIGTERM to npm start's process alone (as a process manager sends it), not to its group.
      process.kill(child.pid!, "SIGTERM");
      expect(await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve("timeout"), 30_000))]), output).toBe(0);
      expect(output).toMatch(new RegExp(`Stopped: .*port ${port} is free\\.`));
      expect(await listening(port), `port ${port} still answers`).toBe(false);
      expect(processGroup(child.pid!), "nothing left in npm start's process group").toEqual([]);
      expect(wranglerGroups.flatMap(processGroup), "no wrangler or workerd left").toEqual([]);
      expect(processesMentioning(`body-limit-front.mjs ${port} `), "no front left").toEqual([]);
    } finally {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // already stopped
      }
    }
  });
});
