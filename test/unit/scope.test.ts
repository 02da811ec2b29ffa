import { describe, expect, it } from "vitest";
import { formatScope, parseScopes } from "../../src/auth/scope";

const actionsOf = (value: string) => parseScopes([value]).map((scope) => [scope.type, scope.name, [...scope.actions].sort()]);

describe("parseScopes (scope.md grammar)", () => {
  it("parses repeated and space-separated scopes alike", () => {
    const repeated = parseScopes(["repository:a/b:pull", "repository:c/d:push,pull"]);
    const joined = parseScopes(["repository:a/b:pull repository:c/d:push,pull"]);
    expect(joined).toEqual(repeated);
    expect(repeated.map((scope) => scope.name)).toEqual(["a/b", "c/d"]);
  });

  it.each([
    ["repository:a/b:pull", [["repository", "a/b", ["pull"]]]],
    ["repository:a/b:push,pull,delete", [["repository", "a/b", ["delete", "pull", "push"]]]],
    ["repository:a/b:*", [["repository", "a/b", ["*"]]]],
    ["repository(plugin):a/b:pull", [["repository", "a/b", ["pull"]]]],
    ["repository:a/b:pull,frobnicate,admin", [["repository", "a/b", ["pull"]]]],
    ["repository:a/b:", [["repository", "a/b", []]]],
    ["registry:catalog:*", [["registry", "catalog", ["*"]]]],
  ])("%s", (value, expected) => {
    expect(actionsOf(value)).toEqual(expected);
  });

  it.each([
    "registry:catalog:pull",
    "registry:other:*",
    "repository:127.0.0.1:5000/a/b:pull",
    "repository:A/b:pull",
    "repository:a/../b:pull",
    "repository:a//b:pull",
    "repository:a%2Fb:pull",
    "repository::pull",
    "repository:a/b",
    "user:a/b:pull",
    `repository:a/${"b".repeat(260)}:pull`,
    "nonsense",
  ])("drops %s", (value) => {
    expect(parseScopes([value])).toEqual([]);
  });

  it("caps the number of scopes", () => {
    const many = Array.from({ length: 500 }, (_, i) => `repository:a/r${i}:pull`).join(" ");
    expect(parseScopes([many]).length).toBe(64);
  });

  it("formats an access entry", () => {
    expect(formatScope({ type: "repository", name: "a/b", actions: ["pull", "push"] })).toBe("repository:a/b:pull,push");
  });
});
