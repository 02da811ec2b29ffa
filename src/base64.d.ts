// Uint8Array base64 methods (TC39 "Uint8Array to/from base64", in workerd's V8); not yet in TypeScript's lib.
interface Uint8Array {
  toBase64(options?: { alphabet?: "base64" | "base64url"; omitPadding?: boolean }): string;
}
