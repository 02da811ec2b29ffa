/**
 * Admin API: imports from other registries and pull-through mirrors (README "Import", "Mirror"), for registry
 * administrators (/admin/v1) and administrators of the namespace (/account/v1, the same paths).
 *
 * - `POST /repositories/<repo>/imports` `{source, tag?, allTags?, tagPattern?, platforms?, scheduled?,
 *   everySeconds?, username?, password?}` sets the repository's source and imports now (at most
 *   REQUEST_COPIES images in the request; the rest by the cron trigger); `GET` its source and status;
 *   `DELETE` stops importing (imported content stays).
 * - `PUT /namespaces/<ns>/mirror` `{upstream, revalidateSeconds?, username?, password?}`; `GET`; `DELETE`.
 *
 * Passwords are sealed (crypto/sealed-box.ts) and never returned: answers name the username only.
 */
import { isValidNamespace } from "../auth/identity-grammar";
import type { SealedBox } from "../crypto/sealed-box";
import { AdminApiError } from "../http/api-errors";
import { jsonResponse } from "../http/headers";
import { namespaceOf } from "../model/grants";
import { isValidRepositoryName, isValidTag } from "../oci/reference";
import type { ImportRunner } from "../registry/import-runner";
import { importCredentialBinding, mirrorCredentialBinding } from "../registry/import-runner";
import type { ImportRecord, MirrorRecord, SealedCredentials, UpstreamSources } from "../storage/upstream-sources";
import { parseUpstreamBase } from "../upstream/registry-client";
import { badRequest, optionalBoolean, optionalInteger, optionalString, readJson, requiredString } from "./admin-input";
import { auditedChange, type AdminContext } from "./context";
import { requireNamespace } from "./namespaces";

/** What the admin API needs for imports and mirrors (built in services.ts). */
export interface UpstreamAdmin {
  sources: UpstreamSources;
  credentials: SealedBox;
  allowInsecure: boolean;
  imports: ImportRunner;
}

export const IMPORT_FIELDS = ["source", "tag", "allTags", "tagPattern", "platforms", "scheduled", "everySeconds", "username", "password"] as const;
export const MIRROR_FIELDS = ["upstream", "revalidateSeconds", "username", "password"] as const;

/** Images an import request copies itself; the rest are the cron trigger's (bounded work per request). */
const REQUEST_COPIES = 4;
/** Shortest schedule (the cron trigger runs hourly; a shorter interval is checked at each run). */
const MIN_EVERY_SECONDS = 60;
const MAX_PLATFORMS = 16;
const PLATFORM_PATTERN = /^[a-z0-9]+\/[a-z0-9_]+(?:\/[a-z0-9]+)?$/;

/** `host[:port]/path[:tag]`, optionally with `http://`/`https://`: the registry, the repository, the tag. */
export function parseSourceReference(text: string): { registry: string; repository: string; tag?: string } | null {
  const scheme = /^(https?:\/\/)/.exec(text)?.[1] ?? "";
  const rest = text.slice(scheme.length);
  const slash = rest.indexOf("/");
  if (slash <= 0) return null;
  const host = rest.slice(0, slash);
  let path = rest.slice(slash + 1);
  let tag: string | undefined;
  const colon = path.lastIndexOf(":");
  if (colon > path.lastIndexOf("/")) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (!isValidTag(tag)) return null;
  }
  if (!isValidRepositoryName(path)) return null;
  return { registry: `${scheme}${host}`, repository: path, ...(tag !== undefined ? { tag } : {}) };
}

function requireRepository(name: string): string {
  if (!isValidRepositoryName(name) || !name.includes("/")) throw badRequest("invalid repository name: expected <namespace>/<path>");
  return name;
}


async function sealCredentials(ctx: AdminContext, body: Record<string, unknown>, binding: string): Promise<SealedCredentials | undefined> {
  const username = optionalString(body, "username", 256);
  const password = optionalString(body, "password", 4096);
  if ((username === undefined) !== (password === undefined)) throw badRequest("username and password go together");
  if (username === undefined || password === undefined) return undefined;
  return { username, sealedPassword: await ctx.upstream.credentials.seal(password, binding) };
}

/** A record as answered: the password never leaves the store. */
function importView(record: ImportRecord) {
  const { credentials, ...rest } = record;
  return { ...rest, ...(credentials ? { credentials: { username: credentials.username } } : {}), nextRunAt: record.nextRunAt !== undefined ? new Date(record.nextRunAt).toISOString() : undefined };
}

function mirrorView(record: MirrorRecord) {
  const { credentials, ...rest } = record;
  return { ...rest, ...(credentials ? { credentials: { username: credentials.username } } : {}) };
}

