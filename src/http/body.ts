/** Reads a request or response body into memory up to `limit` bytes; undefined once it is longer. */
export async function readBodyLimited(message: Request | Response, limit: number): Promise<Uint8Array | undefined> {
  const declared = message.headers.get("Content-Length");
  if (declared !== null && Number(declared) > limit) {
    await message.body?.cancel();
    return undefined;
  }
  if (!message.body) return new Uint8Array(0);
  const reader = message.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > limit) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}
