/** The README's start command: it generates local secrets, starts the registry and prints a working login line. */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { run, tempDir } from "./support";

describe("npm start", () => {
  it("prints a podman login line that works as printed", async () => {
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
    try {
      const line = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no login line within 90 s:\n${output}`)), 90_000);
        const check = () => {
          const match = /^\s*(podman login .+)$/m.exec(output);
          if (match) {
            clearTimeout(timer);
            resolve(match[1]!);
          }
        };
        child.stdout.on("data", check);
        child.on("exit", (code) => reject(new Error(`npm start exited with ${code}:\n${output}`)));
      });
      expect(line).toMatch(new RegExp(`^podman login --tls-verify=false -u admin -p '[^']+' 127\\.0\\.0\\.1:${port}$`));
      // Run it exactly as printed (as a user pasting it into a shell), with a private auth file.
      const result = run("bash", ["-c", `${line} --authfile ${join(dir, "auth.json")}`]);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain("Login Succeeded");
    } finally {
      try {
        process.kill(-child.pid!, "SIGTERM");
      } catch {
        // already stopped
      }
    }
  });
});
