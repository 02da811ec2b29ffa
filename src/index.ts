/** Worker entry point: builds services from env once per isolate and hands each request to the router. */
import type { Env } from "./config/env";
import { errorToResponse } from "./http/error-response";
import { handleRequest } from "./http/router";
import { servicesFor } from "./services";

// Durable Object classes (wrangler.toml [[durable_objects.bindings]]) are exported by the entry point.
export { BlobIndex } from "./storage/blob-index";
export { IdentityLedger } from "./storage/identity-ledger";
export { RepositoryLedger } from "./storage/repository-ledger";

export default {
  async fetch(request, env, ctx): Promise<Response> {
    let services;
    try {
      services = await servicesFor(env);
    } catch (error) {
      // Missing or malformed secrets: refuse to serve (503), and say why in the logs.
      return errorToResponse(error, request);
    }
    return handleRequest(request, services, (work) => ctx.waitUntil(work));
  },

  /**
   * Cron trigger (wrangler.toml `[triggers]`): deletes objects left by requests that died before recording
   * them (upload tails, blob objects; docs/lifecycle.md), recorded in the audit log as one summary per run.
   * Abandoned sessions themselves are settled by their repository ledger's alarm.
   */
  async scheduled(_controller, env): Promise<void> {
    const services = await servicesFor(env);
    await services.registry.uploads.sweepAfterCrashes({ graceMs: services.config.lifecycle.gcGraceMs }, env.REGISTRY_KV);
  },
} satisfies ExportedHandler<Env>;
