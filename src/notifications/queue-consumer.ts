/**
 * The notification queue's consumer (wrangler.toml `[[queues.consumers]]`, README "Notifications"), in the
 * same Worker as the producers (the repository ledgers' event outbox):
 *
 *  - an `event` message is fanned out into one `delivery` message per subscription in its scope;
 *  - a `delivery` is signed and POSTed once its repository's earlier events were delivered to that
 *    subscription (storage/notification-hub.ts); a failure is retried with exponential backoff
 *    (`message.retry({ delaySeconds })`) until the queue's `max_retries`, then the queue moves it to the
 *    dead-letter queue, whose consumer (below) writes the final failure into the delivery log;
 *  - a delivery that must wait is sent again with a delay as a new message (so waiting never uses up its
 *    retries), at most MAX_HOLDS times; then the events before it are taken as lost and it goes.
 *
 * Queues deliver at least once and in no order (platform.md §5): duplicates are recognised by the
 * subscription's per-repository sequence number.
 */
import type { Env } from "../config/env";
import { parseConfig } from "../config/config";
import { SealedBox } from "../crypto/sealed-box";
import type { NotificationMessage } from "../model/registry-events";
import { WEBHOOK_SECRET_PURPOSE, notificationHubFor, webhookSecretBinding } from "../storage/notification-hub";
import { deliverWebhook } from "./webhook-delivery";

/** How often a delivery waits for an earlier event before that one is taken as lost. */
export const MAX_HOLDS = 200;
/** The dead-letter queue is named after its queue with this suffix (wrangler.toml `dead_letter_queue`). */
export const DEAD_LETTER_SUFFIX = "-dlq";

interface DeliverySettings {
  retryBaseSeconds: number;
  retryMaxSeconds: number;
  timeoutMs: number;
}

function positiveNumber(value: string | undefined, fallback: number): number {
  const number = Number(value);
  return value !== undefined && Number.isFinite(number) && number > 0 ? number : fallback;
}

export function deliverySettings(env: Env): DeliverySettings {
  return {
    retryBaseSeconds: positiveNumber(env.NOTIFICATION_RETRY_BASE_SECONDS, 10),
    // Queues: a retry's delay is at most 12 h (platform.md §5).
    retryMaxSeconds: Math.min(positiveNumber(env.NOTIFICATION_RETRY_MAX_SECONDS, 3600), 43_200),
    timeoutMs: Math.min(positiveNumber(env.WEBHOOK_TIMEOUT_MS, 10_000), 60_000),
  };
}

/** The delay before retry `attempt` (1 = the first delivery failed): base·2^(attempt−1), capped. */
export function retryDelaySeconds(settings: DeliverySettings, attempt: number): number {
  return Math.ceil(Math.min(settings.retryMaxSeconds, settings.retryBaseSeconds * 2 ** Math.min(Math.max(attempt - 1, 0), 30)));
}

export async function consumeNotifications(batch: MessageBatch<NotificationMessage>, env: Env): Promise<void> {
  const settings = deliverySettings(env);
  const sealer = await SealedBox.create(parseConfig(env).pepper, WEBHOOK_SECRET_PURPOSE);
  const deadLetters = batch.queue.endsWith(DEAD_LETTER_SUFFIX);
  // One message at a time: a batch is at most max_batch_size (wrangler.toml), each bounded by the receiver timeout.
  for (const message of batch.messages) {
    try {
      if (deadLetters) await recordDeadLetter(env, message);
      else if (message.body.kind === "event") await fanOut(env, message as Message<NotificationMessage & { kind: "event" }>);
      else await deliver(env, settings, sealer, message as Message<NotificationMessage & { kind: "delivery" }>);
    } catch (error) {
      console.error(JSON.stringify({ event: "notification_consumer_error", queue: batch.queue, kind: message.body.kind, error: String(error).slice(0, 200) }));
      message.retry({ delaySeconds: retryDelaySeconds(settings, message.attempts) });
    }
  }
}

async function fanOut(env: Env, message: Message<NotificationMessage & { kind: "event" }>): Promise<void> {
  const { namespace, event } = message.body;
  const queue = env.NOTIFICATION_QUEUE;
  const subscriptions = await notificationHubFor(env.NOTIFICATION_HUB, namespace).subscriptionsFor(event.data.repository, event.time);
  if (queue) {
    // sendBatch takes at most 100 messages (platform.md §5).
    for (let start = 0; start < subscriptions.length; start += 100) {
      await queue.sendBatch(
        subscriptions.slice(start, start + 100).map((subscription) => ({
          body: { kind: "delivery", namespace, subscription, event, holds: 0 } satisfies NotificationMessage,
          contentType: "json" as const,
        })),
      );
    }
  }
  message.ack();
}

async function deliver(env: Env, settings: DeliverySettings, sealer: SealedBox, message: Message<NotificationMessage & { kind: "delivery" }>): Promise<void> {
  const { namespace, subscription, event, holds } = message.body;
  const hub = notificationHubFor(env.NOTIFICATION_HUB, namespace);
  const start = await hub.startDelivery(subscription, event, holds >= MAX_HOLDS);
  if (start.action === "hold") {
    // A new message, so waiting does not count against max_retries; the wait grows like a retry's.
    await env.NOTIFICATION_QUEUE!.send({ ...message.body, holds: holds + 1 }, { contentType: "json", delaySeconds: retryDelaySeconds(settings, Math.min(holds + 1, 4)) });
    message.ack();
    return;
  }
  if (start.action !== "deliver") {
    message.ack();
    return;
  }
  const secret = await sealer.open(start.sealedSecret, webhookSecretBinding(namespace, subscription));
  const outcome =
    secret === null
      ? { ok: false, httpStatus: null, error: "the webhook's secret cannot be unsealed (SECRET_PEPPER changed?): create the webhook again" }
      : await deliverWebhook(start.url, secret, event, settings.timeoutMs);
  await hub.finishDelivery(subscription, event, outcome);
  if (outcome.ok) message.ack();
  else message.retry({ delaySeconds: retryDelaySeconds(settings, message.attempts) });
}

/** The queue gave up on a message (after max_retries): a delivery's final failure goes into its log. */
async function recordDeadLetter(env: Env, message: Message<NotificationMessage>): Promise<void> {
  const body = message.body;
  if (body.kind === "delivery") {
    await notificationHubFor(env.NOTIFICATION_HUB, body.namespace).deadLetter(body.subscription, body.event, "gave up: retries exhausted (dead-letter queue)");
  } else {
    console.error(JSON.stringify({ event: "notification_event_dead_lettered", namespace: body.namespace, id: body.event.id }));
  }
  message.ack();
}
