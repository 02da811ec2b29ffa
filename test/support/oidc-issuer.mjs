// A local OIDC issuer for the federation tests: node's http server on 127.0.0.1 (loopback only), serving any
// number of issuers under /i/<id>. Tests create an issuer, generate its keys themselves and publish the public
// halves here; the Worker then finds them the way it finds a real issuer's (OIDC Discovery §4: discovery
// document → jwks_uri → JWK Set). No private key ever reaches this server.
//
//   POST /issuers                        → {"issuer":"http://127.0.0.1:<port>/i/<id>"}
//   PUT  /i/<id>/_control                  {"keys"?:[public JWK…], "down"?:bool, "discoveryIssuer"?:string, "maxAge"?:number}
//   GET  /i/<id>/_stats                  → {"discovery":n,"jwks":n}: fetches served so far
//   GET  /i/<id>/.well-known/openid-configuration, GET /i/<id>/jwks
import http from "node:http";
import { randomUUID } from "node:crypto";

const MAX_BODY = 256 * 1024;

export async function startOidcIssuer() {
  const issuers = new Map();
  const server = http.createServer((request, response) => {
    const send = (status, body, headers = {}) => {
      response.writeHead(status, { "Content-Type": "application/json", ...headers });
      response.end(body === undefined ? undefined : JSON.stringify(body));
    };
    let size = 0;
    const chunks = [];
    request.on("data", (chunk) => {
      size += chunk.length;
      if (size <= MAX_BODY) chunks.push(chunk);
    });
    request.on("end", () => {
      try {
        const url = new URL(request.url, base);
        if (request.method === "POST" && url.pathname === "/issuers") {
          const id = randomUUID().slice(0, 12);
          issuers.set(id, { keys: [], down: false, discoveryIssuer: undefined, maxAge: undefined, stats: { discovery: 0, jwks: 0 } });
          return send(201, { issuer: `${base}/i/${id}` });
        }
        const match = /^\/i\/([0-9a-f-]+)(\/.*)$/.exec(url.pathname);
        const state = match && issuers.get(match[1]);
        if (!state) return send(404, { error: "no such issuer" });
        const issuer = `${base}/i/${match[1]}`;
        const path = match[2];
        if (request.method === "PUT" && path === "/_control") {
          const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
          if (body.keys !== undefined) state.keys = body.keys;
          if (body.down !== undefined) state.down = body.down;
          if (body.discoveryIssuer !== undefined) state.discoveryIssuer = body.discoveryIssuer;
          if (body.maxAge !== undefined) state.maxAge = body.maxAge;
          return send(204);
        }
        if (request.method === "GET" && path === "/_stats") return send(200, state.stats);
        if (request.method !== "GET") return send(405, { error: "method not allowed" });
        if (path === "/.well-known/openid-configuration") {
          state.stats.discovery += 1;
          if (state.down) return send(503, { error: "down" });
          return send(200, {
            issuer: state.discoveryIssuer ?? issuer,
            jwks_uri: `${issuer}/jwks`,
            response_types_supported: ["id_token"],
            subject_types_supported: ["public"],
            id_token_signing_alg_values_supported: ["RS256", "ES256"],
          });
        }
        if (path === "/jwks") {
          state.stats.jwks += 1;
          if (state.down) return send(503, { error: "down" });
          return send(200, { keys: state.keys }, state.maxAge === undefined ? {} : { "Cache-Control": `public, max-age=${state.maxAge}` });
        }
        return send(404, { error: "not found" });
      } catch (error) {
        return send(400, { error: String(error) });
      }
    });
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    url: base,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
