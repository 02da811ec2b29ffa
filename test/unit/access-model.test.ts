import { describe, expect, it } from "vitest";
import {
  ANONYMOUS,
  accessAllows,
  actionsOn,
  grantedAccess,
  ROLE_ACTIONS,
  type Principal,
} from "../../src/auth/access-model";
import { ROLES, type Grant, type Role } from "../../src/model/grants";
import { parseScopes, REPOSITORY_ACTIONS } from "../../src/auth/scope";

const REPO = "acme/app";
const requestable = [[], ["pull"], ["push"], ["delete"], ["pull", "push"], ["pull", "push", "delete"], ["*"]] as const;

/** The expected grant, written independently of the implementation: union of held actions, ∩ requested. */
function expected(heldRoles: Role[], registryAdmin: boolean, isPublic: boolean, requested: readonly string[]): string[] {
  const held = new Set<string>();
  if (isPublic) held.add("pull");
  for (const role of registryAdmin ? (["admin"] as Role[]) : heldRoles) for (const a of ROLE_ACTIONS[role]) held.add(a);
  const wanted = requested.includes("*") ? new Set(REPOSITORY_ACTIONS) : new Set(requested);
  return [...held].filter((action) => wanted.has(action as never)).sort();
}

describe("grantedAccess: every role × target × visibility × request", () => {
  const targets = [
    { label: "own namespace", grant: (role: Role): Grant => ({ target: { kind: "namespace", name: "acme" }, role }), applies: true },
    { label: "the repository", grant: (role: Role): Grant => ({ target: { kind: "repository", name: REPO }, role }), applies: true },
    { label: "another namespace", grant: (role: Role): Grant => ({ target: { kind: "namespace", name: "other" }, role }), applies: false },
    { label: "another repository", grant: (role: Role): Grant => ({ target: { kind: "repository", name: "acme/other" }, role }), applies: false },
    { label: "a prefix namespace", grant: (role: Role): Grant => ({ target: { kind: "namespace", name: "acm" }, role }), applies: false },
    { label: "a repository prefix", grant: (role: Role): Grant => ({ target: { kind: "repository", name: "acme/ap" }, role }), applies: false },
  ];
  for (const kind of ["user", "service-account"] as const) {
    for (const target of targets) {
      for (const role of ROLES) {
        for (const isPublic of [false, true]) {
          for (const requested of requestable) {
            it(`${kind} with ${role} on ${target.label}, ${isPublic ? "public" : "private"}, asks ${requested.join(",") || "nothing"}`, () => {
              const principal: Principal = { kind, registryAdmin: false, grants: [target.grant(role)] };
              const scope = parseScopes([`repository:${REPO}:${requested.join(",")}`]);
              const access = grantedAccess(principal, scope, () => isPublic);
              expect(access).toEqual([
                { type: "repository", name: REPO, actions: expected(target.applies ? [role] : [], false, isPublic, requested) },
              ]);
            });
          }
        }
      }
    }
  }

  it.each(requestable.map((r) => [r]))("anonymous gets at most pull on public repositories (%j)", (requested) => {
    for (const isPublic of [false, true]) {
      const access = grantedAccess(ANONYMOUS, parseScopes([`repository:${REPO}:${requested.join(",")}`]), () => isPublic);
      expect(access[0]!.actions).toEqual(expected([], false, isPublic, requested));
    }
  });

  it("registry admins hold every concrete action, and never a repository wildcard", () => {
    const admin: Principal = { kind: "user", registryAdmin: true, grants: [] };
    const access = grantedAccess(admin, parseScopes([`repository:${REPO}:*`]), () => false);
    expect(access).toEqual([{ type: "repository", name: REPO, actions: ["delete", "pull", "push"] }]);
  });

  it("the catalog is for registry admins only", () => {
    const scope = parseScopes(["registry:catalog:*"]);
    const writer: Principal = { kind: "user", registryAdmin: false, grants: [{ target: { kind: "namespace", name: "acme" }, role: "admin" }] };
    expect(grantedAccess(writer, scope, () => true)).toEqual([{ type: "registry", name: "catalog", actions: [] }]);
    expect(grantedAccess({ ...writer, registryAdmin: true }, scope, () => false)).toEqual([
      { type: "registry", name: "catalog", actions: ["*"] },
    ]);
  });

  it("merges duplicate and contradictory scopes for one resource without escalation", () => {
    const reader: Principal = { kind: "service-account", registryAdmin: false, grants: [{ target: { kind: "namespace", name: "acme" }, role: "read" }] };
    const scope = parseScopes([`repository:${REPO}:pull`, `repository:${REPO}:push`, `repository(plugin):${REPO}:push,delete`, `repository:${REPO}:*`]);
    expect(grantedAccess(reader, scope, () => false)).toEqual([{ type: "repository", name: REPO, actions: ["pull"] }]);
  });

  it("grants on several targets add up", () => {
    const principal: Principal = {
      kind: "user",
      registryAdmin: false,
      grants: [
        { target: { kind: "namespace", name: "acme" }, role: "read" },
        { target: { kind: "repository", name: REPO }, role: "write" },
      ],
    };
    expect([...actionsOn(principal, REPO, false)].sort()).toEqual(["pull", "push"]);
    expect([...actionsOn(principal, "acme/other", false)]).toEqual(["pull"]);
  });
});

describe("accessAllows", () => {
  const access = [
    { type: "repository", name: REPO, actions: ["pull"] },
    { type: "registry", name: "catalog", actions: ["*"] },
  ];
  it("checks type, name and action", () => {
    expect(accessAllows(access, "repository", REPO, "pull")).toBe(true);
    expect(accessAllows(access, "repository", REPO, "push")).toBe(false);
    expect(accessAllows(access, "repository", "acme/other", "pull")).toBe(false);
    expect(accessAllows(access, "registry", "catalog", "*")).toBe(true);
    expect(accessAllows(access, "registry", REPO, "pull")).toBe(false);
  });
});
