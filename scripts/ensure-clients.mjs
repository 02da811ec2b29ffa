// Makes sure the real registry clients the end-to-end tests drive (skopeo, podman, buildah) are installed.
// On Debian as root it installs them with apt-get; elsewhere it says what to install and fails.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

// Commands and the Debian packages providing them: docker-registry is the third-party registry of the import
// and mirror tests, htpasswd (apache2-utils) makes its bcrypt password file.
const COMMANDS = { skopeo: "skopeo", podman: "podman", buildah: "buildah", "docker-registry": "docker-registry", htpasswd: "apache2-utils" };
const PACKAGES = [...new Set(Object.values(COMMANDS))];
const missing = [...new Set(Object.entries(COMMANDS).filter(([command]) => spawnSync("sh", ["-c", `command -v ${command}`]).status !== 0).map(([, pkg]) => pkg))];
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
