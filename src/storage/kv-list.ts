/** Lists every key under a prefix, following KV's cursors (a page holds at most 1000 keys). */
export async function listAll<M>(kv: KVNamespace, prefix: string): Promise<KVNamespaceListKey<M>[]> {
  const keys: KVNamespaceListKey<M>[] = [];
  let cursor: string | undefined;
  do {
    const page = await kv.list<M>({ prefix, cursor });
    keys.push(...page.keys);
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor);
  return keys;
}