/** POST …/repositories/<repo>/imports */
export async function createImport(ctx: AdminContext, request: Request, name: string): Promise<Response> {
  const repository = requireRepository(name);
  await requireNamespace(ctx, namespaceOf(repository));
  const body = await readJson(request);
  const source = parseSourceReference(requiredString(body, "source", 512));
  if (!source) throw badRequest("source must be host[:port]/repository[:tag] (http:// or https:// may precede it)");
  if (!parseUpstreamBase(source.registry, ctx.upstream.allowInsecure)) {
    throw badRequest("source registry must be https:// (plain http:// only on loopback with ALLOW_INSECURE_UPSTREAMS)");
  }
  const allTags = optionalBoolean(body, "allTags") ?? false;
  const tagPattern = optionalString(body, "tagPattern", 256);
  const targetTag = optionalString(body, "tag", 128);
  if (targetTag !== undefined && !isValidTag(targetTag)) throw badRequest("tag is not a valid tag");
  const modes = [source.tag !== undefined, allTags, tagPattern !== undefined].filter(Boolean).length;
  if (modes !== 1) throw badRequest("name exactly one of: a source tag (host/repo:tag), allTags, tagPattern");
  if (targetTag !== undefined && source.tag === undefined) throw badRequest("tag applies to a one-tag import");
  if (tagPattern !== undefined) {
    try {
      new RegExp(tagPattern);
    } catch {
      throw badRequest("tagPattern is not a valid regular expression");
    }
  }
  const platforms = body.platforms;
  if (platforms !== undefined && (!Array.isArray(platforms) || platforms.length > MAX_PLATFORMS || !platforms.every((p) => typeof p === "string" && PLATFORM_PATTERN.test(p)))) {
    throw badRequest(`platforms must be a list of at most ${MAX_PLATFORMS} os/arch[/variant]`);
  }
  const scheduled = optionalBoolean(body, "scheduled") ?? false;
  const everySeconds = optionalInteger(body, "everySeconds", MIN_EVERY_SECONDS, 365 * 86400);
  if (everySeconds !== undefined && !scheduled) throw badRequest("everySeconds applies to a scheduled import");
  const record: ImportRecord = {
    repository,
    source: {
      registry: parseUpstreamBase(source.registry, ctx.upstream.allowInsecure)!.origin,
      repository: source.repository,
      ...(source.tag !== undefined ? { tag: source.tag } : {}),
      ...(allTags ? { allTags } : {}),
      ...(tagPattern !== undefined ? { tagPattern } : {}),
      ...(platforms !== undefined ? { platforms: platforms as string[] } : {}),
    },
    ...(targetTag !== undefined ? { targetTag } : {}),
    scheduled,
    everySeconds: scheduled ? (everySeconds ?? 3600) : null,
    createdAt: new Date().toISOString(),
    createdBy: ctx.actor,
    state: "pending",
    pendingTags: [],
    tags: {},
  };
  const credentials = await sealCredentials(ctx, body, importCredentialBinding(repository));
  if (credentials) record.credentials = credentials;
  const sourceText = `${record.source.registry}/${record.source.repository}${source.tag !== undefined ? `:${source.tag}` : ""}`;
  // The run saves the record with its status.
  const status = await auditedChange(ctx, { action: "import.set", target: repository, detail: `source=${sourceText}; scheduled=${scheduled}` }, () =>
    ctx.upstream.imports.run(record, REQUEST_COPIES),
  );
  return jsonResponse(importView(status), 201);
}

/** GET …/repositories/<repo>/imports */
export async function getImport(ctx: AdminContext, name: string): Promise<Response> {
  const repository = requireRepository(name);
  const record = await ctx.upstream.sources.getImport(repository);
  if (!record) throw new AdminApiError(404, "not_found", `repository ${JSON.stringify(repository)} has no import source`);
  return jsonResponse(importView(record));
}

/** DELETE …/repositories/<repo>/imports: stops importing; what was imported stays. */
export async function deleteImport(ctx: AdminContext, name: string): Promise<Response> {
  const repository = requireRepository(name);
  if (!(await ctx.upstream.sources.getImport(repository))) throw new AdminApiError(404, "not_found", `repository ${JSON.stringify(repository)} has no import source`);
  await auditedChange(ctx, { action: "import.delete", target: repository }, () => ctx.upstream.sources.deleteImport(repository));
  return new Response(null, { status: 204 });
}

/** PUT …/namespaces/<ns>/mirror */
export async function setMirror(ctx: AdminContext, request: Request, namespace: string): Promise<Response> {
  if (!isValidNamespace(namespace)) throw new AdminApiError(404, "not_found", `namespace ${JSON.stringify(namespace)} does not exist`);
  await requireNamespace(ctx, namespace);
  const body = await readJson(request);
  const upstream = parseUpstreamBase(requiredString(body, "upstream", 512), ctx.upstream.allowInsecure);
  if (!upstream) throw badRequest("upstream must be https://host[:port] (plain http:// only on loopback with ALLOW_INSECURE_UPSTREAMS)");
  const record: MirrorRecord = {
    namespace,
    upstream: upstream.origin,
    revalidateSeconds: optionalInteger(body, "revalidateSeconds", 0, 30 * 86400) ?? 300,
    createdAt: new Date().toISOString(),
    createdBy: ctx.actor,
  };
  const credentials = await sealCredentials(ctx, body, mirrorCredentialBinding(namespace));
  if (credentials) record.credentials = credentials;
  await auditedChange(ctx, { action: "mirror.set", target: namespace, detail: `upstream=${record.upstream}; revalidate=${record.revalidateSeconds}s` }, () =>
    ctx.upstream.sources.putMirror(record),
  );
  return jsonResponse(mirrorView(record));
}

/** GET …/namespaces/<ns>/mirror */
export async function getMirror(ctx: AdminContext, namespace: string): Promise<Response> {
  const record = isValidNamespace(namespace) ? await ctx.upstream.sources.getMirror(namespace) : null;
  if (!record) throw new AdminApiError(404, "not_found", `namespace ${JSON.stringify(namespace)} is not a mirror`);
  return jsonResponse(mirrorView(record));
}

/** DELETE …/namespaces/<ns>/mirror: no longer a mirror; mirrored content stays. */
export async function deleteMirror(ctx: AdminContext, namespace: string): Promise<Response> {
  if (!isValidNamespace(namespace) || !(await ctx.upstream.sources.getMirror(namespace))) {
    throw new AdminApiError(404, "not_found", `namespace ${JSON.stringify(namespace)} is not a mirror`);
  }
  await auditedChange(ctx, { action: "mirror.delete", target: namespace }, () => ctx.upstream.sources.deleteMirror(namespace));
  return new Response(null, { status: 204 });
}
