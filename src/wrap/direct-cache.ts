// specbuild-cc's direct mode (like ccache's, on by default): per compile
// command and source content, the input files its last dependency scan found,
// with their digests, and the paths where a new header would shadow a listed
// one (include-probes.ts). While every listed file has the same digest and
// none of those paths exists, the scan (the compiler run with -M) is skipped
// and the same inputs are used again.
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

/** What direct mode remembers of one compile command. */
export interface DirectEntry {
  files: DirectFile[];
  /** Paths that did not exist, where a header would have been found before a listed one. */
  absent: string[];
  /** The action digest (HASH/SIZE) these files gave, while they are unchanged. */
  action?: string;
  /**
   * That action's successful result (its ActionResult message, base64), as
   * stored or found: a later hit on a server on this machine copies the
   * outputs from its blob directory without asking its action cache.
   */
  result?: string;
}

/** The largest remembered result (base64 characters); a compile's is about 200. */
export const MAX_REMEMBERED_RESULT = 64 * 1024;

function isDirectEntry(v: unknown): v is DirectEntry {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  return (
    Array.isArray(e.files) &&
    e.files.every(isDirectFile) &&
    Array.isArray(e.absent) &&
    e.absent.every((p) => typeof p === 'string') &&
    (e.action === undefined ||
      (typeof e.action === 'string' && /^[0-9a-f]{64}\/\d+$/.test(e.action))) &&
    (e.result === undefined ||
      (typeof e.result === 'string' &&
        e.action !== undefined &&
        e.result.length <= MAX_REMEMBERED_RESULT &&
        /^[A-Za-z0-9+/]*={0,2}$/.test(e.result)))
  );
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
  private readonly entries = new Map<string, DirectEntry>();
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
          if (/^[0-9a-f]{64}$/.test(k) && isDirectEntry(v)) c.entries.set(k, v);
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

  get(key: string): DirectEntry | undefined {
    const entry = this.entries.get(key);
    if (entry !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, entry);
    }
    return entry;
  }

  set(key: string, entry: DirectEntry): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    this.dirty = true;
  }

  /** Says that an entry got from get() was changed in place (saved next time). */
  changed(): void {
    this.dirty = true;
  }

  /** Writes the entries (temporary file, then rename) if anything changed. */
  async save(): Promise<void> {
    if (this.file === undefined || !this.dirty) return;
    this.dirty = false;
    await writeJsonAtomic(this.file, Object.fromEntries(this.entries));
  }
}
