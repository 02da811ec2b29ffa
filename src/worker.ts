/**
 * The Worker's two handlers, given the platform they run on: the entry point (src/index.ts) passes the
 * one Workers provide; the production-KV test entry passes one per modelled location.
 */
import type { Env } from "./config/env";
import { errorToResponse, surfaceOf } from "./routes/error-response";
import { handleRequest } from "./routes/router";
import { servicesFor, type Platform } from "./services";

export async function serve(request: Request, env: Env, ctx: ExecutionContext, platform: Platform): Promise<Response> {
  let services;
  try {
    services = await servicesFor(env, platform);
  } catch (error) {
    // Missing or malformed secrets: refuse to serve (503), and say why in the logs.
    return errorToResponse(error, request, surfaceOf(new URL(request.url).pathname));
  }
  return handleRequest(request, services, (work) => ctx.waitUntil(work));
}

/**
 * Cron trigger (wrangler.toml `[triggers]`): deletes objects left by requests that died before recording
 * them (upload tails, blob objects; docs/lifecycle.md), recorded in the audit log as one summary per run.
 * Abandoned sessions themselves are settled by their repository ledger's alarm.
 */
export async function runScheduled(env: Env, platform: Platform): Promise<void> {
  const services = await servicesFor(env, platform);
  await services.registry.uploads.sweepAfterCrashes({ graceMs: services.config.lifecycle.gcGraceMs }, env.REGISTRY_KV);
}
