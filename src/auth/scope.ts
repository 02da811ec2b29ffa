/**
 * Scopes and access entries (distribution docs spec/auth/scope.md, token.md).
 *
 *   scope         := resourcescope [ ' ' resourcescope ]*
 *   resourcescope := resourcetype[(class)] ":" resourcename ":" action [ ',' action ]*
 */
import { isValidRepositoryName } from "../oci/reference";

export const REPOSITORY_ACTIONS = ["pull", "push", "delete"] as const;
export type RepositoryAction = (typeof REPOSITORY_ACTIONS)[number];

/** A resource and actions, as requested in a scope or carried in a token's `access` claim. */
export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

/** A parsed scope the registry understands; anything else is dropped, never escalated. */
export type RequestedScope =
  | { type: "repository"; name: string; actions: Set<RepositoryAction | "*"> }
  | { type: "registry"; name: "catalog"; actions: Set<"*"> };

const MAX_SCOPES = 64;
const ACTION_SET = new Set<string>([...REPOSITORY_ACTIONS, "*"]);

function parseOne(raw: string): RequestedScope | undefined {
  const first = raw.indexOf(":");
  const last = raw.lastIndexOf(":");
  // scope.md: the name may itself hold a ':' (host:port), so split type at the first and actions at the last.
  if (first <= 0 || last === first) return undefined;
  // The class in `repository(plugin)` is ignored, as distribution does: access is keyed on (type, name).
  const type = raw.slice(0, first).replace(/\([a-z0-9]+\)$/, "");
  const name = raw.slice(first + 1, last);
  const actions = raw.slice(last + 1).split(",").filter((action) => ACTION_SET.has(action));
  if (type === "registry" && name === "catalog") {
    return actions.includes("*") ? { type: "registry", name: "catalog", actions: new Set(["*"]) } : undefined;
  }
  // Names failing the OCI grammar (hosts, uppercase, "..", empty segments) get nothing.
  if (type !== "repository" || !isValidRepositoryName(name)) return undefined;
  return { type: "repository", name, actions: new Set(actions as (RepositoryAction | "*")[]) };
}

/** Parses `scope` values, each possibly holding several space-separated scopes (both forms are used). */
export function parseScopes(values: string[]): RequestedScope[] {
  const scopes: RequestedScope[] = [];
  for (const value of values) {
    for (const raw of value.split(" ")) {
      if (!raw) continue;
      const scope = parseOne(raw);
      if (scope) scopes.push(scope);
      if (scopes.length >= MAX_SCOPES) return scopes;
    }
  }
  return scopes;
}

export function formatScope(entry: AccessEntry): string {
  return `${entry.type}:${entry.name}:${entry.actions.join(",")}`;
}
