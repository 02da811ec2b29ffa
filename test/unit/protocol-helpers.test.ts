import { describe, expect, it } from "vitest";
import { MAX_AUTHORIZATION_LENGTH, parseBasicAuthorization } from "../../src/auth/basic-auth";
import { formatChallenge } from "../../src/http/challenge";
import { paginate, parsePageRequest } from "../../src/registry/pagination";
import { accepts } from "../../src/registry/media-types";

describe("formatChallenge", () => {
  it("builds one Bearer challenge with quoted parameters", () => {
    expect(formatChallenge({ realm: "https://r.example/token", service: "svc" })).toBe(
      'Bearer realm="https://r.example/token",service="svc"',
    );
    expect(
      formatChallenge({ realm: "https://r/token", service: "s", scope: "repository:a/b:pull,push", error: "insufficient_scope" }),
    ).toBe('Bearer realm="https://r/token",service="s",scope="repository:a/b:pull,push",error="insufficient_scope"');
    expect(formatChallenge({ realm: 'x"y', service: "s\\" })).toBe('Bearer realm="x\\"y",service="s\\\\"');
  });
});

describe("parseBasicAuthorization", () => {
  const encode = (value: string) => `Basic ${btoa(value)}`;
  it("reads user and secret, the secret may hold colons", () => {
    expect(parseBasicAuthorization(encode("12345678|ci:tok:en"))).toEqual({ username: "12345678|ci", secret: "tok:en" });
    expect(parseBasicAuthorization("basic " + btoa("u:p"))).toEqual({ username: "u", secret: "p" });
  });
  it.each([
    ["no header", null, undefined],
    ["bearer", "Bearer abc", undefined],
    ["bad base64", "Basic %%%", "malformed"],
    ["no colon", encode("user"), "malformed"],
    ["empty user", encode(":secret"), "malformed"],
    ["empty secret", encode("user:"), "malformed"],
    ["extra parts", `${encode("u:p")} more`, "malformed"],
    ["non-UTF-8", `Basic ${btoa("\xff\xfe:\xff")}`, "malformed"],
    ["huge", encode(`u:${"x".repeat(MAX_AUTHORIZATION_LENGTH)}`), "malformed"],
    ["scheme only", "Basic", "malformed"],
  ])("%s", (_label, header, expected) => {
    expect(parseBasicAuthorization(header)).toEqual(expected);
  });
});

describe("pagination", () => {
  const items = ["a", "b", "c", "d"];
  it("pages after `last` with a Link to the next page", () => {
    const first = paginate(items, parsePageRequest(new URLSearchParams("n=2")), "/v2/x/tags/list");
    expect(first).toEqual({ items: ["a", "b"], link: '</v2/x/tags/list?n=2&last=b>; rel="next"' });
    const second = paginate(items, parsePageRequest(new URLSearchParams("n=2&last=b")), "/v2/x/tags/list");
    expect(second).toEqual({ items: ["c", "d"], link: undefined });
    expect(paginate(items, parsePageRequest(new URLSearchParams("n=0")), "/p").items).toEqual([]);
  });
  it.each(["-1", "abc", "1.5", ""])("rejects n=%j", (n) => {
    expect(() => parsePageRequest(new URLSearchParams({ n }))).toThrow();
  });
});

describe("accepts", () => {
  it("matches media types in one or several Accept values, ignoring parameters", () => {
    const type = "application/vnd.oci.image.index.v1+json";
    expect(accepts(null, type)).toBe(true);
    expect(accepts("*/*", type)).toBe(true);
    expect(accepts(`application/vnd.oci.image.manifest.v1+json, ${type};q=0.9`, type)).toBe(true);
    expect(accepts("application/vnd.oci.image.manifest.v1+json", type)).toBe(false);
  });
});
