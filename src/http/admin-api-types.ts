/**
 * What the admin API (/admin/v1) answers, as the wire sees it: one set of types for the handlers that build
 * the answers (src/admin/*, checked with `satisfies`) and the CLI that reads them (bin/edge-registry.mjs, through
 * JSDoc `import("…")` types, type-checked by tsconfig.scripts.json). Type-only: this module emits nothing and
 * imports nothing, so the CLI and the Worker share field names without sharing code.
 */

export type RoleName = "read" | "write" | "admin";

export interface GrantView {
  target: { kind: "namespace" | "repository"; name: string };
  role: RoleName;
}

export interface NamespaceView {
  name: string;
  /** Service accounts of the namespace are named `<organizationId>|<name>` (or `<namespace>+<name>`). */
  organizationId: string;
  public: boolean;
  createdAt: string;
}

export interface UserView {
  username: string;
  grants: GrantView[];
  registryAdmin: boolean;
  disabled: boolean;
  createdAt: string;
  lastUsedAt: string | null;
}

export type ServiceAccountState = "active" | "disabled" | "expired";

export interface ServiceAccountView {
  /** The stored name, `<org id>|<name>`. */
  username: string;
  /** The same account as Quay spells it, `<namespace>+<name>`; accepted wherever an account is named. */
  quayName: string;
  namespace: string;
  description: string;
  grants: GrantView[];
  state: ServiceAccountState;
  disabled: boolean;
  expiresAt?: string;
  createdAt: string;
  createdBy: string;
  rotatedAt?: string;
  lastUsedAt: string | null;
  /** Present while a rotation's overlap is open: the previous token works until then. */
  previousTokenValidUntil?: string;
  /** Workload identity federation: the `TrustPolicy` records of src/auth/oidc-policy.ts. */
  trustPolicies?: object[];
}

/**
 * Ready-to-use credentials for a service account, as registry.redhat.io's "Registry Service Accounts" page
 * hands them out (src/admin/credential-outputs.ts builds them).
 */
export interface CredentialOutputsView {
  registry: string;
  username: string;
  password: string;
  /**
   * `printf '%s\n' '<token>' | podman login --password-stdin -u '<user>' <host>`: the token goes through stdin,
   * not podman's command line (visible in the process list); `--tls-verify=false` only for a loopback registry.
   */
  podmanLogin: string;
  /** `~/.docker/config.json` / containers auth.json content. */
  authJson: { auths: Record<string, { auth: string }> };
  /** A `kubernetes.io/dockerconfigjson` Secret (YAML). */
  kubernetesSecret: string;
  kubectlCommand: string;
  ocCommand: string;
}

/** A create or rotate: the account, its token (shown this once) and the credential outputs. */
export interface IssuedCredentials extends ServiceAccountView {
  token: string;
  credentials: CredentialOutputsView;
}

/** A tag's move in its history (GET /repositories/<name>/tags/history): `from`/`to` null when created/deleted. */
export interface TagMoveView {
  tag: string;
  from: string | null;
  to: string | null;
  time: string;
  actor: string;
}

export interface AuditEventView {
  time: string;
  actor: string;
  action: string;
  target?: string;
  detail?: string;
}

/** GET /audit: newest first; `cursor` continues with the next (older) events, null when none are left. */
export interface AuditPageView {
  since: string;
  until: string;
  events: AuditEventView[];
  cursor: string | null;
}

/** A webhook subscription (README "Notifications"); never its secret, except `secret` in a creation's answer. */
export interface WebhookView {
  id: string;
  namespace?: string;
  url: string;
  /** Only this repository's events; null: every repository of the namespace. */
  repository: string | null;
  events: string[];
  createdAt: string;
  createdBy: string;
}

export interface CreatedWebhookView extends WebhookView {
  namespace: string;
  /** Shown once: `whsec_` + base64 (Standard Webhooks). */
  secret: string;
}

export interface WebhookListView {
  namespace: string;
  webhooks: WebhookView[];
}

export interface WebhookDeliveryView {
  eventId: string;
  repository: string;
  sequence: number;
  type: string;
  status: "delivered" | "retrying" | "dead";
  attempts: number;
  httpStatus: number | null;
  lastError: string | null;
  updatedAt: string;
}

export interface WebhookDeliveriesView {
  namespace: string;
  webhook: string;
  deliveries: WebhookDeliveryView[];
}
