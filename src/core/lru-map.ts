// A map that keeps only its most recently used entries: for memoising what is
// derived from immutable inputs (a parsed message by its digest), where an
// unbounded map would grow with every input a long-lived server ever sees.

export class LruMap<K, V> {
  /** Iteration order is the order of use: least recent first. */
  private readonly entries = new Map<K, V>();

  constructor(private readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new RangeError(`LruMap capacity must be a positive integer, not ${capacity}`);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  /** The value of `key`, which becomes the most recently used. */
  get(key: K): V | undefined {
    const v = this.entries.get(key);
    if (v !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, v);
    }
    return v;
  }

  /** Sets `key` (the most recently used), dropping the least recently used past capacity. */
  set(key: K, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    if (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
  }

  delete(key: K): void {
    this.entries.delete(key);
  }
}

/**
 * Values believed for `ttlMs` after they were set, the most recently used
 * `capacity` of them: for what the file system says (a compiler's path
 * through a PATH, a realpath), looked up once a while rather than per
 * command. A value may itself be undefined: get() wraps it.
 */
export class RecentMap<K, V> {
  private readonly entries: LruMap<K, { value: V; at: number }>;

  constructor(
    private readonly ttlMs: number,
    capacity: number,
  ) {
    this.entries = new LruMap(capacity);
  }

  /** `{ value }` when `key` was set less than ttlMs before `now`; else undefined. */
  get(key: K, now = Date.now()): { value: V } | undefined {
    const e = this.entries.get(key);
    return e !== undefined && now - e.at < this.ttlMs ? { value: e.value } : undefined;
  }

  set(key: K, value: V, now = Date.now()): void {
    this.entries.set(key, { value, at: now });
  }

  delete(key: K): void {
    this.entries.delete(key);
  }
}
