/**
 * One webhook delivery: the CloudEvent in structured JSON mode (`application/cloudevents+json`), signed as
 * Standard Webhooks define (crypto/webhook-signature.ts), POSTed with a bounded wait; of the receiver's answer
 * only the status and the start of the body are kept (for the delivery log). Redirects are not followed.
 */
import { signWebhook } from "../crypto/webhook-signature";
import { CLOUD_EVENTS_JSON, type RegistryCloudEvent } from "../model/registry-events";

/** Bytes of a receiver's answer read for the delivery log; the rest is never read. */
const ANSWER_BYTES = 512;

export interface DeliveryOutcome {
  ok: boolean;
  httpStatus: number | null;
  error: string | null;
}

export async function deliverWebhook(url: string, secret: string, event: RegistryCloudEvent, timeoutMs: number): Promise<DeliveryOutcome> {
  const body = JSON.stringify(event);
  const timestamp = Math.floor(Date.now() / 1000);
  const headers = {
    "Content-Type": CLOUD_EVENTS_JSON,
    "User-Agent": "edge-registry-webhooks/1",
    "webhook-id": event.id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": await signWebhook(secret, event.id, timestamp, body),
  };
  const signal = AbortSignal.timeout(timeoutMs);
  let response: Response;
  try {
    response = await fetch(url, { method: "POST", headers, body, redirect: "manual", signal });
  } catch (error) {
    const reason = signal.aborted ? `no answer within ${timeoutMs} ms` : `connection failed: ${error instanceof Error ? error.message : String(error)}`;
    return { ok: false, httpStatus: null, error: reason.slice(0, 300) };
  }
  const answer = await readStart(response, signal).catch(() => "");
  if (response.status >= 200 && response.status < 300) return { ok: true, httpStatus: response.status, error: null };
  return { ok: false, httpStatus: response.status, error: `HTTP ${response.status}${answer ? `: ${answer}` : ""}`.slice(0, 300) };
}

/** The first ANSWER_BYTES of a body as printable text; the stream is cancelled after them. */
async function readStart(response: Response, signal: AbortSignal): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  try {
    while (length < ANSWER_BYTES && !signal.aborted) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      length += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  const bytes = new Uint8Array(Math.min(length, ANSWER_BYTES));
  let offset = 0;
  for (const chunk of chunks) {
    const part = chunk.subarray(0, bytes.length - offset);
    bytes.set(part, offset);
    offset += part.byteLength;
    if (offset >= bytes.length) break;
  }
  return new TextDecoder().decode(bytes).replace(/[^\x20-\x7e]+/g, " ").trim().slice(0, 200);
}
