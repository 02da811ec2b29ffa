import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { OCI_INDEX, OCI_MANIFEST, bearer, call, expectOciError, pushImage, tokenFor, repositoryFixture } from "../helpers/registry";

let ns: string;
let repo: string;
let token: string;

beforeAll(async () => ({ ns, repo, token } = await repositoryFixture("empty")));

describe("tags list", () => {
  it("lists tags in lexical order, paginated with n/last and an RFC 5988 Link header", async () => {
    const { bytes } = await pushImage(repo, "b", token);
    for (const tag of ["a", "c", "B", "a1"]) {
      await call(`/v2/${repo}/manifests/${tag}`, { method: "PUT", headers: { ...bearer(token), "Content-Type": OCI_MANIFEST }, body: bytes });
    }
    const all = await call(`/v2/${repo}/tags/list`, { headers: bearer(token) });
    expect(await all.json()).toEqual({ name: repo, tags: ["B", "a", "a1", "b", "c"] });
    expect(all.headers.get("Link")).toBeNull();
    const first = await call(`/v2/${repo}/tags/list?n=2`, { headers: bearer(token) });
    expect(await first.json()).toEqual({ name: repo, tags: ["B", "a"] });
    expect(first.headers.get("Link")).toBe(`</v2/${repo}/tags/list?n=2&last=a>; rel="next"`);
    const next = await call(`/v2/${repo}/tags/list?n=2&last=a`, { headers: bearer(token) });
    expect(await next.json()).toEqual({ name: repo, tags: ["a1", "b"] });
    const last = await call(`/v2/${repo}/tags/list?n=2&last=b`, { headers: bearer(token) });
    expect(await last.json()).toEqual({ name: repo, tags: ["c"] });
    expect(last.headers.get("Link")).toBeNull();
  });

  it("an unknown repository → 404 NAME_UNKNOWN; a bad n → 400", async () => {
    await expectOciError(await call(`/v2/${ns}/empty/tags/list`, { headers: bearer(token) }), 404, "NAME_UNKNOWN");
    await expectOciError(await call(`/v2/${repo}/tags/list?n=-3`, { headers: bearer(token) }), 400, "PAGINATION_NUMBER_INVALID");
  });
});

describe("referrers", () => {
  it("returns an OCI index of referrers, filtered by artifactType with OCI-Filters-Applied", async () => {
    const subject = await pushImage(repo, "subject", token);
    const descriptor = { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.bytes.length };
    const sbom = await pushImage(repo, "sbom", token, { subject: descriptor, artifactType: "application/spdx+json", annotations: { kind: "sbom" } });
    const sig = await pushImage(repo, "sig", token, { subject: descriptor, artifactType: "application/vnd.example.sig" });
    const all = await call(`/v2/${repo}/referrers/${subject.digest}`, { headers: bearer(token) });
    expect(all.status).toBe(200);
    expect(all.headers.get("Content-Type")).toBe(OCI_INDEX);
    const index = (await all.json()) as { schemaVersion: number; mediaType: string; manifests: { digest: string; artifactType: string; annotations?: unknown }[] };
    expect(index.schemaVersion).toBe(2);
    expect(index.mediaType).toBe(OCI_INDEX);
    expect(index.manifests.map((m) => m.digest).sort()).toEqual([sbom.digest, sig.digest].sort());
    expect(index.manifests.find((m) => m.digest === sbom.digest)).toMatchObject({ artifactType: "application/spdx+json", annotations: { kind: "sbom" } });
    const filtered = await call(`/v2/${repo}/referrers/${subject.digest}?artifactType=application/spdx%2Bjson`, { headers: bearer(token) });
    expect(filtered.headers.get("OCI-Filters-Applied")).toBe("artifactType");
    expect(((await filtered.json()) as { manifests: { digest: string }[] }).manifests.map((m) => m.digest)).toEqual([sbom.digest]);
  });

  it("an unknown subject → 200 with no manifests; a malformed digest → 400", async () => {
    const response = await call(`/v2/${repo}/referrers/sha256:${"3".repeat(64)}`, { headers: bearer(token) });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { manifests: unknown[] }).manifests).toEqual([]);
    await expectOciError(await call(`/v2/${repo}/referrers/sha256:nope`, { headers: bearer(token) }), 400, "DIGEST_INVALID");
  });
});

describe("catalog", () => {
  it("lists repositories for registry admins, paginated", async () => {
    const catalogToken = await tokenFor({ username: "admin", secret: env.BOOTSTRAP_ADMIN_PASSWORD }, ["registry:catalog:*"]);
    const all = await call("/v2/_catalog", { headers: bearer(catalogToken) });
    const repositories = ((await all.json()) as { repositories: string[] }).repositories;
    expect(repositories).toContain(repo);
    expect([...repositories].sort()).toEqual(repositories);
    const page = await call("/v2/_catalog?n=1", { headers: bearer(catalogToken) });
    expect(((await page.json()) as { repositories: string[] }).repositories.length).toBe(1);
    if (repositories.length > 1) expect(page.headers.get("Link")).toMatch(/^<\/v2\/_catalog\?n=1&last=.+>; rel="next"$/);
  });
});
