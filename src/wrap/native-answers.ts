// Hits answered by the native client itself (src/wrap/native/client.c),
// without a hop to the daemon: after the daemon answers a compile from direct
// mode's memory, it writes down, in a file named after the request, every
// check it made and what it answered. The client reads that file, makes the
// same checks on the file system (no hashing while a file's stat is the one
// the stat cache vouched for; else it hashes the file), copies the outputs
// from the server's blob directory and prints what the daemon printed. Any
// check that fails, or anything it does not understand, and the request goes
// to the daemon as before, which writes the file again.
//
// The request is named by its bytes: the arguments, the working directory
// and the environment (less make's own variables, which nothing reads), so
// that the file says nothing the client would have to interpret. The client
// compares the whole request, not only its name's hash.
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { removeFile } from '../core/index.js';
import { compareNames } from '../reapi/index.js';

/** The file format's tag; the client ignores files with another. */
const MAGIC_BYTES = Buffer.from('SBA2');
const END_BYTES = Buffer.from('END1');

/**
 * Environment variables left out of a request's name: make's own, which
 * differ between `make -j1` and `make -j2` of the same build, and which the
 * daemon never reads. The client leaves out the same (client.c).
 */
export const VOLATILE_ENV: readonly string[] = [
  'MAKEFLAGS',
  'MFLAGS',
  'MAKELEVEL',
  'MAKEOVERRIDES',
  'MAKE_TERMOUT',
  'MAKE_TERMERR',
];

/** What the client checks, in order, before answering. */
export type AnswerCheck =
  /** access(path, X_OK) fails: a PATH entry before the compiler's. */
  | { kind: 'noexec'; path: string }
  /** access(path, X_OK) succeeds: the compiler found through a PATH. */
  | { kind: 'exec'; path: string }
  /** realpath(path) is `real`. */
  | { kind: 'real'; path: string; real: string }
  /**
   * The file has these contents (SHA-256, size) and executable bit. When its
   * stat is still `sig` (what the stat cache vouched for), it is not read.
   */
  | {
      kind: 'file';
      path: string;
      hash: string;
      size: number;
      executable: boolean;
      sig?: FileSignature;
    }
  /** stat(path) fails with ENOENT or ENOTDIR: where a header would shadow a listed one. */
  | { kind: 'absent'; path: string }
  /**
   * A regular file is at path: the action's own blob in the server's blob
   * directory, so that a server whose cache was emptied (or evicted the
   * action) gets the command from the daemon, not an answer from before.
   */
  | { kind: 'present'; path: string };

export interface FileSignature {
  dev: bigint;
  ino: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export interface AnswerOutput {
  /** Relative to the working directory. */
  path: string;
  /** The blob's file in the server's blob directory. */
  blob: string;
  size: number;
  executable: boolean;
}

export interface Answer {
  checks: AnswerCheck[];
  outputs: AnswerOutput[];
  stdout: Uint8Array;
  stderr: Uint8Array;
  /**
   * The log line around its milliseconds (the client puts its own in
   * between and appends it to its own SPECBUILD_WRAPPER_LOG, which is in the
   * request).
   */
  logHead: string;
  logTail: string;
}

/**
 * Little-endian fields and length-prefixed strings, as client.c reads them,
 * into one growing buffer: an answer has hundreds of fields, and a Buffer
 * for each (as this writer first made) was a fifth of the daemon's CPU per
 * miss spent on answers (zlib, profiled).
 */
class ByteWriter {
  private buf = Buffer.allocUnsafe(4096);
  /**
   * The same bytes, for 64-bit fields: DataView's setBigUint64 is V8's own,
   * where Buffer's writeBigUInt64LE is JavaScript doing BigInt arithmetic,
   * ten times the CPU in the daemon (which runs without TurboFan).
   */
  private view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  private at = 0;

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(grown, 0, 0, this.at);
    this.buf = grown;
    this.view = new DataView(grown.buffer, grown.byteOffset, grown.byteLength);
  }

