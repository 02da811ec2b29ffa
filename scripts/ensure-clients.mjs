// Makes sure the real registry clients the end-to-end tests drive (skopeo, podman, buildah) and the browser
// the console's tests drive (Debian's chromium, at /usr/bin/chromium) are installed.
// On Debian as root it installs them with apt-get; elsewhere it says what to install and fails.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

const PACKAGES = ["skopeo", "podman", "buildah", "chromium"];
/** test/e2e/console.test.ts launches this path (playwright-core brings no browser of its own). */
const CHROMIUM = "/usr/bin/chromium";
const present = (/** @type {string} */ name) => (name === "chromium" ? existsSync(CHROMIUM) : spawnSync("sh", ["-c", `command -v ${name}`]).status === 0);
const missing = PACKAGES.filter((name) => !present(name));
if (missing.length === 0) process.exit(0);

const isRoot = process.getuid?.() === 0;
const isDebian = existsSync("/etc/debian_version") && spawnSync("sh", ["-c", "command -v apt-get"]).status === 0;
if (!isRoot || !isDebian) {
  console.error(
    `The end-to-end tests need ${missing.join(", ")}. Install them (Debian/Ubuntu: sudo apt-get install -y ${PACKAGES.join(" ")}) and run the tests again.`,
  );
  process.exit(1);
}
console.log(`Installing ${missing.join(", ")} with apt-get (needed by the end-to-end tests)…`);
const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
execFileSync("apt-get", ["install", "-y", "-qq", ...PACKAGES], { stdio: "inherit", env });
