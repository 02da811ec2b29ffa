/**
 * Admin API: repository lifecycle (docs/lifecycle.md): deleting a repository, tag history and restore,
 * immutable-tag rules. Every change is decided by the repository's ledger in one transaction, and audited
 * before it is made (auditedChange).
 */
import { AdminApiError } from "../http/api-errors";
import { jsonResponse } from "../http/headers";
import { isValidRepositoryName, isValidTag, parseDigest } from "../oci/reference";
import { MAX_IMMUTABLE_RULES, isValidImmutablePattern } from "../storage/repository-ledger";
import { badRequest, optionalBoolean, optionalInteger, optionalString, readJson, requiredString } from "./admin-input";
import { auditedChange, type AdminContext } from "./context";
import { requireNamespace } from "./namespaces";

const MAX_HISTORY_LIMIT = 1000;
const HISTORY_QUERY_FIELDS = ["tag", "limit", "cursor"];

function requireRepository(name: string): string {
  if (!isValidRepositoryName(name) || !name.includes("/")) throw badRequest("invalid repository name: expected <namespace>/<path>");
  return name;
}

function requireTag(tag: string): string {
  if (!isValidTag(tag)) throw badRequest("invalid tag");
  return tag;
}

/** DELETE /admin/v1/repositories/<name>: tags, manifests, links, referrers, history, rules, sessions; not shared blob bytes. */
export async function deleteRepository(ctx: AdminContext, name: string): Promise<Response> {
  const repository = requireRepository(name);
  const deletion = await auditedChange(ctx, { action: "repository.delete", target: repository }, () => ctx.repositories.deleteRepository(repository));
  if (!deletion.existed && deletion.tags + deletion.manifests + deletion.blobLinks + deletion.uploads === 0) {
    throw new AdminApiError(404, "not_found", `repository ${JSON.stringify(repository)} does not exist`);
  }
  const { existed: _existed, ...counts } = deletion;
  return jsonResponse({ name: repository, deleted: counts });
}

/** GET /admin/v1/repositories/<name>/tags/history?tag=&limit=&cursor=: moves within the window, newest first. */
export async function tagHistory(ctx: AdminContext, name: string, url: URL): Promise<Response> {
  const repository = requireRepository(name);
  const query = url.searchParams;
  for (const key of query.keys()) if (!HISTORY_QUERY_FIELDS.includes(key)) throw badRequest(`unknown query parameter ${JSON.stringify(key.slice(0, 40))}`);
  const tag = query.get("tag") ?? undefined;
  if (tag !== undefined) requireTag(tag);
  const limit = Number(query.get("limit") ?? "100");
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_HISTORY_LIMIT) throw badRequest(`limit must be an integer from 1 to ${MAX_HISTORY_LIMIT}`);
  const cursorText = query.get("cursor");
  const cursor = cursorText === null ? undefined : Number(cursorText);
  if (cursor !== undefined && (!Number.isSafeInteger(cursor) || cursor < 1)) throw badRequest("cursor must be a cursor from a previous answer");
  const page = await ctx.repositories.tagHistoryPage(repository, tag, cursor, limit);
  return jsonResponse({
    name: repository,
    moves: page.moves.map(({ seq: _seq, ...move }) => move),
    cursor: page.cursor === null ? null : String(page.cursor),
  });
}

/** POST /admin/v1/repositories/<name>/tags/<tag>/restore `{"digest"}` or `{"time"}`. */
export async function restoreTag(ctx: AdminContext, request: Request, name: string, tagParam: string): Promise<Response> {
  const repository = requireRepository(name);
  const tag = requireTag(tagParam);
  const body = await readJson(request);
  const digestText = optionalString(body, "digest", 200);
  const timeText = optionalString(body, "time", 64);
  if ((digestText === undefined) === (timeText === undefined)) throw badRequest("give exactly one of digest or time");
  let target: { digest: string } | { time: string };
  if (digestText !== undefined) {
    const digest = parseDigest(digestText);
    if (!digest) throw badRequest("digest must be <algorithm>:<hex>");
    target = { digest: digest.value };
  } else {
    const time = new Date(timeText!);
    if (Number.isNaN(time.getTime())) throw badRequest("time must be an ISO 8601 time");
    target = { time: time.toISOString() };
  }
  const result = await auditedChange(
    ctx,
    { action: "tag.restore", target: `${repository}:${tag}`, detail: "digest" in target ? `to ${target.digest}` : `to state at ${target.time}` },
    () => ctx.repositories.restoreTag(repository, tag, target, ctx.actor),
  );
  if (result.ok) return jsonResponse({ name: repository, tag, digest: result.digest, previous: result.from, changed: result.changed });
  switch (result.reason) {
    case "immutable":
      throw new AdminApiError(403, "forbidden", `tag ${tag} is immutable (${result.denied.scope} rule ${JSON.stringify(result.denied.rule)}): it cannot be moved`);
    case "missing":
      throw new AdminApiError(409, "conflict", `${result.message}: ${result.missing.join(", ")}`);
    default:
      throw new AdminApiError(404, "not_found", result.message);
  }
}

