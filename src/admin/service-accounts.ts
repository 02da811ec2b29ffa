/**
 * Admin API: service accounts, the credential production should use. Named `<org id>|<name>` after the
 * namespace they are created in, independent of any user. The token is shown once (with ready-to-use
 * credential outputs) at creation and rotation, and stored only as an HMAC.
 */
import type { Grant } from "../model/grants";
import { accountState, principalIds } from "../model/principal";
import { isValidServiceAccountName, parseServiceAccountUsername } from "../auth/identity-grammar";
import { canonicalServiceAccountUsername } from "../auth/service-account-names";
import { MAX_TRUST_POLICIES, TrustPolicyError, parseTrustPolicy } from "../auth/oidc-policy";
import type { TrustPolicy } from "../model/trust-policy";
import { randomSecret } from "../crypto/secrets";
import { AdminApiError } from "../http/api-errors";
import type { IssuedCredentials, ServiceAccountView } from "../http/admin-api-types";
import { jsonResponse } from "../http/headers";
import type { ServiceAccountRecord } from "../storage/identity-store";
import { administers, requireGrantInNamespace } from "./admin-access";
import { badRequest, grant, optionalBoolean, optionalInteger, optionalString, readJson, requiredString } from "./admin-input";
import { auditedChange, type AdminContext } from "./context";
import { credentialOutputs, isValidKubernetesName } from "./credential-outputs";
import { requireNamespace } from "./namespaces";

/** 32 random bytes, base64url: 43 characters. */
const TOKEN_BYTES = 32;
/** Longest rotation overlap: a week. */
const MAX_OVERLAP_SECONDS = 7 * 24 * 3600;

/** What the API shows of an account: never a hash. */
function view(record: ServiceAccountRecord, lastUsedAt: string | null = null): ServiceAccountView {
  const { tokenHash: _token, previousTokenHash: _previous, previousTokenExpiresAt, ...rest } = record;
  const now = new Date();
  const overlapOpen = previousTokenExpiresAt !== undefined && now < new Date(previousTokenExpiresAt);
  const quayName = `${record.namespace}+${parseServiceAccountUsername(record.username)?.name}`;
  return { ...rest, quayName, state: accountState(record, now), lastUsedAt, ...(overlapOpen ? { previousTokenValidUntil: previousTokenExpiresAt } : {}) };
}

/** The account a path names, as `<org id>|<name>` or `<namespace>+<name>`; handlers use its stored `username`. */
export async function requireServiceAccount(ctx: AdminContext, name: string): Promise<ServiceAccountRecord> {
  const username = await canonicalServiceAccountUsername(ctx.identities, name);
  const record = username ? await ctx.identities.getServiceAccount(username) : null;
  if (!record) throw new AdminApiError(404, "not_found", `service account ${JSON.stringify(name.slice(0, 80))} does not exist`);
  return record;
}

/** `expiresAt` (ISO time, in the future) or null to clear it; undefined when absent. */
function expiry(body: Record<string, unknown>): string | null | undefined {
  if (body.expiresAt === null) return null;
  const value = optionalString(body, "expiresAt", 64);
  if (value === undefined) return undefined;
  const time = new Date(value);
  if (Number.isNaN(time.getTime())) throw badRequest("expiresAt must be an ISO 8601 time");
  if (time <= new Date()) throw badRequest("expiresAt must be in the future");
  return time.toISOString();
}

/** The credentials response for a freshly issued token: the token once, and ready-to-use outputs. */
function withCredentials(ctx: AdminContext, body: Record<string, unknown>, record: ServiceAccountRecord, token: string) {
  const namespace = optionalString(body, "kubernetesNamespace", 63) ?? "default";
  const secretName = optionalString(body, "secretName", 63) ?? `${record.username.split("|")[1]}-pull-secret`;
  if (!isValidKubernetesName(namespace) || !isValidKubernetesName(secretName)) {
    throw badRequest("kubernetesNamespace and secretName must be Kubernetes names (RFC 1123 labels)");
  }
  return { ...view(record), token, credentials: credentialOutputs(new URL(ctx.origin).host, record.username, token, { namespace, secretName }) } satisfies IssuedCredentials;
}

