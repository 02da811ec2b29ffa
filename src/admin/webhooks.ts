/**
 * Webhook subscriptions of a namespace (README "Notifications"): `/admin/v1/namespaces/<ns>/webhooks` for
 * registry administrators and `/account/v1/namespaces/<ns>/webhooks` for administrators of the namespace (an
 * `admin` grant on it; anyone else gets 403). The secret is shown once, in the creation's answer, and stored
 * sealed (crypto/sealed-box.ts); lists and the delivery log never hold it.
 */
import type { SealedBox } from "../crypto/sealed-box";
import { generateWebhookSecret, webhookSecretKey } from "../crypto/webhook-signature";
import type { CreatedWebhookView, WebhookDeliveriesView, WebhookListView, WebhookView } from "../http/admin-api-types";
import { AdminApiError } from "../http/api-errors";
import { jsonResponse } from "../http/headers";
import { REGISTRY_EVENT_TYPES, isRegistryEventType, type RegistryEventType } from "../model/registry-events";
import { namespaceOf } from "../model/grants";
import { isValidRepositoryName } from "../oci/reference";
import { notificationHubFor, webhookSecretBinding, type NotificationHub } from "../storage/notification-hub";
import { badRequest, optionalString, readJson, requiredString } from "./admin-input";
import { auditedChange, type AdminContext } from "./context";
import { requireNamespace } from "./namespaces";

/** Subscriptions per namespace: bounds the deliveries one event can cause. */
export const MAX_WEBHOOKS_PER_NAMESPACE = 25;
const MAX_URL_LENGTH = 2048;
const DELIVERY_LOG_PAGE = 50;
const MAX_DELIVERY_LOG_PAGE = 200;

export interface WebhookServices {
  hubs: DurableObjectNamespace<NotificationHub>;
  sealer: SealedBox;
  /** ALLOW_INSECURE_WEBHOOKS: `http://` receivers on 127.0.0.1 / localhost (local development, tests). */
  allowInsecure: boolean;
}

export const WEBHOOK_FIELDS = ["url", "events", "repository", "secret"] as const;

/** The namespace's hub; who may call is the route's role (admin/route-roles.ts: its administrators). */
async function authorize(ctx: AdminContext, namespace: string): Promise<DurableObjectStub<NotificationHub>> {
  await requireNamespace(ctx, namespace);
  return notificationHubFor(ctx.webhooks.hubs, namespace);
}

/** https only; http on loopback when allowed. No credentials in the URL (they would be shown in lists). */
export function checkWebhookUrl(text: string, allowInsecure: boolean): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw badRequest("url must be an absolute URL");
  }
  if (url.username || url.password) throw badRequest("url must not hold credentials; the signature authenticates deliveries");
  if (url.hash) throw badRequest("url must not have a fragment");
  const loopback = url.hostname === "127.0.0.1" || url.hostname === "localhost" || url.hostname === "[::1]";
  if (url.protocol === "https:") return url.href;
  if (url.protocol === "http:" && loopback && allowInsecure) return url.href;
  throw badRequest(allowInsecure ? "url must be https:// (or http:// on 127.0.0.1/localhost)" : "url must be https://");
}

function eventTypes(value: unknown): RegistryEventType[] {
  if (value === undefined) return [...REGISTRY_EVENT_TYPES];
  if (!Array.isArray(value) || value.length === 0 || !value.every(isRegistryEventType)) {
    throw badRequest(`events must be a non-empty list of: ${REGISTRY_EVENT_TYPES.join(", ")}`);
  }
  return [...new Set(value)];
}

/** POST …/namespaces/<ns>/webhooks `{"url", "events"?, "repository"?, "secret"?}` → 201 with the secret (shown once). */
export async function createWebhook(ctx: AdminContext, request: Request, namespace: string): Promise<Response> {
  const hub = await authorize(ctx, namespace);
  const body = await readJson(request);
  const url = checkWebhookUrl(requiredString(body, "url", MAX_URL_LENGTH), ctx.webhooks.allowInsecure);
  const events = eventTypes(body.events);
  const repository = optionalString(body, "repository", 256) ?? null;
  if (repository !== null && (!isValidRepositoryName(repository) || namespaceOf(repository) !== namespace || !repository.includes("/"))) {
    throw badRequest(`repository must be a repository name in namespace ${namespace}`);
  }
  const given = optionalString(body, "secret", 200);
  if (given !== undefined && webhookSecretKey(given) === null) throw badRequest("secret must be whsec_ followed by base64 of 24 to 64 bytes (Standard Webhooks)");
  const secret = given ?? generateWebhookSecret();
  const id = crypto.randomUUID();
  const sealedSecret = await ctx.webhooks.sealer.seal(secret, webhookSecretBinding(namespace, id));
  const detail = `${url} events=${events.length === REGISTRY_EVENT_TYPES.length ? "all" : events.join(",")}${repository ? ` repository=${repository}` : ""}`;
  const created = await auditedChange(ctx, { action: "webhook.create", target: `namespace:${namespace}/${id}`, detail: detail.slice(0, 400) }, () =>
    hub.createSubscription({ id, url, repository, events, sealedSecret, createdAt: new Date().toISOString(), createdBy: ctx.actor }, MAX_WEBHOOKS_PER_NAMESPACE),
  );
  if (!created) throw new AdminApiError(409, "conflict", `namespace ${namespace} holds ${MAX_WEBHOOKS_PER_NAMESPACE} webhooks already`);
  return jsonResponse({ ...created, namespace, secret } satisfies CreatedWebhookView, 201);
}

export async function listWebhooks(ctx: AdminContext, namespace: string): Promise<Response> {
  const hub = await authorize(ctx, namespace);
  return jsonResponse({ namespace, webhooks: await hub.listSubscriptions() } satisfies WebhookListView);
}

export async function getWebhook(ctx: AdminContext, namespace: string, id: string): Promise<Response> {
  const hub = await authorize(ctx, namespace);
  return jsonResponse({ namespace, ...(await requireWebhook(hub, namespace, id)) } satisfies WebhookView);
}

export async function deleteWebhook(ctx: AdminContext, namespace: string, id: string): Promise<Response> {
  const hub = await authorize(ctx, namespace);
  await requireWebhook(hub, namespace, id);
  await auditedChange(ctx, { action: "webhook.delete", target: `namespace:${namespace}/${id}` }, () => hub.deleteSubscription(id));
  return new Response(null, { status: 204 });
}

/** GET …/webhooks/<id>/deliveries[?limit=N]: the delivery log, newest first (status, attempts, last error). */
export async function webhookDeliveries(ctx: AdminContext, namespace: string, id: string, url: URL): Promise<Response> {
  const hub = await authorize(ctx, namespace);
  await requireWebhook(hub, namespace, id);
  const limitText = url.searchParams.get("limit");
  const limit = limitText === null ? DELIVERY_LOG_PAGE : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_DELIVERY_LOG_PAGE) throw badRequest(`limit must be an integer from 1 to ${MAX_DELIVERY_LOG_PAGE}`);
  return jsonResponse({ namespace, webhook: id, deliveries: await hub.deliveryLog(id, limit) } satisfies WebhookDeliveriesView);
}

async function requireWebhook(hub: DurableObjectStub<NotificationHub>, namespace: string, id: string) {
  const record = /^[0-9a-f-]{36}$/.test(id) ? await hub.getSubscription(id) : null;
  if (!record) throw new AdminApiError(404, "not_found", `namespace ${namespace} has no webhook ${JSON.stringify(id.slice(0, 64))}`);
  return record;
}
