/** Grants: a role on a namespace or a repository, held by a principal (model/principal.ts). */
export const ROLES = ["read", "write", "admin"] as const;
export type Role = (typeof ROLES)[number];

export type GrantTarget = { kind: "namespace"; name: string } | { kind: "repository"; name: string };

export interface Grant {
  target: GrantTarget;
  role: Role;
}

/** The namespace of `acme/team/app` is `acme`: a namespace grant covers every repository in it. */
export function namespaceOf(repository: string): string {
  const slash = repository.indexOf("/");
  return slash < 0 ? repository : repository.slice(0, slash);
}
