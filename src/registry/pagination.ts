/** `n`/`last` pagination and the RFC 5988 `Link` header (spec.md "Listing Tags"). */
import { RegistryError } from "../http/oci-errors";

export const MAX_PAGE_SIZE = 1000;

export interface PageRequest {
  limit: number;
  last: string | undefined;
  /** Whether the client asked for a page size. */
  explicit: boolean;
}

export function parsePageRequest(query: URLSearchParams): PageRequest {
  const n = query.get("n");
  const last = query.get("last") ?? undefined;
  if (n === null) return { limit: MAX_PAGE_SIZE, last, explicit: false };
  const limit = Number(n);
  if (!/^[0-9]+$/.test(n) || !Number.isSafeInteger(limit)) {
    throw new RegistryError("PAGINATION_NUMBER_INVALID", { detail: { n: n.slice(0, 20) } });
  }
  return { limit: Math.min(limit, MAX_PAGE_SIZE), last, explicit: true };
}

/** The items after `last`, at most `limit`, and the Link header value when more remain. */
export function paginate(
  sortedItems: string[],
  page: PageRequest,
  path: string,
): { items: string[]; link: string | undefined } {
  const after = page.last === undefined ? sortedItems : sortedItems.filter((item) => item > page.last!);
  const items = after.slice(0, page.limit);
  const more = after.length > items.length && items.length > 0;
  const next = new URLSearchParams({ n: String(page.limit), last: items.at(-1) ?? "" });
  return { items, link: more ? `<${path}?${next.toString()}>; rel="next"` : undefined };
}
