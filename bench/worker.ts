/**
 * Benchmark wrapper around the registry Worker, run only by `npm run bench` (never deployed): bare
 * routes in the same workerd that give the baselines each registry figure is compared with.
 *   GET  /bench/ping      a trivial response: the request-rate ceiling of this workerd
 *   GET  /bench/ping-logged   the same, writing one log line shaped like the token endpoint's issuance line:
 *                         under wrangler dev each console line travels to wrangler's Node process, a cost
 *                         production does not have, so this shows that cost apart from the registry's own
 *   PUT  /bench/r2        the request body streamed into R2 in one put: the push ceiling
 *   GET  /bench/r2        that object (or ?key=) streamed back: the pull ceiling
 * Everything else goes to the registry Worker unchanged.
 */
import registry from "../src/index";
import type { Env } from "../src/config/env";

const SUBSTRATE_KEY = "bench/substrate";

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
    return registry.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;
