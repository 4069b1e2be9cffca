/**
 * A map of at most `max` entries in this isolate's memory, kept in the order they were last stored:
 * storing past the bound forgets the least recently stored entry. For per-address state that a
 * spread of addresses must not grow without bound (address-buckets.ts, the tab link's flood
 * penalty).
 */
export class BoundedMap<K, V> {
  private readonly entries = new Map<K, V>();

  constructor(private readonly max: number) {}

  get(key: K): V | undefined {
    return this.entries.get(key);
  }

  /** Store `value` as the most recently stored; forget the oldest entry past the bound. */
  set(key: K, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    if (this.entries.size > this.max) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }

  delete(key: K): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