  raw(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
  }

  /** Hex digits as the bytes they spell. */
  hex(h: string): void {
    this.room(h.length >> 1);
    this.at += this.buf.write(h, this.at, 'hex');
  }

  u8(n: number): void {
    this.room(1);
    this.buf[this.at++] = n;
  }

  u32(n: number): void {
    this.room(4);
    this.at = this.buf.writeUInt32LE(n, this.at);
  }

  u64(n: bigint): void {
    this.room(8);
    // A negative one (a time before 1970) as its two's complement, as C's
    // (uint64_t) cast: setBigUint64 takes any BigInt modulo 2^64.
    this.view.setBigUint64(this.at, n, true);
    this.at += 8;
  }

  /** A size or count (a safe integer), without a BigInt. */
  u64n(n: number): void {
    this.room(8);
    this.buf.writeUInt32LE(n % 0x1_0000_0000, this.at);
    this.at = this.buf.writeUInt32LE(Math.floor(n / 0x1_0000_0000), this.at + 4);
  }

  str(s: string | Uint8Array): void {
    if (typeof s !== 'string') {
      this.u32(s.length);
      this.raw(s);
      return;
    }
    const n = Buffer.byteLength(s);
    this.u32(n);
    this.room(n);
    this.at += this.buf.write(s, this.at, 'utf8');
  }

