/** Content discovery: tags, referrers and the catalog (spec.md "Content Discovery"). */
import { FILTERS_APPLIED_HEADER, jsonResponse } from "../http/headers";
import { RegistryError } from "../http/oci-errors";
import type { RegistryContext, RepositoryRequest } from "./context";
import { OCI_INDEX } from "./media-types";
import { paginate, parsePageRequest } from "./pagination";
import { requireDigest } from "./oci-names";

/** Tags come from the ledger: a KV list cannot tell a cached miss, and a client lists right after it pushes. */
export async function listTags(ctx: RegistryContext, req: RepositoryRequest): Promise<Response> {
  const page = parsePageRequest(req.url.searchParams);
  // One more than the page, so the Link header is sent only when another page exists.
  const tags = await ctx.repositories.listTags(req.repository, page.last ?? "", page.limit + 1);
  if (tags.length === 0 && !(await ctx.repositories.getRepository(req.repository))) {
    throw new RegistryError("NAME_UNKNOWN", { detail: { name: req.repository } });
  }
  const { items, link } = paginate(tags, { ...page, last: undefined }, `/v2/${req.repository}/tags/list`);
  return jsonResponse({ name: req.repository, tags: items }, 200, link ? { Link: link } : {});
}

export async function listReferrers(ctx: RegistryContext, req: RepositoryRequest, digestValue: string): Promise<Response> {
  const subject = requireDigest(digestValue);
  const artifactType = req.url.searchParams.get("artifactType");
  const all = await ctx.repositories.listReferrers(req.repository, subject.value);
  const manifests = artifactType === null ? all : all.filter((descriptor) => descriptor.artifactType === artifactType);
  // spec.md "Listing Referrers": always 200 with an image index, even for an unknown subject.
  const headers: Record<string, string> = { "Content-Type": OCI_INDEX };
  if (artifactType !== null) headers[FILTERS_APPLIED_HEADER] = "artifactType";
  const response = jsonResponse({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }, 200, headers);
  response.headers.set("Content-Type", OCI_INDEX);
  return response;
}

export async function listCatalog(ctx: RegistryContext, url: URL): Promise<Response> {
  const page = parsePageRequest(url.searchParams);
  const names = await ctx.repositories.listRepositories();
  const { items, link } = paginate(names.sort(), page, "/v2/_catalog");
  return jsonResponse({ repositories: items }, 200, link ? { Link: link } : {});
}