/** GET /admin/v1/repositories/<name>/immutable-tags: the repository's rules and its namespace's. */
export async function listImmutableRules(ctx: AdminContext, name: string): Promise<Response> {
  const repository = requireRepository(name);
  const namespace = repository.slice(0, repository.indexOf("/"));
  const [rules, namespaceRules] = await Promise.all([ctx.repositories.immutableRules(repository), ctx.repositories.namespaceImmutableRules(namespace)]);
  return jsonResponse({ name: repository, rules, namespaceRules });
}

function rulePattern(body: Record<string, unknown>): string {
  const pattern = requiredString(body, "pattern", 128);
  if (!isValidImmutablePattern(pattern)) throw badRequest("pattern must be a tag glob: tag characters, * and ?");
  return pattern;
}

/** POST /admin/v1/repositories/<name>/immutable-tags `{"pattern":"v*"}` */
export async function addImmutableRule(ctx: AdminContext, request: Request, name: string): Promise<Response> {
  const repository = requireRepository(name);
  const pattern = rulePattern(await readJson(request));
  const added = await auditedChange(ctx, { action: "immutable-tag.add", target: repository, detail: `pattern=${pattern}` }, () =>
    ctx.repositories.addImmutableRule(repository, pattern, ctx.actor),
  );
  if (!added) throw new AdminApiError(409, "conflict", `a repository holds at most ${MAX_IMMUTABLE_RULES} immutable-tag rules`);
  return jsonResponse({ name: repository, rules: await ctx.repositories.immutableRules(repository) }, 201);
}

/** DELETE /admin/v1/repositories/<name>/immutable-tags `{"pattern":"v*"}` */
export async function removeImmutableRule(ctx: AdminContext, request: Request, name: string): Promise<Response> {
  const repository = requireRepository(name);
  const pattern = rulePattern(await readJson(request));
  const removed = await auditedChange(ctx, { action: "immutable-tag.remove", target: repository, detail: `pattern=${pattern}` }, () =>
    ctx.repositories.removeImmutableRule(repository, pattern),
  );
  if (!removed) throw new AdminApiError(404, "not_found", `no immutable-tag rule ${JSON.stringify(pattern)} on ${repository}`);
  return new Response(null, { status: 204 });
}

/** GET /admin/v1/namespaces/<name>/immutable-tags */
export async function listNamespaceImmutableRules(ctx: AdminContext, name: string): Promise<Response> {
  await requireNamespace(ctx, name);
  return jsonResponse({ namespace: name, rules: await ctx.repositories.namespaceImmutableRules(name) });
}

/**
 * POST (add) or DELETE (remove) /admin/v1/namespaces/<name>/immutable-tags `{"pattern":"v*"}`: answered once
 * every repository of the namespace enforces the change; 503 if some could not be reached yet (the rule is
 * stored, and delivery is retried until they have it).
 */
export async function changeNamespaceImmutableRule(ctx: AdminContext, request: Request, name: string, add: boolean): Promise<Response> {
  await requireNamespace(ctx, name);
  const pattern = rulePattern(await readJson(request));
  const result = await auditedChange(ctx, { action: add ? "immutable-tag.add" : "immutable-tag.remove", target: `namespace:${name}`, detail: `pattern=${pattern}` }, () =>
    ctx.repositories.changeNamespaceImmutableRule(name, add ? { add: pattern } : { remove: pattern }, ctx.actor),
  );
  if (result.full) throw new AdminApiError(409, "conflict", `a namespace holds at most ${MAX_IMMUTABLE_RULES} immutable-tag rules`);
  if (!add && !result.changed) throw new AdminApiError(404, "not_found", `no immutable-tag rule ${JSON.stringify(pattern)} on namespace ${name}`);
  if (result.pending > 0) {
    throw new AdminApiError(503, "conflict", `rule saved; ${result.pending} repositories do not enforce it yet (delivery is retried); repeat the request to wait for them`);
  }
  return add ? jsonResponse({ namespace: name, rules: await ctx.repositories.namespaceImmutableRules(name) }, 201) : new Response(null, { status: 204 });
}

/** Longest grace period an on-demand run may be given (30 days). */
const MAX_GC_GRACE_SECONDS = 30 * 24 * 3600;

