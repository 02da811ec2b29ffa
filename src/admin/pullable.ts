/**
 * The account API's listing of what the caller may pull (`GET /account/v1/repositories`, `…/<name>/tags`),
 * a page at a time, for the web console and scripts. Any authenticated caller: its grants and the public
 * repositories decide what it sees (auth/access-model.ts), exactly as they decide what a token grants.
 * `/v2/_catalog` is not this: it stays the registry-wide catalog of the distribution spec.
 */
import { actionsOn } from "../auth/access-model";
import { namespaceOf } from "../model/grants";
import { AdminApiError } from "../http/api-errors";
import { jsonResponse } from "../http/headers";
import { isValidRepositoryName, isValidTag } from "../oci/reference";
import { badRequest } from "./admin-input";
import type { AdminContext } from "./context";

/** Largest page: each tag costs a manifest read, each repository outside the caller's grants a visibility read. */
export const MAX_PULLABLE_PAGE = 100;
/** Visibility reads one repositories page may make (namespaces and repositories outside the caller's grants). */
const MAX_VISIBILITY_READS = 100;
/** Catalog (KV list) calls one repositories page may make. */
const MAX_CATALOG_READS = 10;
/** Catalog names read at a time (their visibility is read together). */
const CATALOG_BATCH = 25;
/** Longest KV list cursor accepted back. */
const MAX_CURSOR_LENGTH = 1024;

/** `n` (1 to 100, default 100) and the position to continue from (`last` for tags, `cursor` for repositories). */
function pageOf(url: URL, position: "last" | "cursor", isValidPosition: (value: string) => boolean): { limit: number; from: string | undefined } {
  for (const name of url.searchParams.keys()) {
    if (name !== "n" && name !== position) throw badRequest(`unknown query parameter ${JSON.stringify(name.slice(0, 40))}; allowed: n, ${position}`);
  }
  const n = url.searchParams.get("n");
  const limit = n === null ? MAX_PULLABLE_PAGE : Number(n);
  if (!/^[0-9]{1,3}$/.test(n ?? "100") || limit < 1 || limit > MAX_PULLABLE_PAGE) throw badRequest(`n must be an integer from 1 to ${MAX_PULLABLE_PAGE}`);
  const from = url.searchParams.get(position) ?? undefined;
  if (from !== undefined && !isValidPosition(from)) throw badRequest(`${position} must be the one the previous page gave`);
  return { limit, from };
}

function nextPage(url: URL, limit: number, position: "last" | "cursor", value: string): string {
  return `${url.pathname}?${new URLSearchParams({ n: String(limit), [position]: value }).toString()}`;
}

/**
 * GET /account/v1/repositories?n=&cursor=: `{"repositories":[{"name","actions"}],"next"}`, in name order, each
 * with the actions the caller holds on it (`pull`, `push`, `delete`). `next` is the path of the following page,
 * or null. The work of a page is bounded (catalog reads, visibility reads), so a page may hold fewer than `n`,
 * even none, while `next` is not null: follow it to the end.
 */
export async function listPullableRepositories(ctx: AdminContext, url: URL): Promise<Response> {
  const { limit, from } = pageOf(url, "cursor", (value) => value.length <= MAX_CURSOR_LENGTH);
  const found: { name: string; actions: string[] }[] = [];
  let cursor = from === undefined ? undefined : await catalogCursor(ctx, from);
  let reads = 0;
  for (let calls = 0; found.length < limit && calls < MAX_CATALOG_READS; calls++) {
    // The catalog is KV's list (eventually consistent), as `/v2/_catalog` reads it. A batch never holds more
    // names than the page still has room for, so it is always taken whole.
    const batch = await ctx.repositories.listRepositoryPage(cursor, Math.min(limit - found.length, CATALOG_BATCH));
    // Repositories the caller's grants cover cost nothing; the others, a read of their visibility.
    const undecided = batch.names.filter((name) => actionsOn(ctx.principal, name, false).size === 0);
    const cost = new Set(undecided.map(namespaceOf)).size + undecided.length;
    if (reads > 0 && reads + cost > MAX_VISIBILITY_READS) break;
    reads += cost;
    const publicNames = undecided.length > 0 ? await ctx.visibility.publicAmong(undecided) : new Set<string>();
    for (const name of batch.names) {
      const actions = actionsOn(ctx.principal, name, publicNames.has(name));
      if (actions.size > 0) found.push({ name, actions: [...actions].sort() });
    }
    cursor = batch.cursor;
    if (cursor === undefined) break;
  }
  const next = cursor === undefined ? null : nextPage(url, limit, "cursor", await signedCursor(ctx, cursor));
  return jsonResponse({ repositories: found, next });
}

/** Separates these MACs from the key's other use (service-account token hashes, which hold no newline). */
const CURSOR_PURPOSE = "account-api catalog cursor\n";

/**
 * The catalog's KV cursor travels signed (`<hmac>.<cursor>`): only a cursor this API gave is passed to KV, so a
 * forged one is the caller's error (400), never an error of KV's.
 */
async function signedCursor(ctx: AdminContext, kvCursor: string): Promise<string> {
  return `${await ctx.tokenHmac.signHex(CURSOR_PURPOSE + kvCursor)}.${kvCursor}`;
}

async function catalogCursor(ctx: AdminContext, signed: string): Promise<string> {
  const dot = signed.indexOf(".");
  const kvCursor = signed.slice(dot + 1);
  if (dot !== 64 || !(await ctx.tokenHmac.verifyHex(CURSOR_PURPOSE + kvCursor, signed.slice(0, dot)))) {
    throw badRequest("cursor must be the one the previous page gave");
  }
  return kvCursor;
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
  const { limit, from: last } = pageOf(url, "last", isValidTag);
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
  const next = tags.length > limit ? nextPage(url, limit, "last", page.at(-1)!) : null;
  return jsonResponse({ name, tags: entries, next });
}
