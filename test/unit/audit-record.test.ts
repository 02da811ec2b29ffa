import { describe, expect, it } from "vitest";
import { KV_METADATA_LIMIT_BYTES, boundedText, buildAuditEvent } from "../../src/storage/audit-log";

const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value)).length;
const huge = (unit: string) => unit.repeat(5000);

// Worst cases per field: characters that JSON escapes to 6 bytes (controls), 2 bytes (quote, backslash),
// 3- and 4-byte UTF-8, lone surrogates (escaped as \udxxx), bidi overrides and line separators.
const worst = ["\u0001", '"', "\\", "é", "€", "😀", "\ud800", "\udfff", "\u202e", "\u2028", "a\u0000b\u001f", "x"];

describe("audit records are bounded by construction (KV metadata < 1,024 bytes)", () => {
  it.each(worst.map((unit) => [JSON.stringify(unit), unit]))("every field made of %s", (_label, unit) => {
    const event = buildAuditEvent({ actor: huge(unit), action: "user.update", target: huge(unit), detail: huge(unit) });
    expect(bytes(event)).toBeLessThan(KV_METADATA_LIMIT_BYTES);
    // No control character, lone surrogate or bidi control survives into the record.
    expect(JSON.stringify(event)).not.toMatch(/\\u00[01]|\\ud[89a-f]|\u202e|\u2028/i);
  });

  it("mixed worst-case input, and the issue's 290 × U+0001 field name as a detail", () => {
    const mixed = huge(worst.join(""));
    const event = buildAuditEvent({ actor: mixed, action: "service-account.update", target: mixed, detail: `${"\u0001".repeat(290)}=1; ${mixed}` });
    expect(bytes(event)).toBeLessThan(KV_METADATA_LIMIT_BYTES);
  });

  it("short text is kept as is; long text is cut on a character boundary with an ellipsis", () => {
    expect(boundedText("alice", 160)).toBe("alice");
    const cut = boundedText("😀".repeat(100), 40);
    expect(cut.endsWith("…")).toBe(true);
    expect([...cut.slice(0, -1)].every((char) => char === "😀")).toBe(true);
    expect(new TextEncoder().encode(JSON.stringify(cut)).length - 2).toBeLessThanOrEqual(40);
  });

  it("refuses an action outside the action grammar (a programming error, never client input)", () => {
    expect(() => buildAuditEvent({ actor: "a", action: "User Update!" })).toThrow();
    expect(() => buildAuditEvent({ actor: "a", action: "x".repeat(41) })).toThrow();
  });
});
