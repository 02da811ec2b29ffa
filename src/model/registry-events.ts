/**
 * What the registry tells webhook subscribers (README "Notifications"): CloudEvents 1.0 in structured JSON
 * mode (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md, formats/json-format.md), one per
 * committed change of a repository, numbered per repository (`sequence`, the CloudEvents sequence extension).
 */

/** Event types (the CloudEvents `type` attribute is `io.edge-registry.<type>`). */
export const REGISTRY_EVENT_TYPES = [
  "manifest.pushed",
  "tag.moved",
  "manifest.deleted",
  "tag.deleted",
  "repository.deleted",
  // The lifecycle's automatic removals (docs/lifecycle.md): retention rules and `quay.expires-after`, untagged expiry.
  "tag.expired",
  "manifest.expired",
] as const;
export type RegistryEventType = (typeof REGISTRY_EVENT_TYPES)[number];

export const CLOUD_EVENT_TYPE_PREFIX = "io.edge-registry.";
/** CloudEvents structured mode (json-format.md §3.1). */
export const CLOUD_EVENTS_JSON = "application/cloudevents+json";

export function isRegistryEventType(value: unknown): value is RegistryEventType {
  return typeof value === "string" && (REGISTRY_EVENT_TYPES as readonly string[]).includes(value);
}

/** The `data` of every event: what changed, and who changed it. */
export interface RegistryEventData {
  repository: string;
  tag?: string;
  digest?: string;
  /** The digest a moved tag pointed at before (tag.moved, tag.deleted, tag.expired). */
  previousDigest?: string;
  mediaType?: string;
  size?: number;
  /** The principal (user name, service-account name) or `retention` for the lifecycle's removals. */
  actor: string;
}

export interface RegistryCloudEvent {
  specversion: "1.0";
  id: string;
  source: string;
  type: string;
  time: string;
  /** The tag, else the digest, else the repository. */
  subject: string;
  datacontenttype: "application/json";
  /** Position in the repository's commit order (decimal, from 1): receivers may order and deduplicate by it. */
  sequence: string;
  data: RegistryEventData;
}

/** The registry event type of a CloudEvent `type`. */
export function registryEventType(event: RegistryCloudEvent): RegistryEventType | null {
  const type = event.type.startsWith(CLOUD_EVENT_TYPE_PREFIX) ? event.type.slice(CLOUD_EVENT_TYPE_PREFIX.length) : "";
  return isRegistryEventType(type) ? type : null;
}

export function buildRegistryEvent(input: { id: string; seq: number; type: RegistryEventType; time: string; source: string; data: RegistryEventData }): RegistryCloudEvent {
  const { data } = input;
  return {
    specversion: "1.0",
    id: input.id,
    source: input.source,
    type: `${CLOUD_EVENT_TYPE_PREFIX}${input.type}`,
    time: input.time,
    subject: data.tag ?? data.digest ?? data.repository,
    datacontenttype: "application/json",
    sequence: String(input.seq),
    data,
  };
}

/**
 * Messages on the notification queue (wrangler.toml `[[queues.producers]]` NOTIFICATION_QUEUE): an event the
 * repository ledger committed, fanned out by the consumer into one delivery per matching subscription.
 * `holds` counts how often a delivery waited for an earlier event of its repository (in-order delivery).
 */
export type NotificationMessage =
  | { kind: "event"; namespace: string; event: RegistryCloudEvent }
  | { kind: "delivery"; namespace: string; subscription: string; event: RegistryCloudEvent; holds: number };
