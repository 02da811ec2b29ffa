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
 * Each location has its own data-center cache (Cache API, `caches.open("location-<x>")`) and two isolates:
 * one serves the admin and account APIs, the other `/v2/` and `/token`. Production runs many isolates per
 * location, so nothing may rely on an admin change and the login or pull after it meeting in one isolate.
 *
 * `PRODUCTION_KV_TTL_MS` (a var) sets how long a location caches a read; default 60 s as in production.
 * env is never changed: each location and isolate gets its own env object, built once and reused, since the
 * Worker builds its services once per env object (src/services.ts). A Worker entry module may export only
 * handlers and classes (workerd refuses anything else), so the helpers below stay private.
 */
import * as entry from "../../src/index";
import type { Env } from "../../src/config/env";
import type { Platform } from "../../src/services";
import type { NotificationMessage } from "../../src/model/registry-events";
import { runQueue, runScheduled, serve } from "../../src/worker";
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

/** The isolate of its location that serves a request: the admin surfaces apart from the edge. */
function isolateOf(url: string): string {
  const { pathname } = new URL(url);
  return pathname.startsWith("/admin/") || pathname.startsWith("/account/") ? "admin" : "edge";
}

/** The platform of a location: its own data-center cache. */
async function platformAt(location: string): Promise<Platform> {
  return { locationCache: await caches.open(`location-${location}`) };
}

/** The env the Worker sees in `location` (one isolate of it): a new object whose REGISTRY_KV is that location's view. */
function envAt(env: TestEnv, location: string, isolate = "edge"): Env {
  let byLocation = world.envs.get(env);
  if (!byLocation) world.envs.set(env, (byLocation = new Map()));
  let wrapped = byLocation.get(`${location}/${isolate}`);
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
    byLocation.set(`${location}/${isolate}`, wrapped);
  }
  return wrapped;
}

export default {
  async fetch(request, env, ctx) {
    const location = locationOf(request.url);
    return serve(request, envAt(env, location, isolateOf(request.url)), ctx, await platformAt(location));
  },
  async scheduled(_controller, env) {
    return runScheduled(envAt(env, "a"), await platformAt("a"));
  },
  async queue(batch, env) {
    return runQueue(batch, envAt(env, "a"));
  },
} satisfies ExportedHandler<TestEnv, NotificationMessage>;

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

export class NotificationHub extends entry.NotificationHub {
  constructor(ctx: DurableObjectState, env: TestEnv) {
    super(ctx, envAt(env, DURABLE_OBJECT_LOCATION));
  }
}
