/** Worker entry point: wires the handlers (src/worker.ts) to the platform Workers provide. */
import type { Env } from "./config/env";
import { workersPlatform } from "./services";
import { runScheduled, serve } from "./worker";

// Durable Object classes (wrangler.toml [[durable_objects.bindings]]) are exported by the entry point.
export { BlobIndex } from "./storage/blob-index";
export { IdentityLedger } from "./storage/identity-ledger";
export { RepositoryLedger } from "./storage/repository-ledger";

export default {
  fetch: (request, env, ctx) => serve(request, env, ctx, workersPlatform()),
  scheduled: (_controller, env) => runScheduled(env, workersPlatform()),
} satisfies ExportedHandler<Env>;
