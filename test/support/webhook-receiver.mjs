// A local webhook receiver for the notification tests: node's http server on 127.0.0.1 (loopback only).
// Every POST under /hooks/<name>[/<mode>] is recorded under <name> (headers and the raw body) and answered
// according to the mode:
//
//   /hooks/<name>            204
//   /hooks/<name>/fail-<n>   503 for the first n deliveries to <name>, then 204 (a receiver down for a while)
//   /hooks/<name>/dead       503 always
//   /hooks/<name>/slow-<ms>  answers 204 after <ms> milliseconds
//   GET /received/<name>   → [{"headers": {...}, "body": "<raw body>", "status": n}] in arrival order
//
// `port` (optional) lets a test stop the receiver and start it again on the same port (refused connections).
import http from "node:http";

const MAX_BODY = 256 * 1024;

export async function startWebhookReceiver({ port = 0, received = new Map() } = {}) {
  const server = http.createServer((request, response) => {
    const chunks = [];
    let size = 0;
    request.on("data", (chunk) => {
      size += chunk.length;
      if (size <= MAX_BODY) chunks.push(chunk);
    });
    request.on("end", () => {
      const url = new URL(request.url, "http://127.0.0.1");
      const read = /^\/received\/([A-Za-z0-9._-]+)$/.exec(url.pathname);
      if (request.method === "GET" && read) {
        response.writeHead(200, { "Content-Type": "application/json" });
        return response.end(JSON.stringify(received.get(read[1]) ?? []));
      }
      const hook = /^\/hooks\/([A-Za-z0-9._-]+)(?:\/(fail-\d+|dead|slow-\d+))?$/.exec(url.pathname);
      if (request.method !== "POST" || !hook) {
        response.writeHead(404);
        return response.end();
      }
      const [, name, mode = ""] = hook;
      const list = received.get(name) ?? [];
      received.set(name, list);
      let status = 204;
      if (mode === "dead") status = 503;
      else if (mode.startsWith("fail-") && list.length < Number(mode.slice(5))) status = 503;
      list.push({ headers: request.headers, body: Buffer.concat(chunks).toString("utf8"), status });
      const answer = () => {
        response.writeHead(status, { "Content-Type": "text/plain" });
        response.end(status === 503 ? "receiver unavailable (test)" : undefined);
      };
      if (mode.startsWith("slow-")) setTimeout(answer, Number(mode.slice(5)));
      else answer();
    });
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    port: server.address().port,
    received,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