/** One grant per target; a later entry for the same target wins. */
function dedupeGrants(grants: Grant[]): Grant[] {
  const byTarget = new Map(grants.map((item) => [`${item.target.kind}:${item.target.name}`, item]));
  return [...byTarget.values()];
}

/**
 * POST `{"namespace":"acme","name":"ci-puller","description":"…","grants":[{"namespace":"acme","role":"read"}],
 * "expiresAt":"2027-01-01T00:00:00Z","kubernetesNamespace":"ci","secretName":"acme-pull"}`.
 */
export async function createServiceAccount(ctx: AdminContext, request: Request): Promise<Response> {
  const body = await readJson(request);
  const namespace = await requireNamespace(ctx, requiredString(body, "namespace", 64));
  const name = requiredString(body, "name", 64);
  if (!isValidServiceAccountName(name)) throw badRequest("name must match [a-z0-9][a-z0-9._-]*[a-z0-9] (at most 64)");
  const grants = body.grants === undefined ? [] : body.grants;
  if (!Array.isArray(grants)) throw badRequest("grants must be an array");
  const parsedGrants = dedupeGrants(
    grants.map((item: unknown) => {
      if (typeof item !== "object" || item === null || Array.isArray(item)) throw badRequest("each grant must be an object");
      return grant(item as Record<string, unknown>, true);
    }),
  );
  for (const item of parsedGrants) requireGrantInNamespace(namespace.name, item.target);
  const expiresAt = expiry(body) ?? undefined;
  const username = `${namespace.organizationId}|${name}`;
  if (await ctx.identities.getServiceAccount(username)) throw new AdminApiError(409, "conflict", `service account ${username} exists`);
  const token = randomSecret(TOKEN_BYTES);
  const record: ServiceAccountRecord = {
    username,
    namespace: namespace.name,
    description: optionalString(body, "description") ?? "",
    tokenHash: await ctx.tokenHmac.signHex(token),
    grants: parsedGrants,
    ...(expiresAt ? { expiresAt } : {}),
    disabled: false,
    createdAt: new Date().toISOString(),
    createdBy: ctx.actor,
  };
  const response = withCredentials(ctx, body, record, token);
  const detail = `${grantsDetail(parsedGrants) || "no grants"}${expiresAt ? `; expires ${expiresAt}` : ""}`;
  await auditedChange(ctx, { action: "service-account.create", target: username, detail }, () => ctx.identities.putServiceAccount(record));
  return jsonResponse(response, 201);
}

/**
 * POST …/rotate `{"overlapSeconds":3600}`: a new token, returned once; the previous one keeps working for
 * the overlap (0 = stops now), so clients can be switched without downtime. A token older than the
 * previous one stops at once.
 */
export async function rotateServiceAccount(ctx: AdminContext, request: Request, name: string): Promise<Response> {
  const record = await requireServiceAccount(ctx, name);
  const username = record.username;
  const body = await readJson(request);
  const overlapSeconds = optionalInteger(body, "overlapSeconds", 0, MAX_OVERLAP_SECONDS) ?? 0;
  const token = randomSecret(TOKEN_BYTES);
  const now = new Date();
  const { previousTokenHash: _old, previousTokenExpiresAt: _oldExpiry, ...rest } = record;
  const rotated: ServiceAccountRecord = {
    ...rest,
    tokenHash: await ctx.tokenHmac.signHex(token),
    ...(overlapSeconds > 0
      ? { previousTokenHash: record.tokenHash, previousTokenExpiresAt: new Date(now.getTime() + overlapSeconds * 1000).toISOString() }
      : {}),
    rotatedAt: now.toISOString(),
  };
  const response = withCredentials(ctx, body, rotated, token);
  await auditedChange(ctx, { action: "service-account.rotate", target: username, detail: `overlap ${overlapSeconds} s` }, () =>
    ctx.identities.putServiceAccount(rotated),
  );
  return jsonResponse(response);
}

