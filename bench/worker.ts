/**
 * Benchmark wrapper around the registry Worker, run only by `npm run bench` (never deployed): bare
 * routes in the same workerd that give the baselines each registry figure is compared with.
 *   GET  /bench/ping      a trivial response: the request-rate ceiling of this workerd
 *   GET  /bench/ping-logged   the same, writing one log line shaped like the token endpoint's issuance line:
 *                         under wrangler dev each console line travels to wrangler's Node process, a cost
 *                         production does not have, so this shows that cost apart from the registry's own
 *   PUT  /bench/r2        the request body streamed into R2 in one put: the push ceiling
 *   GET  /bench/r2        that object (or ?key=) streamed back: the pull ceiling
 *   GET  /bench/costs     billable operations counted since the last reset (bench/billing.ts), as JSON
 *   DELETE /bench/costs   resets those counters
 * Everything else goes to the registry Worker, whose KV, R2 and Durable Object bindings are wrapped to count
 * billable operations (a new env object, built once; env itself is never changed). The Durable Objects get
 * the same counted bindings, so what they do on a request's behalf counts too.
 */
import registry, * as entry from "../src/index";
import type { Env } from "../src/config/env";
import { costs, countedBucket, countedKv, countedNamespace, resetCosts } from "./billing";

const SUBSTRATE_KEY = "bench/substrate";

const countedEnvs = new WeakMap<Env, Env>();

/** env with every billable binding counted; one object per env, since the Worker builds services per env object. */
function counted(env: Env): Env {
  let wrapped = countedEnvs.get(env);
  if (!wrapped) {
    wrapped = {
      ...env,
      REGISTRY_KV: countedKv(env.REGISTRY_KV),
      REGISTRY_BUCKET: countedBucket(env.REGISTRY_BUCKET),
      ...(env.REPOSITORY_LEDGER ? { REPOSITORY_LEDGER: countedNamespace(env.REPOSITORY_LEDGER, "REPOSITORY_LEDGER") } : {}),
      ...(env.BLOB_INDEX ? { BLOB_INDEX: countedNamespace(env.BLOB_INDEX, "BLOB_INDEX") } : {}),
      ...(env.IDENTITY_LEDGER ? { IDENTITY_LEDGER: countedNamespace(env.IDENTITY_LEDGER, "IDENTITY_LEDGER") } : {}),
    };
    countedEnvs.set(env, wrapped);
  }
  return wrapped;
}

export default {
  async fetch(request, env, ctx): Promise<Response> {
    const { pathname } = new URL(request.url);
    if (pathname === "/bench/ping") return new Response("ok");
    if (pathname === "/bench/ping-logged") {
      console.log(JSON.stringify({ event: "bench_ping", sub: "00000000|bench", scope: "repository:bench/app:pull", client_id: "" }));
      return new Response("ok");
    }
    if (pathname === "/bench/r2" && request.method === "PUT") {
      const object = await env.REGISTRY_BUCKET.put(SUBSTRATE_KEY, request.body);
      return new Response(String(object?.size ?? 0));
    }
    if (pathname === "/bench/r2" && request.method === "GET") {
      const object = await env.REGISTRY_BUCKET.get(new URL(request.url).searchParams.get("key") ?? SUBSTRATE_KEY);
      if (!object) return new Response(null, { status: 404 });
      return new Response(object.body, {
        headers: { "Content-Type": "application/octet-stream", "Content-Length": String(object.size) },
      });
    }
    if (pathname === "/bench/costs") {
      if (request.method === "DELETE") resetCosts();
      return Response.json(costs());
    }
    return registry.fetch(request, counted(env), ctx);
  },
} satisfies ExportedHandler<Env>;

// The Durable Objects (bench/wrangler.toml) with counted bindings.
export class RepositoryLedger extends entry.RepositoryLedger {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, counted(env));
  }
}

export class BlobIndex extends entry.BlobIndex {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, counted(env));
  }
}

export class IdentityLedger extends entry.IdentityLedger {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, counted(env));
  }
}
