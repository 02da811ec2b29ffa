#!/usr/bin/env node
// A webhook receiver for edge-registry notifications (README "Notifications"): verifies each delivery's
// signature (Standard Webhooks: HMAC-SHA-256 over `<webhook-id>.<webhook-timestamp>.<raw body>`, keyed by the
// base64 bytes after `whsec_`), refuses old timestamps (replays), deduplicates by event id, and prints the
// CloudEvent. Node ≥ 18, no dependencies:
//
//   WEBHOOK_SECRET=whsec_... PORT=8000 node examples/webhook-receiver.mjs
//
// `verifyWebhook` is the whole recipe; the e2e tests verify every delivery with it.
import { createHmac, timingSafeEqual } from "node:crypto";
import http from "node:http";
import { fileURLToPath } from "node:url";

/** True when `headers` (lower-case names) sign `rawBody` (the exact bytes received, as a string) with `secret`. */
export function verifyWebhook(secret, headers, rawBody, toleranceSeconds = 300, nowSeconds = Date.now() / 1000) {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signatures = headers["webhook-signature"];
  if (!id || !timestamp || !signatures || !/^\d+$/.test(timestamp)) return false;
  // Replay protection: the signed timestamp must be recent.
  if (Math.abs(nowSeconds - Number(timestamp)) > toleranceSeconds) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key).update(`${id}.${timestamp}.${rawBody}`).digest();
  // The header may carry several space-separated signatures (e.g. during a secret rotation): one must match.
  return signatures.split(" ").some((signature) => {
    const [version, value] = signature.split(",", 2);
    const given = Buffer.from(value ?? "", "base64");
    return version === "v1" && given.length === expected.length && timingSafeEqual(given, expected);
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const secret = process.env.WEBHOOK_SECRET;
  if (!secret) throw new Error("set WEBHOOK_SECRET to the secret printed when the webhook was created");
  const seen = new Set();
  http
    .createServer((request, response) => {
      const chunks = [];
      request.on("data", (chunk) => chunks.push(chunk));
      request.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        if (!verifyWebhook(secret, request.headers, body)) {
          response.writeHead(401).end();
          return;
        }
        const event = JSON.parse(body);
        // At least once: a retried delivery may arrive again; its id (and its sequence per repository) is the same.
        if (!seen.has(event.id)) {
          seen.add(event.id);
          console.log(`${event.time} ${event.type} ${event.data.repository} ${event.subject} #${event.sequence} by ${event.data.actor}`);
        }
        response.writeHead(204).end();
      });
    })
    .listen(Number(process.env.PORT ?? 8000), "127.0.0.1", () => console.log(`listening on http://127.0.0.1:${process.env.PORT ?? 8000}/`));
}