/** Every account for a registry administrator; a namespace administrator's namespaces' accounts. */
export async function listServiceAccounts(ctx: AdminContext): Promise<Response> {
  const records = (await ctx.identities.listServiceAccounts()).filter((record) => administers(ctx.access, record.namespace));
  const lastUsed = await Promise.all(records.map((record) => ctx.identities.getLastUsed(principalIds.serviceAccount(record.username))));
  return jsonResponse({ serviceAccounts: records.map((record, index) => view(record, lastUsed[index])) });
}

export async function getServiceAccount(ctx: AdminContext, name: string): Promise<Response> {
  const record = await requireServiceAccount(ctx, name);
  return jsonResponse(view(record, await ctx.identities.getLastUsed(principalIds.serviceAccount(record.username))));
}

/** PATCH `{"disabled":true}`, `{"description":"…"}`, `{"expiresAt":"…"}` or `{"expiresAt":null}`. */
export async function updateServiceAccount(ctx: AdminContext, request: Request, name: string): Promise<Response> {
  const record = await requireServiceAccount(ctx, name);
  const username = record.username;
  const body = await readJson(request);
  const expiresAt = expiry(body);
  const disabled = optionalBoolean(body, "disabled");
  const description = optionalString(body, "description");
  const { expiresAt: _current, ...rest } = record;
  const nextExpiry = expiresAt === undefined ? record.expiresAt : (expiresAt ?? undefined);
  const updated: ServiceAccountRecord = {
    ...rest,
    disabled: disabled ?? record.disabled,
    description: description ?? record.description,
    ...(nextExpiry ? { expiresAt: nextExpiry } : {}),
  };
  // The detail is built from the validated values only (the description's text is not repeated).
  const detail = [
    disabled !== undefined && `disabled=${disabled}`,
    description !== undefined && "description changed",
    expiresAt !== undefined && `expiresAt=${expiresAt ?? "never"}`,
  ]
    .filter(Boolean)
    .join(", ");
  await auditedChange(ctx, { action: "service-account.update", target: username, detail: detail || "no change" }, () =>
    ctx.identities.putServiceAccount(updated),
  );
  return jsonResponse(view(updated, await ctx.identities.getLastUsed(principalIds.serviceAccount(username))));
}

export async function deleteServiceAccount(ctx: AdminContext, name: string): Promise<Response> {
  const { username } = await requireServiceAccount(ctx, name);
  await auditedChange(ctx, { action: "service-account.delete", target: username }, () => ctx.identities.deleteServiceAccount(username));
  return new Response(null, { status: 204 });
}

function grantsDetail(grants: Grant[]): string {
  return grants.map((item) => `${item.role} on ${item.target.kind} ${item.target.name}`).join("; ");
}

// ---- trust policies (workload identity federation; SECURITY.md) ----

/** The policy a path names: its index in the list, or its id. */
function findPolicy(record: ServiceAccountRecord, ref: string): number {
  const policies = record.trustPolicies ?? [];
  const index = /^\d{1,2}$/.test(ref) ? Number(ref) : policies.findIndex((policy) => policy.id === ref);
  if (index < 0 || index >= policies.length) throw new AdminApiError(404, "not_found", "no such trust policy");
  return index;
}

/** A policy body validated; its rule violations are answered 400 in the admin format. */
function policyFromBody(ctx: AdminContext, body: Record<string, unknown>, id: string): TrustPolicy {
  try {
    return parseTrustPolicy(body, id, ctx.allowInsecureOidcIssuers === true);
  } catch (error) {
    if (error instanceof TrustPolicyError) throw badRequest(error.message);
    throw error;
  }
}

