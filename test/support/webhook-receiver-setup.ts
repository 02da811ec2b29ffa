/**
 * vitest globalSetup of the workers projects: starts the local webhook receiver (test/support/webhook-receiver.mjs)
 * on 127.0.0.1 and provides its URL (`inject("webhookReceiverUrl")`; not declared in ProvidedContext, as
 * test/support/oidc-issuer-setup.ts explains).
 */
import type { TestProject } from "vitest/node";
// @ts-expect-error: plain ESM helper, also used by the e2e suite
import { startWebhookReceiver } from "./webhook-receiver.mjs";

export const WEBHOOK_RECEIVER_URL_KEY = "webhookReceiverUrl";

export default async function setup(project: TestProject) {
  const receiver = (await startWebhookReceiver()) as { url: string; close: () => Promise<void> };
  (project.provide as (key: string, value: unknown) => void)(WEBHOOK_RECEIVER_URL_KEY, receiver.url);
  return () => receiver.close();
}
