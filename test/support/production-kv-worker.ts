/**
 * Test entry point: the real Worker with `REGISTRY_KV` replaced by the production-KV model
 * (test/support/production-kv.ts), one location per request hostname, Durable Objects as one more location.
 * Used by the `workers-production-kv` vitest project and by the e2e `wrangler dev`; never deployed.
 *
 *   registry.test, 127.0.0.1          → location "a"
 *   registry-b.test, localhost        → location "b"    (registry-<x>.test → location "x")
 *   RepositoryLedger, BlobIndex, IdentityLedger → location "durable-objects"
 *   scheduled (cron)                  → location "a"
 *
 * `PRODUCTION_KV_TTL_MS` (a var) sets how long a location caches a read; default 60 s as in production.
 * env is never changed: each location gets its own env object, built once and reused, since the Worker builds
 * its services once per env object (src/services.ts). A Worker entry module may export only handlers and
 * classes (workerd refuses anything else), so the helpers below stay private.
 */
import registry, * as entry from "../../src/index";
import type { Env } from "../../src/config/env";
import { DEFAULT_TTL_MS, KvLocation, KvWriteRate, ProductionKv } from "./production-kv";

type TestEnv = Env & { PRODUCTION_KV_TTL_MS?: string };

const DURABLE_OBJECT_LOCATION = "durable-objects";

/**
 * One state per isolate, on globalThis so that a second evaluation of this module (a bundler or test runner
 * loading it twice) still shares it: the write rate is global across locations (platform.md §1 [lim]).
 */
interface World {
  locations: Map<string, KvLocation>;
  writeRate: KvWriteRate;
  envs: WeakMap<object, Map<string, Env>>;
}
const WORLD = Symbol.for("edge-registry.production-kv.world");
const world: World = ((globalThis as Record<symbol, World | undefined>)[WORLD] ??= {
  locations: new Map(),
  writeRate: new KvWriteRate(),
  envs: new WeakMap(),
});

/** The location a request is served in, from the hostname it was sent to. */
function locationOf(url: string): string {
  const { hostname } = new URL(url);
  if (hostname === "localhost") return "b";
  const named = /^registry-([a-z0-9]+)\.test$/.exec(hostname);
  return named ? named[1]! : "a";
}

/** The env the Worker sees in `location`: a new object whose REGISTRY_KV is that location's view. */
function envAt(env: TestEnv, location: string): Env {
  let byLocation = world.envs.get(env);
  if (!byLocation) world.envs.set(env, (byLocation = new Map()));
  let wrapped = byLocation.get(location);
  if (!wrapped) {
    let kvLocation = world.locations.get(location);
    if (!kvLocation) world.locations.set(location, (kvLocation = new KvLocation(location)));
    const ttl = Number(env.PRODUCTION_KV_TTL_MS);
    const kv = new ProductionKv(env.REGISTRY_KV, {
      location: kvLocation,
      writeRate: world.writeRate,
      ttlMs: Number.isFinite(ttl) && ttl >= 0 ? ttl : DEFAULT_TTL_MS,
    });
    wrapped = { ...env, REGISTRY_KV: kv };
    byLocation.set(location, wrapped);
  }
  return wrapped;
}

export default {
  fetch(request, env, ctx) {
    return registry.fetch(request, envAt(env, locationOf(request.url)), ctx);
  },
  scheduled(controller, env, ctx) {
    const scheduled: ExportedHandlerScheduledHandler<Env> = registry.scheduled;
    return scheduled(controller, envAt(env, "a"), ctx);
  },
} satisfies ExportedHandler<TestEnv>;

// The Durable Objects see KV from a location of their own; they should mostly write to it.
export class RepositoryLedger extends entry.RepositoryLedger {
  constructor(ctx: DurableObjectState, env: TestEnv) {
    super(ctx, envAt(env, DURABLE_OBJECT_LOCATION));
  }
}

export class BlobIndex extends entry.BlobIndex {
  constructor(ctx: DurableObjectState, env: TestEnv) {
    super(ctx, envAt(env, DURABLE_OBJECT_LOCATION));
  }
}

export class IdentityLedger extends entry.IdentityLedger {
  constructor(ctx: DurableObjectState, env: TestEnv) {
    super(ctx, envAt(env, DURABLE_OBJECT_LOCATION));
  }
}
