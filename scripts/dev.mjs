// @ts-check
// `npm start`: runs the registry locally with `wrangler dev` (local KV and R2 persisted under
// .wrangler/state), generating local secrets on first start, and prints a ready `podman login` line.
// SIGINT (Ctrl+C) and SIGTERM (process managers, CI) stop it cleanly: the body-limit front, wrangler and
// workerd have all exited, and the port is free, before it says so and exits.
import { join } from "node:path";
import { ensureSecretsFile } from "./local-secrets.mjs";
import { assertPortFree, projectRoot, startWranglerDev } from "./wrangler-dev.mjs";

const port = Number(process.env.PORT ?? 8787);
const envFile = process.env.REGISTRY_ENV_FILE ?? join(projectRoot, ".dev.vars");
const persistTo = process.env.REGISTRY_STATE_DIR ?? join(projectRoot, ".wrangler", "state");

const secrets = await ensureSecretsFile(envFile);
const server = await startWranglerDev({ port, persistTo, envFile, stdio: "inherit" });
const host = `127.0.0.1:${port}`;
// Generated as base64url (scripts/local-secrets.mjs): nothing in it needs shell quoting beyond the single quotes.
const password = secrets.BOOTSTRAP_ADMIN_PASSWORD ?? "";
console.log(`
Registry running at ${server.url} (HTTPS with a local self-signed certificate; state in ${persistTo})

  printf '%s\\n' '${password}' | podman login --tls-verify=false --password-stdin -u admin ${host}

Admin API: curl -k -u 'admin:${password}' ${server.url}/admin/v1/namespaces
Press Ctrl+C to stop.
`);

let stopping = false;
/** @param {NodeJS.Signals} signal */
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: stopping the registry…`);
  const killed = await server.stopAndWait();
  const free = await assertPortFree(port).then(
    () => true,
    () => false,
  );
  console.log(
    `Stopped: wrangler dev, workerd and the body-limit front have exited${killed.length ? ` (${killed.join(" and ")} after SIGKILL)` : ""}; ` +
      (free ? `port ${port} is free.` : `port ${port} is still in use by another process.`),
  );
  process.exit(free ? 0 : 1);
}
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
process.on("SIGHUP", stop);
server.child.on("exit", (code) => {
  if (stopping) return;
  console.error(`wrangler dev exited (${code}); stopping.`);
  void server.stopAndWait().then(() => process.exit(code || 1));
});
