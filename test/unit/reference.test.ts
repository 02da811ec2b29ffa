import { describe, expect, it } from "vitest";
import { isValidRepositoryName, isValidTag, parseDigest, parseManifestReference } from "../../src/oci/reference";
import { RegistryError } from "../../src/http/oci-errors";
import { requireManifestReference } from "../../src/registry/oci-names";

const hex64 = "a".repeat(64);

describe("repository names (spec.md name grammar)", () => {
  it.each(["a", "acme/app", "acme/team/app", "a-b/c__d/e.f", "a0/b--c", `a/${"b".repeat(253)}`])("accepts %s", (name) => {
    expect(isValidRepositoryName(name)).toBe(true);
  });
  it.each([
    "", "A", "acme/App", "acme//app", "/acme", "acme/", "acme/../etc", "..", "acme/.app", "acme/app-", "a_-b",
    "acme/%2Fapp", "127.0.0.1:5000/app", "acme app", "acme/app:tag", "a___b", `a/${"b".repeat(254)}`,
  ])("rejects %j", (name) => {
    expect(isValidRepositoryName(name)).toBe(false);
  });
});

describe("tags", () => {
  it.each(["latest", "v1.0.0", "_x", "A-b_c.D", "a".repeat(128)])("accepts %s", (tag) => expect(isValidTag(tag)).toBe(true));
  it.each(["", "-bad", ".bad", "a".repeat(129), "a/b", "a:b", "a b"])("rejects %j", (tag) => expect(isValidTag(tag)).toBe(false));
});

describe("digests", () => {
  it("accepts sha256 and sha512 with exact lowercase hex", () => {
    expect(parseDigest(`sha256:${hex64}`)?.algorithm).toBe("sha256");
    expect(parseDigest(`sha512:${"b".repeat(128)}`)?.algorithm).toBe("sha512");
  });
  it.each([`sha256:${"a".repeat(63)}`, `sha256:${"A".repeat(64)}`, `sha256:${"g".repeat(64)}`, `md5:${"a".repeat(32)}`, `sha512:${hex64}`, hex64, "sha256:"])(
    "rejects %j",
    (value) => expect(parseDigest(value)).toBeUndefined(),
  );
  it("a reference with ':' is a digest, anything else a tag; the grammar says which part is invalid", () => {
    expect(parseManifestReference(`sha256:${hex64}`).kind).toBe("digest");
    expect(parseManifestReference("v1").kind).toBe("tag");
    expect(parseManifestReference("-bad")).toEqual({ kind: "invalid", part: "tag" });
    expect(parseManifestReference("sha256:xyz")).toEqual({ kind: "invalid", part: "digest" });
  });
  it("on /v2/ bad tags are MANIFEST_INVALID, bad digests DIGEST_INVALID", () => {
    expect(requireManifestReference("v1").kind).toBe("tag");
    expect(() => requireManifestReference("-bad")).toThrow(RegistryError);
    try {
      requireManifestReference("-bad");
    } catch (error) {
      expect((error as RegistryError).code).toBe("MANIFEST_INVALID");
    }
    try {
      requireManifestReference("sha256:xyz");
    } catch (error) {
      expect((error as RegistryError).code).toBe("DIGEST_INVALID");
    }
  });
});
