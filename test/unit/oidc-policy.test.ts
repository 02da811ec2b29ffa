/** Trust-policy rules of workload identity federation: globs, claim lookup, JWT shape detection, validation. */
import { describe, expect, it } from "vitest";
import { looksLikeJwt } from "../../src/auth/federation";
import { claimText, globMatch, parseTrustPolicy, policyMismatch } from "../../src/auth/oidc-policy";

describe("globMatch", () => {
  it.each([
    ["repo:acme/app:ref:refs/heads/main", "repo:acme/app:ref:refs/heads/main", true],
    ["repo:acme/app:ref:refs/heads/main", "repo:acme/app:ref:refs/heads/mainx", false],
    ["repo:acme/app:*", "repo:acme/app:pull_request", true],
    ["repo:acme/app:ref:refs/heads/*", "repo:acme/app:ref:refs/heads/feature/x", true],
    ["repo:acme/*:ref:refs/heads/main", "repo:acme/app:ref:refs/heads/main", true],
    ["repo:acme/*:ref:refs/heads/main", "repo:acme-evil/app:ref:refs/heads/main", false],
    ["*:main", "x:main", true],
    ["a*b*c", "abc", true],
    ["a*b*c", "acb", false],
    ["release-*", "release-", true],
    ["v?", "v1", false],
    ["a.b", "axb", false],
  ])("%s ~ %s → %s", (pattern, value, expected) => {
    expect(globMatch(pattern, value)).toBe(expected);
  });

  it("stays fast on a hostile pattern and value", () => {
    const started = performance.now();
    expect(globMatch(`${"*a".repeat(120)}b`, "a".repeat(1000))).toBe(false);
    expect(performance.now() - started).toBeLessThan(500);
  });
});

describe("claimText", () => {
  const claims = { ref_protected: "true", run: 42, flag: false, list: ["a"], "kubernetes.io": { namespace: "apps", serviceaccount: { name: "pusher" } }, "https://x/y": "z" };
  it("reads strings, booleans and numbers as text, nested claims by path, and nothing else", () => {
    expect(claimText(claims, "ref_protected")).toBe("true");
    expect(claimText(claims, "run")).toBe("42");
    expect(claimText(claims, "flag")).toBe("false");
    expect(claimText(claims, "list")).toBeUndefined();
    expect(claimText(claims, "kubernetes.io")).toBeUndefined();
    expect(claimText(claims, "kubernetes.io/namespace")).toBe("apps");
    expect(claimText(claims, "kubernetes.io/serviceaccount/name")).toBe("pusher");
    expect(claimText(claims, "https://x/y")).toBe("z");
    expect(claimText(claims, "missing/path")).toBeUndefined();
  });
});

describe("looksLikeJwt", () => {
  it("is true only for three base64url parts whose header is JSON with alg", () => {
    const header = btoa(JSON.stringify({ alg: "RS256" })).replace(/=+$/, "");
    expect(looksLikeJwt(`${header}.e30.c2ln`)).toBe(true);
    expect(looksLikeJwt(`${header}.e30.`)).toBe(true); // alg none's empty signature: refused later, with its reason
    expect(looksLikeJwt("Zk3v2Xb1Qm9sT0pLrW8yNcHdAeFgJiKuOqPxYzBt6Ms")).toBe(false); // a service-account token
    expect(looksLikeJwt("a.b.c")).toBe(false);
    expect(looksLikeJwt(`${btoa("{}").replace(/=+$/, "")}.e30.c2ln`)).toBe(false);
    expect(looksLikeJwt(`${header}.e30.c2ln.x`)).toBe(false);
    expect(looksLikeJwt(`${header}.e3+0.c2ln`)).toBe(false);
  });
});

describe("policyMismatch", () => {
  const policy = parseTrustPolicy({ issuer: "https://i.example", audiences: ["reg"], subject: "s:*", claims: { env: "prod" }, algorithms: ["ES256"], maxTokenAgeSeconds: 600 }, "p", false);
  const now = 1_800_000_000;
  const good = { aud: ["other", "reg"], sub: "s:1", env: "prod", iat: now - 10 };
  it("names the first rule a token breaks", () => {
    expect(policyMismatch(policy, good, "ES256", now)).toBeUndefined();
    expect(policyMismatch(policy, good, "RS256", now)).toBe("algorithm RS256 not allowed");
    expect(policyMismatch(policy, { ...good, aud: "other" }, "ES256", now)).toBe("audience not allowed");
    expect(policyMismatch(policy, { ...good, sub: "t:1" }, "ES256", now)).toBe("subject does not match");
    expect(policyMismatch(policy, { ...good, env: "dev" }, "ES256", now)).toBe("claim env does not match");
    expect(policyMismatch(policy, { ...good, env: ["prod"] }, "ES256", now)).toBe("claim env does not match");
    expect(policyMismatch(policy, { ...good, iat: now - 601 }, "ES256", now)).toBe("token older than maxTokenAgeSeconds");
  });

  it("defaults: both algorithms, one hour, a five-minute window (never longer than the token age)", () => {
    expect(parseTrustPolicy({ issuer: "https://i.example", audiences: ["a"], subject: "x" }, "p", false)).toMatchObject({ algorithms: ["RS256", "ES256"], maxTokenAgeSeconds: 3600, replayWindowSeconds: 300 });
    expect(parseTrustPolicy({ issuer: "https://i.example", audiences: ["a"], subject: "x", maxTokenAgeSeconds: 120 }, "p", false).replayWindowSeconds).toBe(120);
    expect(() => parseTrustPolicy({ issuer: "http://127.0.0.1:9/i", audiences: ["a"], subject: "x" }, "p", false)).toThrow(/https/);
    expect(parseTrustPolicy({ issuer: "http://127.0.0.1:9/i", audiences: ["a"], subject: "x" }, "p", true).issuer).toBe("http://127.0.0.1:9/i");
    expect(() => parseTrustPolicy({ issuer: "http://10.0.0.1/i", audiences: ["a"], subject: "x" }, "p", true)).toThrow(/127\.0\.0\.1/);
  });
});