  /** What was written (a view of the buffer, which this writer no longer changes). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.at);
  }
}

/** The request's bytes, as the client builds them from its own (client.c, request_key). */
export function requestKey(
  argv: readonly string[],
  cwd: string,
  env: ReadonlyMap<string, string>,
): Buffer {
  const w = new ByteWriter();
  w.u32(argv.length);
  for (const a of argv) w.str(a);
  w.str(cwd);
  // Sorted as the client sorts them, by their UTF-8 bytes (compareNames),
  // without a Buffer each.
  const entries: string[] = [];
  for (const [k, v] of env) if (!VOLATILE_ENV.includes(k)) entries.push(`${k}=${v}`);
  entries.sort(compareNames);
  w.u32(entries.length);
  for (const e of entries) w.str(e);
  return w.bytes();
}

/**
 * The file name of a request: two 32-bit FNV-1a hashes of its bytes (offset
 * bases 0x811c9dc5 and 0x050c5d1f), in hex. Only a name: the file holds the
 * whole request, which the client compares.
 */
export function answerName(key: Uint8Array): string {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  // Indexed: a for-of over a request's ~5 KB was most of this function's time.
  for (let i = 0; i < key.length; i++) {
    const byte = key[i] ?? 0;
    a = Math.imul(a ^ byte, 0x01000193) >>> 0;
    b = Math.imul(b ^ byte, 0x01000193) >>> 0;
  }
  return a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0');
}

/** The file's bytes (read by client.c, answer_here). */
export function encodeAnswer(buildId: string, key: Uint8Array, a: Answer): Buffer {
  const w = new ByteWriter();
  w.raw(MAGIC_BYTES);
  w.str(buildId);
  w.str(key);
  w.u32(a.checks.length);
  for (const c of a.checks) {
    w.u8(CHECK_TAGS[c.kind]);
    w.str(c.path);
    if (c.kind === 'real') w.str(c.real);
    if (c.kind === 'file') {
      w.hex(c.hash);
      w.u64n(c.size);
      w.u8(c.executable ? 1 : 0);
      // The signature's place is kept when there is none: a client that
      // hashed the file, and found it settled, writes one there.
      w.u8(c.sig === undefined ? 0 : 1);
      w.u64(c.sig?.dev ?? 0n);
      w.u64(c.sig?.ino ?? 0n);
      w.u64(c.sig?.mtimeNs ?? 0n);
      w.u64(c.sig?.ctimeNs ?? 0n);
    }
  }
  w.u32(a.outputs.length);
  for (const o of a.outputs) {
    w.str(o.path);
    w.str(o.blob);
    w.u64n(o.size);
    w.u8(o.executable ? 1 : 0);
  }
  w.str(a.stdout);
  w.str(a.stderr);
  w.str(a.logHead);
  w.str(a.logTail);
  w.raw(END_BYTES);
  return w.bytes();
}

/** Each check's tag byte in the file (check_holds in client.c). */
const CHECK_TAGS: Record<AnswerCheck['kind'], number> = {
  noexec: 0x78, // x
  exec: 0x65, // e
  real: 0x72, // r
  absent: 0x61, // a
  present: 0x70, // p
  file: 0x66, // f
};

/** More answer files than this, at the daemon's start, and they are all removed. */
export const MAX_ANSWERS = 20_000;
/** More bytes than this written by one writer, and all answers are removed (and again after as many). */
export const MAX_ANSWER_BYTES = 256 << 20;

/** Where the daemon on `socketPath` writes its answers (client.c: the same). */
export function answersDirOf(socketPath: string): string {
  return `${socketPath}.answers`;
}

/**
 * This build's identity (scripts/build-native.js writes it beside the
 * client): the client takes answers only from a daemon of its own build.
 * Undefined without the native build.
 */
export function nativeBuildId(): string | undefined {
  try {
    const id = readFileSync(new URL('../../native/build-id', import.meta.url), 'utf8').trim();
    return /^[0-9a-f]{16}$/.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Writes answers for the client: each whole (temporary file, then rename),
 * never half. Always written, even when the same as before: the request
 * reached the daemon, so the file there was not usable (damaged, removed, or
 * a check failed then). Only into a directory of this user's that nobody
 * else may write: the client takes nothing from any other (client.c).
 */
export class AnswerWriter {
  private bytes = 0;
  private usable: Promise<boolean> | undefined;

  constructor(
    private readonly dir: string,
    private readonly buildId: string,
  ) {}

  /**
   * At the daemon's start: removes every answer when there are more than
   * MAX_ANSWERS, or all of them when answers are off (they would outlive
   * the memory they came from).
   */
  static async prune(dir: string, off = false): Promise<void> {
    const names = off ? [] : await readdir(dir).catch(() => []);
    if (off || names.length > MAX_ANSWERS) await rm(dir, { recursive: true, force: true });
  }

  /** The directory exists, is this user's, and no one else may write in it. */
  private ensureDir(): Promise<boolean> {
    this.usable ??= (async () => {
      await mkdir(this.dir, { recursive: true, mode: 0o700 }).catch(() => undefined);
      const st = await lstat(this.dir).catch(() => undefined);
      return (
        st !== undefined &&
        st.isDirectory() &&
        st.uid === process.getuid?.() &&
        (st.mode & 0o022) === 0
      );
    })();
    return this.usable;
  }

  async write(key: Uint8Array, answer: Answer): Promise<void> {
    if (!(await this.ensureDir())) return;
    const bytes = encodeAnswer(this.buildId, key, answer);
    this.bytes += bytes.length;
    if (this.bytes > MAX_ANSWER_BYTES) {
      // Bounded: what a writer put there since it last cleared it.
      this.bytes = bytes.length;
      await rm(this.dir, { recursive: true, force: true });
      this.usable = undefined;
      if (!(await this.ensureDir())) return;
    }
    const tmp = join(this.dir, `.${randomBytes(6).toString('hex')}.tmp`);
    // Synchronous calls, as the direct store's: a few kilobytes, where
    // fs.promises' thread-pool round trips cost more than the writing.
    try {
      writeFileSync(tmp, bytes, { mode: 0o600, flag: 'wx' });
      renameSync(tmp, join(this.dir, answerName(key)));
    } catch {
      removeFile(tmp);
    }
  }
}
