/** Which repositories allow anonymous pull: the repository, or its whole namespace, is public. */
import { namespaceOf } from "./access-model";
import type { IdentityStore } from "../storage/identity-store";
import type { RepositoryStore } from "../storage/repository-store";

export class Visibility {
  constructor(
    private readonly identities: IdentityStore,
    private readonly repositories: RepositoryStore,
  ) {}

  async isPublic(repository: string): Promise<boolean> {
    const [record, namespace] = await Promise.all([
      this.repositories.getRepository(repository),
      this.identities.getNamespace(namespaceOf(repository)),
    ]);
    return Boolean(record?.public || namespace?.public);
  }

  /** The public subset of `repositories`, looked up in parallel. */
  async publicAmong(repositories: Iterable<string>): Promise<Set<string>> {
    const names = [...new Set(repositories)];
    const flags = await Promise.all(names.map((name) => this.isPublic(name)));
    return new Set(names.filter((_, index) => flags[index]));
  }
}
