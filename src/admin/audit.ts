/** Admin API: the audit log, newest first, paginated, filtered by actor and action. */
import { AdminApiError } from "../http/api-errors";
import type { AuditPageView } from "../http/admin-api-types";
import { jsonResponse } from "../http/headers";
import { AUDIT_RETENTION_SECONDS, AuditCursorError, isValidAuditAction, type AuditEvent } from "../storage/audit-log";
import { NEEDS_REGISTRY_ADMIN, requireAdministers } from "./admin-access";
import { badRequest } from "./admin-input";
import type { AdminContext } from "./context";
import { concernsNamespace } from "./namespace-audit";
import { requireNamespace } from "./namespaces";

const DEFAULT_WINDOW_MS = 24 * 3600 * 1000;
const MAX_LIMIT = 1000;
const QUERY_FIELDS = new Set(["since", "until", "actor", "action", "limit", "cursor", "namespace"]);

function time(value: string | null, fallback: Date, name: string): Date {
  if (value === null) return fallback;
  const parsed = new Date(value);
  if (Number.isNaN(parsed.getTime())) throw badRequest(`${name} must be an ISO 8601 time`);
  return parsed;
}

/**
 * GET /admin/v1/audit?since=&until=&actor=&action=&limit=&cursor= (default: the last 24 hours, 100 events).
 * Admin changes by default; failed logins with `action=auth.failure`. `cursor` continues a previous answer.
 * `namespace=` keeps the events concerning one namespace (admin/namespace-audit.ts): its administrators read
 * only those; the whole log is for registry administrators.
 */
export async function queryAudit(ctx: AdminContext, url: URL): Promise<Response> {
  const query = url.searchParams;
  for (const name of query.keys()) if (!QUERY_FIELDS.has(name)) throw badRequest(`unknown query parameter ${JSON.stringify(name.slice(0, 40))}`);
  const until = time(query.get("until"), new Date(), "until");
  const since = time(query.get("since"), new Date(until.getTime() - DEFAULT_WINDOW_MS), "since");
  if (since > until) throw badRequest("since must not be after until");
  const oldest = new Date(Date.now() - AUDIT_RETENTION_SECONDS * 1000);
  const limit = Number(query.get("limit") ?? "100");
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw badRequest(`limit must be an integer from 1 to ${MAX_LIMIT}`);
  const action = query.get("action") ?? undefined;
  if (action !== undefined && !isValidAuditAction(action)) throw badRequest("action must be an audit action such as user.update or auth.failure");
  const actor = query.get("actor") ?? undefined;
  if (actor !== undefined && (actor.length === 0 || actor.length > 4096)) throw badRequest("actor must be 1 to 4096 characters");
  const namespace = query.get("namespace");
  if (namespace === null && !ctx.access.registryAdmin) {
    throw new AdminApiError(403, "forbidden", `${NEEDS_REGISTRY_ADMIN().message} to read the whole audit log; add namespace=<a namespace you administer>`);
  }
  let where: ((event: AuditEvent) => boolean) | undefined;
  if (namespace !== null) {
    requireAdministers(ctx.access, namespace);
    const { organizationId } = await requireNamespace(ctx, namespace);
    where = (event) => concernsNamespace(event, namespace, organizationId);
  }
  try {
    const page = await ctx.audit.query({
      since: since < oldest ? oldest : since,
      until,
      actor,
      action,
      limit,
      cursor: query.get("cursor") ?? undefined,
      where,
    });
    return jsonResponse({ since: since.toISOString(), until: until.toISOString(), events: page.events, cursor: page.cursor ?? null } satisfies AuditPageView);
  } catch (error) {
    if (error instanceof AuditCursorError) throw new AdminApiError(400, "invalid_request", error.message);
    throw error;
  }
}
