// Makes sure the real registry clients the end-to-end tests drive (skopeo, podman, buildah), the browser the
// console's tests drive (Debian's chromium, at /usr/bin/chromium), and the third-party registry of the import and
// mirror tests (Debian's docker-registry, with htpasswd) are installed.
// On Debian as root it installs them with apt-get; elsewhere it says what to install and fails.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

// Commands (or, for chromium, the path test/e2e/console.test.ts launches: playwright-core brings no browser of its
// own) and the Debian packages providing them: docker-registry is the third-party registry of the import and
// mirror tests, htpasswd (apache2-utils) makes its bcrypt password file.
const CHROMIUM = "/usr/bin/chromium";
/** @type {Record<string, string>} */
const COMMANDS = { skopeo: "skopeo", podman: "podman", buildah: "buildah", [CHROMIUM]: "chromium", "docker-registry": "docker-registry", htpasswd: "apache2-utils" };
const PACKAGES = [...new Set(Object.values(COMMANDS))];
const present = (/** @type {string} */ command) => (command.startsWith("/") ? existsSync(command) : spawnSync("sh", ["-c", `command -v ${command}`]).status === 0);
const missing = [...new Set(Object.entries(COMMANDS).filter(([command]) => !present(command)).map(([, pkg]) => pkg))];
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
