// In-memory index of the blobs in a local CAS, in least-recently-used order,
// with the running total size: what the quota and eviction work from.

interface Entry {
  size: number;
  /** When the file's mtime was last set to mark use (ms since epoch). */
  touchedMs: number;
}

export class LruIndex {
  /** Map iteration order is the LRU order: oldest first. */
  private readonly entries = new Map<string, Entry>();
  private total = 0;

  get totalBytes(): number {
    return this.total;
  }

  /** Records a use (or an insertion); returns the entry's previous touch time, if any. */
  use(hash: string, size: number, nowMs: number): number | undefined {
    const old = this.entries.get(hash);
    if (old !== undefined) {
      this.entries.delete(hash);
      this.entries.set(hash, old);
      return old.touchedMs;
    }
    this.entries.set(hash, { size, touchedMs: nowMs });
    this.total += size;
    return undefined;
  }

  markTouched(hash: string, nowMs: number): void {
    const e = this.entries.get(hash);
    if (e !== undefined) e.touchedMs = nowMs;
  }

  remove(hash: string): void {
    const e = this.entries.get(hash);
    if (e === undefined) return;
    this.entries.delete(hash);
    this.total -= e.size;
  }

  /** Oldest entries first, skipping `keep`, until `bytes` would be freed. */
  victims(bytes: number, keep: ReadonlySet<string>): string[] {
    const out: string[] = [];
    let freed = 0;
    for (const [hash, e] of this.entries) {
      if (freed >= bytes) break;
      if (keep.has(hash)) continue;
      out.push(hash);
      freed += e.size;
    }
    return out;
  }
}
