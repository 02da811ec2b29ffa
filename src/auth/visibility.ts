/** Which repositories allow anonymous pull: the repository, or its whole namespace, is public. */
import { namespaceOf } from "../model/grants";
import type { IdentityStore } from "../storage/identity-store";
import type { RepositoryStore } from "../storage/repository-store";

export class Visibility {
  constructor(
    private readonly identities: IdentityStore,
    private readonly repositories: RepositoryStore,
  ) {}

  async isPublic(repository: string): Promise<boolean> {
    return (await this.publicAmong([repository])).has(repository);
  }

  /**
   * The public subset of `repositories`: one read per distinct namespace, then one per repository whose
   * namespace is private (a public namespace makes all its repositories public). Callers bound the count
   * (token-endpoint.ts MAX_VISIBILITY_LOOKUPS).
   */
  async publicAmong(repositories: Iterable<string>): Promise<Set<string>> {
    const names = [...new Set(repositories)];
    const namespaces = [...new Set(names.map(namespaceOf))];
    const namespaceFlags = await Promise.all(namespaces.map(async (name) => Boolean((await this.identities.getNamespace(name))?.public)));
    const publicNamespaces = new Set(namespaces.filter((_, index) => namespaceFlags[index]));
    const undecided = names.filter((name) => !publicNamespaces.has(namespaceOf(name)));
    const repositoryFlags = await Promise.all(undecided.map(async (name) => Boolean((await this.repositories.getRepository(name))?.public)));
    return new Set([
      ...names.filter((name) => publicNamespaces.has(namespaceOf(name))),
      ...undecided.filter((_, index) => repositoryFlags[index]),
    ]);
  }
}
