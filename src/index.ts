/** Worker entry point: wires the handlers (src/worker.ts) to the platform Workers provide. */
import type { Env } from "./config/env";
import { workersPlatform } from "./services";
import type { NotificationMessage } from "./model/registry-events";
import { runQueue, runScheduled, serve } from "./worker";

// Durable Object classes (wrangler.toml [[durable_objects.bindings]]) are exported by the entry point.
export { BlobIndex } from "./storage/blob-index";
export { IdentityLedger } from "./storage/identity-ledger";
export { NotificationHub } from "./storage/notification-hub";
export { RepositoryLedger } from "./storage/repository-ledger";

export default {
  fetch: (request, env, ctx) => serve(request, env, ctx, workersPlatform()),
  scheduled: (_controller, env) => runScheduled(env, workersPlatform()),
  queue: (batch, env) => runQueue(batch, env),
} satisfies ExportedHandler<Env, NotificationMessage>;