/**
 * POST /admin/v1/gc `{"dryRun":true,"gracePeriodSeconds":N}`: one bounded garbage collection run
 * (docs/lifecycle.md); the default grace period is GC_GRACE_HOURS. A run with a shorter grace period can make
 * a push in flight fail its manifest check (the client re-uploads); it never frees bytes a manifest references.
 */
export async function collectGarbage(ctx: AdminContext, request: Request): Promise<Response> {
  const body = await readJson(request);
  const dryRun = optionalBoolean(body, "dryRun") ?? false;
  const graceSeconds = optionalInteger(body, "gracePeriodSeconds", 0, MAX_GC_GRACE_SECONDS);
  const graceMs = graceSeconds === undefined ? undefined : graceSeconds * 1000;
  const repositoryName = optionalString(body, "repository", 300);
  const repository = repositoryName === undefined ? undefined : requireRepository(repositoryName);
  const run = () => ctx.repositories.collectGarbage({ dryRun, graceMs, repository });
  const detail = `grace=${graceSeconds ?? "default"}${repository ? ` repository=${repository}` : ""}`;
  const report = dryRun ? await run() : await auditedChange(ctx, { action: "gc.run", detail }, run);
  return jsonResponse(report);
}

/**
 * DELETE /admin/v1/repositories/<name>/tags/history `{"before"?: ISO time}`: forgets tag moves before the time
 * (default: now): they can no longer be restored, and manifests kept only for them go (their blobs become
 * collectable by garbage collection).
 */
export async function purgeTagHistory(ctx: AdminContext, request: Request, name: string): Promise<Response> {
  const repository = requireRepository(name);
  const body = request.headers.get("Content-Length") === "0" || request.body === null ? {} : await readJson(request);
  const beforeText = optionalString(body, "before", 64);
  const before = beforeText === undefined ? new Date() : new Date(beforeText);
  if (Number.isNaN(before.getTime())) throw badRequest("before must be an ISO 8601 time");
  const purged = await auditedChange(ctx, { action: "tag-history.purge", target: repository, detail: `before ${before.toISOString()}` }, () =>
    ctx.repositories.purgeTagHistory(repository, before.toISOString()),
  );
  return jsonResponse({ name: repository, purged });
}

/** GET /admin/v1/repositories/<name>/retention */
export async function listRetentionRules(ctx: AdminContext, name: string): Promise<Response> {
  const repository = requireRepository(name);
  return jsonResponse({ name: repository, rules: await ctx.repositories.retentionRules(repository) });
}

/** Longest expiry a rule may set (10 years), and most tags a rule may keep. */
const MAX_EXPIRE_AFTER_SECONDS = 10 * 365 * 24 * 3600;
const MAX_KEEP_NEWEST = 100_000;

/** POST /admin/v1/repositories/<name>/retention `{"pattern","keepNewest"?,"expireAfterSeconds"?}` (adds or replaces). */
export async function setRetentionRule(ctx: AdminContext, request: Request, name: string): Promise<Response> {
  const repository = requireRepository(name);
  const body = await readJson(request);
  const pattern = rulePattern(body);
  const keepNewest = optionalInteger(body, "keepNewest", 0, MAX_KEEP_NEWEST) ?? null;
  const expireAfterSeconds = optionalInteger(body, "expireAfterSeconds", 60, MAX_EXPIRE_AFTER_SECONDS) ?? null;
  if (keepNewest === null && expireAfterSeconds === null) throw badRequest("give keepNewest, expireAfterSeconds or both");
  const detail = `pattern=${pattern} keepNewest=${keepNewest ?? "-"} expireAfterSeconds=${expireAfterSeconds ?? "-"}`;
  const saved = await auditedChange(ctx, { action: "retention.set", target: repository, detail }, () =>
    ctx.repositories.setRetentionRule(repository, { pattern, keepNewest, expireAfterSeconds }, ctx.actor),
  );
  if (!saved) throw new AdminApiError(409, "conflict", `a repository holds at most ${MAX_IMMUTABLE_RULES} retention rules`);
  return jsonResponse({ name: repository, rules: await ctx.repositories.retentionRules(repository) }, 201);
}

/** DELETE /admin/v1/repositories/<name>/retention `{"pattern"}` */
export async function removeRetentionRule(ctx: AdminContext, request: Request, name: string): Promise<Response> {
  const repository = requireRepository(name);
  const pattern = rulePattern(await readJson(request));
  const removed = await auditedChange(ctx, { action: "retention.remove", target: repository, detail: `pattern=${pattern}` }, () =>
    ctx.repositories.removeRetentionRule(repository, pattern),
  );
  if (!removed) throw new AdminApiError(404, "not_found", `no retention rule ${JSON.stringify(pattern)} on ${repository}`);
  return new Response(null, { status: 204 });
}