/** What the audit record says of a policy: validated values only. */
function policyDetail(policy: TrustPolicy): string {
  const claims = Object.entries(policy.claims ?? {}).map(([name, pattern]) => `${name}=${pattern}`).join(", ");
  return `policy ${policy.id}: issuer ${policy.issuer}; audiences ${policy.audiences.join(", ")}; subject ${policy.subject}${claims ? `; claims ${claims}` : ""}`;
}

export async function listTrustPolicies(ctx: AdminContext, name: string): Promise<Response> {
  const record = await requireServiceAccount(ctx, name);
  return jsonResponse({ trustPolicies: record.trustPolicies ?? [] });
}

export async function getTrustPolicy(ctx: AdminContext, name: string, ref: string): Promise<Response> {
  const record = await requireServiceAccount(ctx, name);
  return jsonResponse(record.trustPolicies![findPolicy(record, ref)]);
}

/** PUT …/trust-policies `{"issuer","audiences","subject","claims"?,"algorithms"?,"maxTokenAgeSeconds"?,"replayWindowSeconds"?,"description"?}`: adds one (201). */
export async function addTrustPolicy(ctx: AdminContext, request: Request, name: string): Promise<Response> {
  const record = await requireServiceAccount(ctx, name);
  const username = record.username;
  const policy = policyFromBody(ctx, await readJson(request), crypto.randomUUID().slice(0, 8));
  const policies = record.trustPolicies ?? [];
  if (policies.length >= MAX_TRUST_POLICIES) throw new AdminApiError(409, "conflict", `a service account holds at most ${MAX_TRUST_POLICIES} trust policies`);
  const updated: ServiceAccountRecord = { ...record, trustPolicies: [...policies, policy] };
  // The ledger applies only the changed field, and refuses (409) if another request changed the policies meanwhile.
  await auditedChange(ctx, { action: "service-account.trust-add", target: username, detail: policyDetail(policy) }, () => ctx.identities.putServiceAccount(updated));
  return jsonResponse(policy, 201);
}

/** PUT …/trust-policies/<index or id>: replaces that policy (its id stays). */
export async function replaceTrustPolicy(ctx: AdminContext, request: Request, name: string, ref: string): Promise<Response> {
  const record = await requireServiceAccount(ctx, name);
  const username = record.username;
  const index = findPolicy(record, ref);
  const policies = [...record.trustPolicies!];
  const policy = policyFromBody(ctx, await readJson(request), policies[index]!.id);
  policies[index] = policy;
  await auditedChange(ctx, { action: "service-account.trust-set", target: username, detail: policyDetail(policy) }, () =>
    ctx.identities.putServiceAccount({ ...record, trustPolicies: policies }),
  );
  return jsonResponse(policy);
}

/** DELETE …/trust-policies/<index or id> removes one; DELETE …/trust-policies removes them all. */
export async function deleteTrustPolicy(ctx: AdminContext, name: string, ref: string | undefined): Promise<Response> {
  const record = await requireServiceAccount(ctx, name);
  const username = record.username;
  const policies = record.trustPolicies ?? [];
  let remaining: TrustPolicy[] = [];
  let detail = "every trust policy";
  if (ref !== undefined) {
    const index = findPolicy(record, ref);
    detail = `policy ${policies[index]!.id}`;
    remaining = policies.filter((_, i) => i !== index);
  } else if (policies.length === 0) {
    return new Response(null, { status: 204 });
  }
  const { trustPolicies: _removed, ...rest } = record;
  const updated: ServiceAccountRecord = remaining.length > 0 ? { ...rest, trustPolicies: remaining } : rest;
  await auditedChange(ctx, { action: "service-account.trust-remove", target: username, detail }, () => ctx.identities.putServiceAccount(updated));
  return new Response(null, { status: 204 });
}
