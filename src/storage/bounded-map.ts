/**
 * A per-isolate Map that holds at most `maxEntries`: adding a key when it is full evicts the oldest entry
 * (the first inserted; delete and set again to make an entry the newest). Bounds the memory any stream
 * of requests can make an isolate hold.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(readonly maxEntries: number) {
    super();
  }

  override set(key: K, value: V): this {
    if (!this.has(key) && this.size >= this.maxEntries) this.delete(this.keys().next().value!);
    return super.set(key, value);
  }
}
