// `npm start`: runs the registry locally with `wrangler dev` (local KV and R2 persisted under
// .wrangler/state), generating local secrets on first start, and prints a ready `podman login` line.
import { join } from "node:path";
import { ensureSecretsFile } from "./local-secrets.mjs";
import { projectRoot, startWranglerDev } from "./wrangler-dev.mjs";

const port = Number(process.env.PORT ?? 8787);
const envFile = process.env.REGISTRY_ENV_FILE ?? join(projectRoot, ".dev.vars");
const persistTo = process.env.REGISTRY_STATE_DIR ?? join(projectRoot, ".wrangler", "state");

const secrets = await ensureSecretsFile(envFile);
const server = await startWranglerDev({ port, persistTo, envFile, stdio: "inherit" });
const host = `127.0.0.1:${port}`;
console.log(`
Registry running at ${server.url} (HTTPS with a local self-signed certificate; state in ${persistTo})

  podman login --tls-verify=false -u admin -p '${secrets.BOOTSTRAP_ADMIN_PASSWORD}' ${host}

Admin API: curl -k -u 'admin:${secrets.BOOTSTRAP_ADMIN_PASSWORD}' ${server.url}/admin/v1/namespaces
Press Ctrl+C to stop.
`);

const stop = () => {
  server.stop();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
server.child.on("exit", (code) => process.exit(code ?? 1));
