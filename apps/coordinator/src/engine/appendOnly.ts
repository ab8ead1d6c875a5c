/**
 * Sets and maps that successive reducer states grow one key at a time without copying them
 * (engineState.ts: an attempt's uploaders, their norms, where their updates are held). Copying a
 * collection at every upload cost O(k²) per round of k uploads.
 *
 * States share one backing store, and each sees the keys up to its own size, in insertion order.
 * Adding to the newest state appends to the store in place; adding to an older state (one that
 * another addition already grew past), or adding a key it holds, copies the state's keys first.
 * So every state reads exactly as it did when it was made, as a copied collection would.
 */

interface Backing<V> {
  /** Each key's value and its position in `keys`. */
  readonly index: Map<string, { readonly value: V; readonly at: number }>;
  readonly keys: string[];
}

function backingOf<V>(entries: Iterable<readonly [string, V]>): Backing<V> {
  const backing: Backing<V> = { index: new Map(), keys: [] };
  for (const [key, value] of entries) {
    if (backing.index.has(key)) backing.index.set(key, { value, at: backing.index.get(key)!.at });
    else {
      backing.index.set(key, { value, at: backing.keys.length });
      backing.keys.push(key);
    }
  }
  return backing;
}

/** A map of string keys that grows without copying; see the module comment. */
export class AppendOnlyMap<V> implements ReadonlyMap<string, V> {
  private constructor(
    private readonly backing: Backing<V>,
    readonly size: number,
  ) {}

  /** A map holding `entries` (a later value of a repeated key wins, at the key's first position). */
  static from<V>(entries: Iterable<readonly [string, V]> = []): AppendOnlyMap<V> {
    const backing = backingOf(entries);
    return new AppendOnlyMap(backing, backing.keys.length);
  }

  /** This map with `key` set to `value`, this map unchanged. */
  with(key: string, value: V): AppendOnlyMap<V> {
    if (this.has(key)) {
      const copy = backingOf([...this.entries(), [key, value] as const]);
      return new AppendOnlyMap(copy, copy.keys.length);
    }
    const backing = this.backing.keys.length === this.size ? this.backing : backingOf(this.entries());
    backing.index.set(key, { value, at: backing.keys.length });
    backing.keys.push(key);
    return new AppendOnlyMap(backing, this.size + 1);
  }

  has(key: string): boolean {
    const entry = this.backing.index.get(key);
    return entry !== undefined && entry.at < this.size;
  }

  get(key: string): V | undefined {
    const entry = this.backing.index.get(key);
    return entry !== undefined && entry.at < this.size ? entry.value : undefined;
  }

  *keys(): MapIterator<string> {
    for (let i = 0; i < this.size; i++) yield this.backing.keys[i]!;
  }

  *values(): MapIterator<V> {
    for (const key of this.keys()) yield this.backing.index.get(key)!.value;
  }

  *entries(): MapIterator<[string, V]> {
    for (const key of this.keys()) yield [key, this.backing.index.get(key)!.value];
  }

  [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }

  forEach(callback: (value: V, key: string, map: ReadonlyMap<string, V>) => void, thisArg?: unknown): void {
    for (const [key, value] of this.entries()) callback.call(thisArg, value, key, this);
  }
}

/** A set of strings that grows without copying; see the module comment. */
export class AppendOnlySet implements ReadonlySet<string> {
  private constructor(private readonly map: AppendOnlyMap<true>) {}

  static from(items: Iterable<string> = []): AppendOnlySet {
    return new AppendOnlySet(AppendOnlyMap.from([...items].map((item) => [item, true] as const)));
  }

  /** This set with `item`, this set unchanged. */
  with(item: string): AppendOnlySet {
    return this.map.has(item) ? this : new AppendOnlySet(this.map.with(item, true));
  }

  get size(): number {
    return this.map.size;
  }

  has(item: string): boolean {
    return this.map.has(item);
  }

  keys(): SetIterator<string> {
    return this.map.keys();
  }

  values(): SetIterator<string> {
    return this.map.keys();
  }

  *entries(): SetIterator<[string, string]> {
    for (const key of this.map.keys()) yield [key, key];
  }

  [Symbol.iterator](): SetIterator<string> {
    return this.map.keys();
  }

  forEach(callback: (value: string, key: string, set: ReadonlySet<string>) => void, thisArg?: unknown): void {
    for (const key of this.map.keys()) callback.call(thisArg, key, key, this);
  }
}
