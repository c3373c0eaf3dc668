// "Once per daemon" across the daemon's worker threads: specbuild-cc warns
// once per daemon and server that it compiles locally, and the compiles that
// fail together (make -j against a server that went down) run on several
// threads at once. A table of 32-bit key hashes in a SharedArrayBuffer,
// claimed with compare-and-swap, decides which thread is first.
import { mix32 } from './daemon-protocol.js';

/** Table slots: far more keys than a daemon ever warns about. */
const SLOTS = 1024;

function hash32(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  h = mix32(h) | 0;
  return h === 0 ? 1 : h; // 0 marks a free slot
}

export class SharedOnce {
  private readonly slots: Int32Array;

  /** A new table, or (in another thread) the `buffer` of an existing one. */
  constructor(readonly buffer = new SharedArrayBuffer(SLOTS * 4)) {
    this.slots = new Int32Array(buffer);
  }

  /**
   * True for the first caller with `key`, in any thread sharing the buffer.
   * Two keys whose 32-bit hashes collide count as one; a full table says
   * true again (a repeated warning rather than a missing one).
   */
  first(key: string): boolean {
    const h = hash32(key);
    const n = this.slots.length;
    for (let probe = 0; probe < n; probe++) {
      const i = ((h >>> 0) + probe) % n;
      const was = Atomics.compareExchange(this.slots, i, 0, h);
      if (was === 0) return true;
      if (was === h) return false;
    }
    return true;
  }
}
