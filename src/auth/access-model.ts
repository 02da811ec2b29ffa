/**
 * The access model: which actions an identity holds on a repository, and the granted subset of
 * requested scopes (token.md: "the intersection of the set of requested actions … and the set of
 * actions that the client has in fact been granted … must not be considered an error").
 * Pure functions: the caller loads grants and visibility first.
 */
import { namespaceOf, type Grant, type Role } from "../model/grants";
import type { PrincipalKind } from "../model/principal";
import type { AccessEntry, RepositoryAction, RequestedScope } from "./scope";

export const ROLE_ACTIONS: Record<Role, readonly RepositoryAction[]> = {
  read: ["pull"],
  write: ["pull", "push"],
  admin: ["pull", "push", "delete"],
};

/** What the access decision needs to know about the caller. */
export interface Principal {
  /** `anonymous`, a web user, or a service account. */
  kind: "anonymous" | PrincipalKind;
  /** Registry administrators hold every action everywhere, and alone may read the catalog. */
  registryAdmin: boolean;
  grants: Grant[];
}

export const ANONYMOUS: Principal = { kind: "anonymous", registryAdmin: false, grants: [] };

/** Actions `principal` holds on `repository`; `isPublic` says whether the repository allows anonymous pull. */
export function actionsOn(principal: Principal, repository: string, isPublic: boolean): Set<RepositoryAction> {
  const held = new Set<RepositoryAction>();
  if (isPublic) held.add("pull");
  if (principal.registryAdmin) {
    for (const action of ROLE_ACTIONS.admin) held.add(action);
    return held;
  }
  const namespace = namespaceOf(repository);
  for (const grant of principal.grants) {
    const applies =
      grant.target.kind === "namespace" ? grant.target.name === namespace : grant.target.name === repository;
    if (applies) for (const action of ROLE_ACTIONS[grant.role]) held.add(action);
  }
  return held;
}

/**
 * The `access` claim for a token: for each requested resource, the requested actions the principal
 * holds. `*` is expanded to the concrete actions held, so a token never carries a repository wildcard.
 * Entries for the same resource are merged; resources with nothing granted keep an empty action list.
 */
export function grantedAccess(
  principal: Principal,
  requested: RequestedScope[],
  isPublic: (repository: string) => boolean,
): AccessEntry[] {
  const byResource = new Map<string, AccessEntry>();
  for (const scope of requested) {
    const key = `${scope.type}:${scope.name}`;
    const entry = byResource.get(key) ?? { type: scope.type, name: scope.name, actions: [] };
    byResource.set(key, entry);
    const granted = new Set(entry.actions);
    if (scope.type === "registry") {
      if (principal.registryAdmin) granted.add("*");
    } else {
      const held = actionsOn(principal, scope.name, isPublic(scope.name));
      for (const action of held) if (scope.actions.has(action) || scope.actions.has("*")) granted.add(action);
    }
    entry.actions = [...granted].sort();
  }
  return [...byResource.values()];
}

/** Whether a token's access claim allows `action` on (type, name); `*` in the claim matches any action. */
export function accessAllows(access: AccessEntry[], type: string, name: string, action: string): boolean {
  return access.some(
    (entry) => entry.type === type && entry.name === name && (entry.actions.includes(action) || entry.actions.includes("*")),
  );
}
