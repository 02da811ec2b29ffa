/** Admin API: the audit log, by time range and actor. */
import { jsonResponse } from "../http/headers";
import { AUDIT_RETENTION_SECONDS } from "../storage/audit-log";
import { badRequest } from "./admin-input";
import type { AdminContext } from "./context";

const DEFAULT_WINDOW_MS = 24 * 3600 * 1000;
const MAX_LIMIT = 1000;

function time(value: string | null, fallback: Date, name: string): Date {
  if (value === null) return fallback;
  const parsed = new Date(value);
  if (Number.isNaN(parsed.getTime())) throw badRequest(`${name} must be an ISO 8601 time`);
  return parsed;
}

/** GET /admin/v1/audit?since=<ISO>&until=<ISO>&actor=<name>&limit=<n>; defaults to the last 24 hours. */
export async function queryAudit(ctx: AdminContext, url: URL): Promise<Response> {
  const query = url.searchParams;
  const until = time(query.get("until"), new Date(), "until");
  const since = time(query.get("since"), new Date(until.getTime() - DEFAULT_WINDOW_MS), "since");
  if (since > until) throw badRequest("since must not be after until");
  const oldest = new Date(Date.now() - AUDIT_RETENTION_SECONDS * 1000);
  const limit = Number(query.get("limit") ?? "100");
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw badRequest(`limit must be an integer from 1 to ${MAX_LIMIT}`);
  const events = await ctx.audit.query({
    since: since < oldest ? oldest : since,
    until,
    actor: query.get("actor") ?? undefined,
    limit,
  });
  return jsonResponse({ since: since.toISOString(), until: until.toISOString(), events });
}