/**
 * POST /admin/v1/repositories/<name>/retention/run `{"dryRun"?}`: applies retention now, as the ledger's alarm
 * does when a tag is due (each removal is audited as `tag.expire` by the ledger before it is made).
 */
export async function runRetention(ctx: AdminContext, request: Request, name: string): Promise<Response> {
  const repository = requireRepository(name);
  const dryRun = optionalBoolean(await readJson(request), "dryRun") ?? false;
  return jsonResponse({ name: repository, dryRun, removed: await ctx.repositories.applyRetention(repository, dryRun) });
}

/** Longest untagged-manifest retention (10 years); the shortest is one hour. */
const MAX_UNTAGGED_SECONDS = 10 * 365 * 24 * 3600;
const MIN_UNTAGGED_SECONDS = 3600;

function untaggedSeconds(body: Record<string, unknown>): number {
  const seconds = optionalInteger(body, "expireAfterSeconds", MIN_UNTAGGED_SECONDS, MAX_UNTAGGED_SECONDS);
  if (seconds === undefined) throw badRequest(`expireAfterSeconds (${MIN_UNTAGGED_SECONDS} to ${MAX_UNTAGGED_SECONDS}) is required`);
  return seconds;
}

/** GET /admin/v1/repositories/<name>/untagged-retention: the repository's setting, its namespace's, the one in force. */
export async function getUntaggedRetention(ctx: AdminContext, name: string): Promise<Response> {
  const repository = requireRepository(name);
  const setting = await ctx.repositories.untaggedRetention(repository);
  return jsonResponse({
    name: repository,
    expireAfterSeconds: setting.repository,
    namespaceExpireAfterSeconds: setting.namespace,
    effectiveExpireAfterSeconds: setting.repository ?? setting.namespace,
  });
}

/**
 * PUT (`{"expireAfterSeconds"}`) or DELETE /admin/v1/repositories/<name>/untagged-retention: manifests no tag
 * points at for longer are removed by the repository's alarm (docs/lifecycle.md "Untagged manifests").
 */
export async function setUntaggedRetention(ctx: AdminContext, request: Request | null, name: string): Promise<Response> {
  const repository = requireRepository(name);
  const seconds = request === null ? null : untaggedSeconds(await readJson(request));
  await auditedChange(ctx, { action: seconds === null ? "untagged-retention.clear" : "untagged-retention.set", target: repository, detail: `expireAfterSeconds=${seconds ?? "-"}` }, () =>
    ctx.repositories.setUntaggedRetention(repository, seconds),
  );
  return seconds === null ? new Response(null, { status: 204 }) : getUntaggedRetention(ctx, repository);
}

/** POST /admin/v1/repositories/<name>/untagged-retention/run `{"dryRun"?}`: applies it now, as the alarm does. */
export async function runUntaggedRetention(ctx: AdminContext, request: Request, name: string): Promise<Response> {
  const repository = requireRepository(name);
  const dryRun = optionalBoolean(await readJson(request), "dryRun") ?? false;
  return jsonResponse({ name: repository, dryRun, removed: await ctx.repositories.expireUntaggedManifests(repository, dryRun) });
}

/** GET /admin/v1/namespaces/<name>/untagged-retention */
export async function getNamespaceUntaggedRetention(ctx: AdminContext, name: string): Promise<Response> {
  await requireNamespace(ctx, name);
  return jsonResponse({ namespace: name, expireAfterSeconds: await ctx.repositories.namespaceUntaggedRetention(name) });
}

/**
 * PUT (`{"expireAfterSeconds"}`) or DELETE /admin/v1/namespaces/<name>/untagged-retention: applies to every
 * repository of the namespace without a setting of its own; delivered like a namespace rule (503 until every
 * repository has it).
 */
export async function setNamespaceUntaggedRetention(ctx: AdminContext, request: Request | null, name: string): Promise<Response> {
  await requireNamespace(ctx, name);
  const seconds = request === null ? null : untaggedSeconds(await readJson(request));
  const result = await auditedChange(
    ctx,
    { action: seconds === null ? "untagged-retention.clear" : "untagged-retention.set", target: `namespace:${name}`, detail: `expireAfterSeconds=${seconds ?? "-"}` },
    () => ctx.repositories.setNamespaceUntaggedRetention(name, seconds),
  );
  if (result.pending > 0) {
    throw new AdminApiError(503, "conflict", `setting saved; ${result.pending} repositories do not apply it yet (delivery is retried); repeat the request to wait for them`);
  }
  return seconds === null ? new Response(null, { status: 204 }) : getNamespaceUntaggedRetention(ctx, name);
}
