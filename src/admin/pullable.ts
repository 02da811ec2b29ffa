/**
 * The account API's listing of what the caller may pull (`GET /account/v1/repositories`, `…/<name>/tags`),
 * a page at a time, for the web console and scripts. Any authenticated caller: its grants and the public
 * repositories decide what it sees (auth/access-model.ts), exactly as they decide what a token grants.
 * `/v2/_catalog` is not this: it stays the registry-wide catalog of the distribution spec.
 */
import { actionsOn, namespaceOf } from "../auth/access-model";
import { AdminApiError } from "../http/api-errors";
import { jsonResponse } from "../http/headers";
import { isValidRepositoryName, isValidTag } from "../registry/reference";
import { badRequest } from "./admin-input";
import type { AdminContext } from "./context";

/** Largest page: each tag costs a manifest read, each repository outside the caller's grants a visibility read. */
export const MAX_PULLABLE_PAGE = 100;
/** Visibility reads one repositories page may make (namespaces and repositories outside the caller's grants). */
const MAX_VISIBILITY_READS = 100;
/** Repositories whose visibility is read together. */
const VISIBILITY_BATCH = 25;
const QUERY_FIELDS = ["n", "last"];

/** `n` (1 to 100, default 100) and `last` (the name the previous page ended at). */
function pageOf(url: URL, isValidLast: (value: string) => boolean): { limit: number; last: string | undefined } {
  for (const name of url.searchParams.keys()) {
    if (!QUERY_FIELDS.includes(name)) throw badRequest(`unknown query parameter ${JSON.stringify(name.slice(0, 40))}; allowed: n, last`);
  }
  const n = url.searchParams.get("n");
  const limit = n === null ? MAX_PULLABLE_PAGE : Number(n);
  if (!/^[0-9]{1,3}$/.test(n ?? "100") || limit < 1 || limit > MAX_PULLABLE_PAGE) throw badRequest(`n must be an integer from 1 to ${MAX_PULLABLE_PAGE}`);
  const last = url.searchParams.get("last") ?? undefined;
  if (last !== undefined && !isValidLast(last)) throw badRequest("last must be a name from the previous page");
  return { limit, last };
}

function nextPage(url: URL, limit: number, last: string): string {
  return `${url.pathname}?${new URLSearchParams({ n: String(limit), last }).toString()}`;
}

/**
 * GET /account/v1/repositories?n=&last=: `{"repositories":[{"name","actions"}],"next"}`, in name order, each
 * with the actions the caller holds on it (`pull`, `push`, `delete`). `next` is the path of the following
 * page, or null. A page may hold fewer than `n` (its visibility reads are bounded); follow `next` until null.
 */
export async function listPullableRepositories(ctx: AdminContext, url: URL): Promise<Response> {
  const { limit, last } = pageOf(url, (value) => value.length <= 256);
  // The catalog is a KV list (eventually consistent), as `/v2/_catalog` reads it.
  const names = (await ctx.repositories.listRepositories()).sort().filter((name) => last === undefined || name > last);
  const found: { name: string; actions: string[] }[] = [];
  let index = 0;
  let reads = 0;
  while (index < names.length && found.length < limit) {
    const batch = names.slice(index, index + VISIBILITY_BATCH);
    // Repositories the caller's grants already cover cost nothing; the others, a read of their visibility.
    const undecided = batch.filter((name) => actionsOn(ctx.principal, name, false).size === 0);
    const cost = new Set(undecided.map((name) => namespaceOf(name))).size + undecided.length;
    if (reads > 0 && reads + cost > MAX_VISIBILITY_READS) break;
    reads += cost;
    const publicNames = undecided.length > 0 ? await ctx.visibility.publicAmong(undecided) : new Set<string>();
    for (const name of batch) {
      index += 1;
      const actions = actionsOn(ctx.principal, name, publicNames.has(name));
      if (actions.size > 0) found.push({ name, actions: [...actions].sort() });
      if (found.length >= limit) break;
    }
  }
  const next = index < names.length && index > 0 ? nextPage(url, limit, names[index - 1]!) : null;
  return jsonResponse({ repositories: found, next });
}

/** An image manifest's size as pushed (its config and layers); null for an index or anything else. */
function imageSize(bytes: ArrayBuffer): number | null {
  try {
    const manifest = JSON.parse(new TextDecoder().decode(bytes)) as { config?: { size?: unknown }; layers?: { size?: unknown }[] };
    if (!manifest.config || !Array.isArray(manifest.layers)) return null;
    const sizes = [manifest.config.size, ...manifest.layers.map((layer) => layer.size)];
    return sizes.every((size) => typeof size === "number") ? (sizes as number[]).reduce((total, size) => total + size, 0) : null;
  } catch {
    return null;
  }
}

/**
 * GET /account/v1/repositories/<name>/tags?n=&last=: `{"name","tags":[{"name","digest","mediaType","size"}],"next"}`
 * (`size`: config and layers of an image manifest, as pushed; null for an index). A repository the caller may
 * not pull is answered 404 like one that does not exist, so the answer tells nothing about it.
 */
export async function listPullableTags(ctx: AdminContext, name: string, url: URL): Promise<Response> {
  if (!isValidRepositoryName(name) || !name.includes("/")) throw badRequest("invalid repository name: expected <namespace>/<path>");
  const { limit, last } = pageOf(url, isValidTag);
  const granted = actionsOn(ctx.principal, name, false).has("pull");
  const notFound = () => new AdminApiError(404, "not_found", `repository ${JSON.stringify(name)} does not exist or you may not pull it`);
  if (!granted && !(await ctx.visibility.isPublic(name))) throw notFound();
  const tags = await ctx.repositories.listTags(name, last ?? "", limit + 1);
  const page = tags.slice(0, limit);
  if (page.length === 0 && last === undefined && !(await ctx.repositories.getRepository(name))) throw notFound();
  const entries = await Promise.all(
    page.map(async (tag) => {
      const manifest = await ctx.repositories.getTaggedManifest(name, tag);
      return { name: tag, digest: manifest?.digest ?? null, mediaType: manifest?.mediaType ?? null, size: manifest ? imageSize(manifest.bytes) : null };
    }),
  );
  const next = tags.length > limit ? nextPage(url, limit, page.at(-1)!) : null;
  return jsonResponse({ name, tags: entries, next });
}
