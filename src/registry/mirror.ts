/**
 * The pull-through mirror (README "Mirror"): a namespace configured with an upstream registry serves
 * `<namespace>/<path>` as the upstream's `<path>`. Before a manifest pull, content not yet here is copied
 * from the upstream (registry/image-copy.ts: every digest verified, blobs streamed into R2, the namespace's
 * quota applied), and a tag is checked against the upstream once its last check is older than the mirror's
 * `revalidateSeconds`. When the upstream fails, what is stored is served.
 *
 * Any principal that may pull the repository may cause the copy: it stores only what the upstream the
 * namespace's administrator chose publishes under the mapped name, verified by digest, and the tag points
 * where the upstream's does; the principal picks neither the bytes nor the tag's target (SECURITY.md).
 */
import { namespaceOf } from "../model/grants";
import { parseLookupReference } from "../oci/reference";
import type { SealedBox } from "../crypto/sealed-box";
import type { RepositoryStore } from "../storage/repository-store";
import type { UpstreamSources } from "../storage/upstream-sources";
import { UpstreamError, UpstreamRegistry, parseUpstreamBase } from "../upstream/registry-client";
import { ImageCopyError, type ImageCopier } from "./image-copy";
import { mirrorCredentialBinding, openCredentials } from "./import-runner";

/** Who the tag history names for a mirror's tag moves. */
export const MIRROR_ACTOR = "mirror";

export class PullThroughMirror {
  constructor(
    private readonly sources: UpstreamSources,
    private readonly repositories: RepositoryStore,
    private readonly box: SealedBox,
    private readonly copier: ImageCopier,
    private readonly allowInsecure: boolean,
  ) {}

  /**
   * Brings `reference` of `repository` up to date from its namespace's upstream, if the namespace is a
   * mirror. Returns true when it stored something (the caller then reads through the ledger).
   */
  async refresh(repository: string, reference: string, now = Date.now()): Promise<boolean> {
    const namespace = namespaceOf(repository);
    if (namespace === repository) return false;
    const mirror = await this.sources.getMirror(namespace);
    if (!mirror) return false;
    const parsed = parseLookupReference(reference);
    if (!parsed) return false;
    const upstreamRepository = repository.slice(namespace.length + 1);
    try {
      if (parsed.kind === "digest") {
        // Content by digest never changes: fetched once.
        if (await this.repositories.getManifest(repository, parsed.digest.value, "own-additions")) return false;
        const upstream = await this.client(mirror.upstream, mirror.credentials, namespace);
        await this.copier.copy(upstream, upstreamRepository, parsed.digest.value, { repository, actor: MIRROR_ACTOR });
        return true;
      }
      const tag = parsed.tag;
      const check = await this.sources.tagCheck(repository, tag);
      if (check && now - check.checkedAt < mirror.revalidateSeconds * 1000) return false;
      const upstream = await this.client(mirror.upstream, mirror.credentials, namespace);
      const upstreamDigest = await upstream.resolveTag(upstreamRepository, tag);
      const stored = await this.repositories.getTaggedManifest(repository, tag, "own-writes");
      let changed = false;
      if (stored?.digest !== upstreamDigest) {
        await this.copier.copy(upstream, upstreamRepository, upstreamDigest, { repository, tag, actor: MIRROR_ACTOR });
        changed = true;
      }
      // Best effort: a lost check only means one more upstream request.
      await this.sources.recordTagCheck(repository, tag, { checkedAt: now, digest: upstreamDigest }).catch(() => undefined);
      return changed;
    } catch (error) {
      // The upstream is down, refuses, or lacks the content: the pull is answered from what is stored
      // (a 404 when nothing is). Logged without credentials (errors never carry them).
      const known = error instanceof UpstreamError || error instanceof ImageCopyError;
      console.error(JSON.stringify({ event: known ? "mirror_upstream_unavailable" : "mirror_fetch_failed", repository, reference, error: String(error instanceof Error ? error.message : error).slice(0, 300) }));
      return false;
    }
  }

  private async client(upstreamText: string, credentials: Parameters<typeof openCredentials>[1], namespace: string): Promise<UpstreamRegistry> {
    const base = parseUpstreamBase(upstreamText, this.allowInsecure);
    if (!base) throw new UpstreamError(`upstream ${upstreamText} is not allowed`);
    return new UpstreamRegistry(base, await openCredentials(this.box, credentials, mirrorCredentialBinding(namespace)), this.allowInsecure);
  }
}
