// A Directory kept as its canonical bytes, validated and indexed by one scan,
// for edits that change a few digests: instantiating a speculative action
// replaces some tens of files in directories of hundreds. Unchanged entries
// are copied as bytes, never decoded into objects and encoded back; the
// result is byte for byte what encodeDirectory writes for the edited message
// (test/reapi/encoded-directory.test.ts), so digests are the same.
import { fromValidatedParts, type Digest } from './digest.js';
import {
  asBuffer,
  DIR,
  FILE,
  R_END,
  R_EXEC,
  R_KIND,
  R_NAME,
  R_NAME_END,
  R_START,
  R_VALUE,
  REC,
  scanDirectory,
} from './directory-scan.js';

const TAG_1_LEN = 0x0a; // Directory.files, *.name, Digest.hash
const TAG_2_LEN = 0x12; // Directory.directories, *.digest
const TAG_2_VARINT = 0x10; // Digest.size_bytes
const TAG_4_VARINT = 0x20; // FileNode.is_executable

function varintSize(n: number): number {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(out: Buffer, pos: number, n: number): number {
  while (n >= 128) {
    out[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  out[pos++] = n;
  return pos;
}

/** Size of a Digest message's body. */
const digestBody = (d: Digest): number => 66 + (d.size === 0 ? 0 : 1 + varintSize(d.size));

/**
 * Entries by index, in encoded order: files are [0, fileCount), directories
 * [fileCount, directoryEnd), symlinks after.
 */
export class EncodedDirectory {
  private constructor(
    /** The canonical encoding. */
    readonly bytes: Buffer,
    private readonly rec: Int32Array,
    private readonly sizes: Float64Array,
    readonly fileCount: number,
    readonly directoryEnd: number,
  ) {}

  /**
   * `bytes` indexed, when they are a valid Directory of the common shape
   * (see scanDirectory) in canonical encoding; else undefined, and the
   * caller decodes it instead (which says what is wrong with it, if anything).
   */
  static from(bytes: Uint8Array): EncodedDirectory | undefined {
    const buf = asBuffer(bytes);
    const scan = scanDirectory(buf);
    if (scan === undefined || !scan.canonical) return undefined;
    const rec = scan.rec.slice(0, scan.count * REC);
    let files = 0;
    while (files < scan.count && rec[files * REC + R_KIND] === FILE) files++;
    let dirs = files;
    while (dirs < scan.count && rec[dirs * REC + R_KIND] === DIR) dirs++;
    return new EncodedDirectory(buf, rec, scan.size.slice(0, scan.count), files, dirs);
  }

  /** The name of entry `i`. */
  name(i: number): string {
    return this.bytes.toString(
      'latin1',
      this.rec[i * REC + R_NAME],
      this.rec[i * REC + R_NAME_END],
    );
  }

  /** The digest of file or directory `i` (checked by the scan). */
  digest(i: number): Digest {
    const at = this.rec[i * REC + R_VALUE] as number;
    return fromValidatedParts(this.bytes.toString('latin1', at, at + 64), this.sizes[i] as number);
  }

  executable(i: number): boolean {
    return this.rec[i * REC + R_EXEC] === 1;
  }

  /** The entry named `name` in [lo, hi) (a sorted list), or -1. */
  private find(name: string, lo: number, hi: number): number {
    // Names here are ASCII (the scan checked): another name is not here.
    for (let i = 0; i < name.length; i++) if (name.charCodeAt(i) > 0x7f) return -1;
    const buf = this.bytes;
    const rec = this.rec;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const r = mid * REC;
      const s = rec[r + R_NAME] as number;
      const e = rec[r + R_NAME_END] as number;
      // Compare with the entry's name, byte by byte (ASCII: a character is a byte).
      const n = Math.min(name.length, e - s);
      let c = 0;
      for (let i = 0; i < n && c === 0; i++) c = name.charCodeAt(i) - (buf[s + i] as number);
      if (c === 0) c = name.length - (e - s);
      if (c === 0) return mid;
      if (c < 0) hi = mid;
      else lo = mid + 1;
    }
    return -1;
  }

  hasFile(name: string): boolean {
    return this.find(name, 0, this.fileCount) >= 0;
  }

  /** The digest of the subdirectory `name`, if there is one. */
  directory(name: string): Digest | undefined {
    const i = this.find(name, this.fileCount, this.directoryEnd);
    return i < 0 ? undefined : this.digest(i);
  }

  /**
   * The encoding of this Directory with the files and subdirectories named
   * given new digests (files keep their executable bit): exactly what
   * encodeDirectory writes for the edited message. Undefined when a name is
   * not there.
   */
  withDigests(
    files: ReadonlyMap<string, Digest>,
    dirs: ReadonlyMap<string, Digest>,
  ): Uint8Array | undefined {
    const edits: { at: number; digest: Digest }[] = [];
    for (const [name, digest] of files) {
      const at = this.find(name, 0, this.fileCount);
      if (at < 0) return undefined;
      edits.push({ at, digest });
    }
    for (const [name, digest] of dirs) {
      const at = this.find(name, this.fileCount, this.directoryEnd);
      if (at < 0) return undefined;
      edits.push({ at, digest });
    }
    edits.sort((a, b) => a.at - b.at);
    const rec = this.rec;
    const src = this.bytes;
    // Each edited entry's new body size, then the total.
    const bodies: number[] = [];
    let total = src.length;
    for (const { at, digest } of edits) {
      const r = at * REC;
      const nameLen = (rec[r + R_NAME_END] as number) - (rec[r + R_NAME] as number);
      const d = digestBody(digest);
      const body =
        1 + varintSize(nameLen) + nameLen + 1 + varintSize(d) + d + 2 * (rec[r + R_EXEC] as number);
      bodies.push(body);
      total +=
        1 + varintSize(body) + body - ((rec[r + R_END] as number) - (rec[r + R_START] as number));
    }
    // Every byte is written below (the sizes are exact), so no zero-filling.
    const out = Buffer.allocUnsafeSlow(total);
    let pos = 0;
    let from = 0;
    for (let k = 0; k < edits.length; k++) {
      const { at, digest } = edits[k] as { at: number; digest: Digest };
      const r = at * REC;
      pos += src.copy(out, pos, from, rec[r + R_START]);
      from = rec[r + R_END] as number;
      const nameAt = rec[r + R_NAME] as number;
      const nameEnd = rec[r + R_NAME_END] as number;
      out[pos++] = rec[r + R_KIND] === FILE ? TAG_1_LEN : TAG_2_LEN;
      pos = writeVarint(out, pos, bodies[k] as number);
      out[pos++] = TAG_1_LEN;
      pos = writeVarint(out, pos, nameEnd - nameAt);
      pos += src.copy(out, pos, nameAt, nameEnd);
      out[pos++] = TAG_2_LEN;
      pos = writeVarint(out, pos, digestBody(digest));
      out[pos++] = TAG_1_LEN;
      out[pos++] = 64;
      pos += out.write(digest.hash, pos, 64, 'latin1');
      if (digest.size !== 0) {
        out[pos++] = TAG_2_VARINT;
        pos = writeVarint(out, pos, digest.size);
      }
      if (rec[r + R_EXEC] === 1) {
        out[pos++] = TAG_4_VARINT;
        out[pos++] = 1;
      }
    }
    pos += src.copy(out, pos, from);
    if (pos !== total) throw new Error(`bug: wrote ${pos} of ${total} bytes`);
    return out;
  }
}
