// specbuild-cc's direct mode (like ccache's): per compile command, the input
// files its last dependency scan found, with their digests. While every one of
// them still has the same digest, the scan (the compiler run with -M) is
// skipped and the same inputs are used again. Its one blind spot: a new header
// that would now be found earlier on the include path, shadowing a listed one.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { writeJsonAtomic } from './stat-cache.js';

export interface DirectFile {
  path: string;
  hash: string;
  size: number;
  executable: boolean;
}

/** The key of one compile command: everything but the contents of its inputs. */
export function directKey(parts: unknown): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

function isDirectFile(v: unknown): v is DirectFile {
  if (typeof v !== 'object' || v === null) return false;
  const f = v as Record<string, unknown>;
  return (
    typeof f.path === 'string' &&
    typeof f.hash === 'string' &&
    /^[0-9a-f]{64}$/.test(f.hash) &&
    typeof f.size === 'number' &&
    Number.isSafeInteger(f.size) &&
    f.size >= 0 &&
    typeof f.executable === 'boolean'
  );
}

export class DirectCache {
  /** In least-recently-used-first order (a Map keeps insertion order). */
  private readonly entries = new Map<string, DirectFile[]>();
  private dirty = false;

  constructor(
    private readonly file: string | undefined,
    private readonly maxEntries = 20_000,
  ) {}

  /** Loads the saved entries; an absent or damaged file starts empty. */
  static async load(file: string | undefined, maxEntries?: number): Promise<DirectCache> {
    const c = new DirectCache(file, maxEntries);
    if (file === undefined) return c;
    try {
      const data = JSON.parse(await readFile(file, 'utf8')) as unknown;
      if (typeof data === 'object' && data !== null) {
        for (const [k, v] of Object.entries(data)) {
          if (/^[0-9a-f]{64}$/.test(k) && Array.isArray(v) && v.every(isDirectFile))
            c.entries.set(k, v);
        }
      }
    } catch {
      // absent or damaged: start empty
    }
    return c;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): readonly DirectFile[] | undefined {
    const files = this.entries.get(key);
    if (files !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, files);
    }
    return files;
  }

  set(key: string, files: DirectFile[]): void {
    this.entries.delete(key);
    this.entries.set(key, files);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    this.dirty = true;
  }

  /** Writes the entries (temporary file, then rename) if anything changed. */
  async save(): Promise<void> {
    if (this.file === undefined || !this.dirty) return;
    this.dirty = false;
    await writeJsonAtomic(this.file, Object.fromEntries(this.entries));
  }
}
