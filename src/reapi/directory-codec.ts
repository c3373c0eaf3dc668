// A hand-written codec for Directory, the message speculative actions spend
// their time on: every action's input tree has a directory of hundreds of
// headers of its own, decoded, validated, re-encoded and hashed each time.
// For a 299-file Directory (23 kB), protobuf-es's reflective fromBinary
// plus validateDirectory took ~1.9 ms and toBinary 0.3-0.5 ms on a loaded
// 2-core machine; this decodes and checks in one pass in ~0.4 ms and encodes
// in 0.15-0.3 ms. It is exact, not an approximation: it returns the very
// objects fromBinary returns ($typeName, key order, bigint sizes) and writes
// the very bytes toBinary writes (test/reapi/directory-codec.test.ts
// compares them on randomized and edge-case Directories), and it handles
// only the common case: anything else (node properties, unknown fields,
// non-ASCII text, repeated fields, anything invalid) goes to protobuf-es and
// validateDirectory as before.
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { EMPTY_HASH } from './digest.js';
import {
  DirectorySchema,
  type Digest as PbDigest,
  type Directory,
  type DirectoryNode,
  type FileNode,
  type SymlinkNode,
} from './gen/build/bazel/remote/execution/v2/remote_execution_pb.js';

const DIRECTORY = 'build.bazel.remote.execution.v2.Directory';
const FILE_NODE = 'build.bazel.remote.execution.v2.FileNode';
const DIRECTORY_NODE = 'build.bazel.remote.execution.v2.DirectoryNode';
const SYMLINK_NODE = 'build.bazel.remote.execution.v2.SymlinkNode';
const DIGEST = 'build.bazel.remote.execution.v2.Digest';

// Tags (field number << 3 | wire type) of the fields handled here.
const TAG_1_LEN = 0x0a; // Directory.files, *.name, Digest.hash
const TAG_2_LEN = 0x12; // Directory.directories, *.digest, SymlinkNode.target
const TAG_3_LEN = 0x1a; // Directory.symlinks
const TAG_2_VARINT = 0x10; // Digest.size_bytes
const TAG_4_VARINT = 0x20; // FileNode.is_executable

/** 1 for the bytes of lowercase hexadecimal digits. */
const HEX = new Uint8Array(256);
for (const c of '0123456789abcdef') HEX[c.charCodeAt(0)] = 1;
const EMPTY_HASH_BYTES = Buffer.from(EMPTY_HASH, 'latin1');

/** Where decoding is: the bytes and the position of the next one. */
interface Cursor {
  buf: Buffer;
  pos: number;
  /** Where the last name readName returned starts (its bytes are its characters). */
  nameAt: number;
}

/** A length prefix (at most 4 bytes) ending no later than `end`, or -1. */
function readLength(c: Cursor, end: number): number {
  const buf = c.buf;
  let n = 0;
  for (let shift = 0; shift < 28; shift += 7) {
    if (c.pos >= end) return -1;
    const b = buf[c.pos++] as number;
    n |= (b & 0x7f) << shift;
    if (b < 0x80) return c.pos + n <= end ? n : -1;
  }
  return -1;
}

/**
 * A valid entry name (non-empty ASCII, no `/` or NUL, not `.` or `..`)
 * sorting strictly after the one at [prevStart, prevEnd), or undefined.
 */
function readName(c: Cursor, end: number, prevStart: number, prevEnd: number): string | undefined {
  const len = readLength(c, end);
  if (len <= 0) return undefined;
  const buf = c.buf;
  const start = c.pos;
  const stop = start + len;
  for (let i = start; i < stop; i++) {
    const b = buf[i] as number;
    if (b === 0 || b === 0x2f || b > 0x7f) return undefined;
  }
  if (buf[start] === 0x2e && (len === 1 || (len === 2 && buf[start + 1] === 0x2e)))
    return undefined;
  if (prevEnd > prevStart) {
    // Byte order (REAPI's), strictly increasing.
    const prevLen = prevEnd - prevStart;
    const n = Math.min(len, prevLen);
    let i = 0;
    while (i < n && buf[start + i] === buf[prevStart + i]) i++;
    // A differing byte decides; else the longer name (the other is its prefix) is after.
    const after =
      i < n ? (buf[start + i] as number) > (buf[prevStart + i] as number) : len > prevLen;
    if (!after) return undefined;
  }
  c.pos = stop;
  c.nameAt = start;
  return buf.toString('latin1', start, stop);
}

/** A valid Digest message (hash, size ≤ 2^53 - 1, the empty hash iff size 0), or undefined. */
function readDigest(c: Cursor, end: number): PbDigest | undefined {
  const len = readLength(c, end);
  if (len < 0) return undefined;
  const buf = c.buf;
  const stop = c.pos + len;
  let hashAt = -1;
  let size = -1;
  while (c.pos < stop) {
    const tag = buf[c.pos++];
    if (tag === TAG_1_LEN && hashAt < 0) {
      if (readLength(c, stop) !== 64) return undefined;
      hashAt = c.pos;
      for (let i = hashAt; i < hashAt + 64; i++) if (HEX[buf[i] as number] === 0) return undefined;
      c.pos += 64;
    } else if (tag === TAG_2_VARINT && size < 0) {
      // At most 8 bytes: 56 bits, enough for every safe integer.
      size = 0;
      let scale = 1;
      for (let k = 0; ; k++) {
        if (k === 8 || c.pos >= stop) return undefined;
        const b = buf[c.pos++] as number;
        size += (b & 0x7f) * scale;
        scale *= 128;
        if (b < 0x80) break;
      }
    } else {
      return undefined;
    }
  }
  if (hashAt < 0 || size > Number.MAX_SAFE_INTEGER) return undefined;
  if (size < 0) size = 0;
  if ((size === 0) !== (buf.compare(EMPTY_HASH_BYTES, 0, 64, hashAt, hashAt + 64) === 0))
    return undefined;
  return {
    $typeName: DIGEST,
    hash: buf.toString('latin1', hashAt, hashAt + 64),
    sizeBytes: BigInt(size),
  };
}

/** Names in two lists sorted by name: true when none is in both. */
function disjoint(a: readonly { name: string }[], b: readonly { name: string }[]): boolean {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    // ASCII only here: string order is byte order.
    const x = (a[i] as { name: string }).name;
    const y = (b[j] as { name: string }).name;
    if (x === y) return false;
    if (x < y) i++;
    else j++;
  }
  return true;
}

/**
 * The Directory in `bytes` when they hold a valid one of the common shape,
 * else undefined (then fromBinary and validateDirectory say what it is).
 * Valid means what validateDirectory checks: single-component names, each
 * list strictly sorted, no name in two lists, digests well-formed, symlink
 * targets non-empty without NUL.
 */
export function decodeValidDirectory(bytes: Uint8Array): Directory | undefined {
  const buf = Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const c: Cursor = { buf, pos: 0, nameAt: 0 };
  const end = buf.length;
  const files: FileNode[] = [];
  const directories: DirectoryNode[] = [];
  const symlinks: SymlinkNode[] = [];
  // The previous name of each list, as [start, end) in buf.
  let fileStart = 0;
  let fileEnd = 0;
  let dirStart = 0;
  let dirEnd = 0;
  let linkStart = 0;
  let linkEnd = 0;
  while (c.pos < end) {
    const tag = buf[c.pos++];
    const len = readLength(c, end);
    if (len < 0) return undefined;
    const stop = c.pos + len;
    let name: string | undefined;
    if (tag === TAG_1_LEN) {
      let digest: PbDigest | undefined;
      let isExecutable = false;
      while (c.pos < stop) {
        const t = buf[c.pos++];
        if (t === TAG_1_LEN && name === undefined) {
          name = readName(c, stop, fileStart, fileEnd);
          if (name === undefined) return undefined;
        } else if (t === TAG_2_LEN && digest === undefined) {
          digest = readDigest(c, stop);
          if (digest === undefined) return undefined;
        } else if (t === TAG_4_VARINT && c.pos < stop) {
          const b = buf[c.pos++];
          if (b !== 0 && b !== 1) return undefined;
          isExecutable = b === 1;
        } else {
          return undefined;
        }
      }
      if (name === undefined || digest === undefined) return undefined;
      fileStart = c.nameAt;
      fileEnd = fileStart + name.length;
      files.push({ $typeName: FILE_NODE, name, isExecutable, digest });
    } else if (tag === TAG_2_LEN) {
      let digest: PbDigest | undefined;
      while (c.pos < stop) {
        const t = buf[c.pos++];
        if (t === TAG_1_LEN && name === undefined) {
          name = readName(c, stop, dirStart, dirEnd);
          if (name === undefined) return undefined;
        } else if (t === TAG_2_LEN && digest === undefined) {
          digest = readDigest(c, stop);
          if (digest === undefined) return undefined;
        } else {
          return undefined;
        }
      }
      if (name === undefined || digest === undefined) return undefined;
      dirStart = c.nameAt;
      dirEnd = dirStart + name.length;
      directories.push({ $typeName: DIRECTORY_NODE, name, digest });
    } else if (tag === TAG_3_LEN) {
      let target: string | undefined;
      while (c.pos < stop) {
        const t = buf[c.pos++];
        if (t === TAG_1_LEN && name === undefined) {
          name = readName(c, stop, linkStart, linkEnd);
          if (name === undefined) return undefined;
        } else if (t === TAG_2_LEN && target === undefined) {
          const n = readLength(c, stop);
          if (n <= 0) return undefined;
          for (let i = c.pos; i < c.pos + n; i++) {
            const b = buf[i] as number;
            if (b === 0 || b > 0x7f) return undefined;
          }
          target = buf.toString('latin1', c.pos, c.pos + n);
          c.pos += n;
        } else {
          return undefined;
        }
      }
      if (name === undefined || target === undefined) return undefined;
      linkStart = c.nameAt;
      linkEnd = linkStart + name.length;
      symlinks.push({ $typeName: SYMLINK_NODE, name, target });
    } else {
      return undefined;
    }
  }
  if (
    (files.length > 0 && directories.length > 0 && !disjoint(files, directories)) ||
    (files.length > 0 && symlinks.length > 0 && !disjoint(files, symlinks)) ||
    (directories.length > 0 && symlinks.length > 0 && !disjoint(directories, symlinks))
  )
    return undefined;
  return { $typeName: DIRECTORY, files, directories, symlinks };
}

/** fromBinary(DirectorySchema, bytes), without protobuf-es's reflection when it can. */
export function decodeDirectoryMessage(bytes: Uint8Array): Directory {
  return decodeValidDirectory(bytes) ?? fromBinary(DirectorySchema, bytes);
}

/** Bytes of `n` (0 ≤ n < 2^53) as a varint. */
function varintSize(n: number): number {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** The size of a Digest's body, or -1 when it is not of the shape written here. */
function digestBodySize(d: PbDigest): number {
  const size = d.sizeBytes;
  if (typeof d.hash !== 'string' || typeof size !== 'bigint' || size < 0n || size > MAX_SAFE)
    return -1;
  const n = Number(size);
  const h = d.hash.length;
  return (h === 0 ? 0 : 1 + varintSize(h) + h) + (n === 0 ? 0 : 1 + varintSize(n));
}
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Where encoding is: the output and the position of the next byte. */
interface Writer {
  out: Uint8Array;
  pos: number;
}

function writeVarint(w: Writer, n: number): void {
  const out = w.out;
  while (n >= 128) {
    out[w.pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  out[w.pos++] = n;
}

/** Writes a string field unless empty; false when it is not ASCII (the caller falls back). */
function writeString(w: Writer, tag: number, s: string): boolean {
  const len = s.length;
  if (len === 0) return true;
  const out = w.out;
  out[w.pos++] = tag;
  writeVarint(w, len);
  let p = w.pos;
  for (let i = 0; i < len; i++) {
    const ch = s.charCodeAt(i);
    if (ch > 0x7f) return false;
    out[p++] = ch;
  }
  w.pos = p;
  return true;
}

function writeDigest(w: Writer, d: PbDigest, bodySize: number): boolean {
  w.out[w.pos++] = TAG_2_LEN;
  writeVarint(w, bodySize);
  if (!writeString(w, TAG_1_LEN, d.hash)) return false;
  const n = Number(d.sizeBytes);
  if (n !== 0) {
    w.out[w.pos++] = TAG_2_VARINT;
    writeVarint(w, n);
  }
  return true;
}

/** Body sizes of the nodes, reused between calls (encoding is synchronous). */
let sizes = new Int32Array(1024);

/**
 * toBinary(DirectorySchema, dir) without unknown fields (the canonical
 * encoding), without protobuf-es's reflection for the common shape: ASCII
 * text, no node properties. Sizes are computed first, so the output is
 * written once into a buffer of the exact size.
 */
function encodeFast(dir: Directory): Uint8Array | undefined {
  if (dir.nodeProperties !== undefined) return undefined;
  const { files, directories, symlinks } = dir;
  const count = 2 * (files.length + directories.length) + symlinks.length;
  if (sizes.length < count) sizes = new Int32Array(2 * count);
  // Pass 1: each node's body size, and each digest's (ASCII assumed: checked while writing).
  let k = 0;
  let total = 0;
  for (const f of files) {
    if (f.nodeProperties !== undefined || typeof f.name !== 'string') return undefined;
    const exec = f.isExecutable;
    let body = f.name.length === 0 ? 0 : 1 + varintSize(f.name.length) + f.name.length;
    let ds = 0;
    if (f.digest !== undefined) {
      ds = digestBodySize(f.digest);
      if (ds < 0) return undefined;
      body += 1 + varintSize(ds) + ds;
    }
    if (exec) body += 2;
    sizes[k++] = body;
    sizes[k++] = ds;
    total += 1 + varintSize(body) + body;
  }
  for (const x of directories) {
    if (typeof x.name !== 'string') return undefined;
    let body = x.name.length === 0 ? 0 : 1 + varintSize(x.name.length) + x.name.length;
    let ds = 0;
    if (x.digest !== undefined) {
      ds = digestBodySize(x.digest);
      if (ds < 0) return undefined;
      body += 1 + varintSize(ds) + ds;
    }
    sizes[k++] = body;
    sizes[k++] = ds;
    total += 1 + varintSize(body) + body;
  }
  for (const l of symlinks) {
    if (
      l.nodeProperties !== undefined ||
      typeof l.name !== 'string' ||
      typeof l.target !== 'string'
    )
      return undefined;
    const n = l.name.length;
    const t = l.target.length;
    const body = (n === 0 ? 0 : 1 + varintSize(n) + n) + (t === 0 ? 0 : 1 + varintSize(t) + t);
    sizes[k++] = body;
    total += 1 + varintSize(body) + body;
  }
  // Pass 2: the bytes.
  const w: Writer = { out: new Uint8Array(total), pos: 0 };
  k = 0;
  for (const f of files) {
    const body = sizes[k++] as number;
    const ds = sizes[k++] as number;
    w.out[w.pos++] = TAG_1_LEN;
    writeVarint(w, body);
    if (!writeString(w, TAG_1_LEN, f.name)) return undefined;
    if (f.digest !== undefined && !writeDigest(w, f.digest, ds)) return undefined;
    if (f.isExecutable) {
      w.out[w.pos++] = TAG_4_VARINT;
      w.out[w.pos++] = 1;
    }
  }
  for (const x of directories) {
    const body = sizes[k++] as number;
    const ds = sizes[k++] as number;
    w.out[w.pos++] = TAG_2_LEN;
    writeVarint(w, body);
    if (!writeString(w, TAG_1_LEN, x.name)) return undefined;
    if (x.digest !== undefined && !writeDigest(w, x.digest, ds)) return undefined;
  }
  for (const l of symlinks) {
    w.out[w.pos++] = TAG_3_LEN;
    writeVarint(w, sizes[k++] as number);
    if (!writeString(w, TAG_1_LEN, l.name) || !writeString(w, TAG_2_LEN, l.target))
      return undefined;
  }
  return w.out;
}

/**
 * The canonical encoding of a Directory: exactly
 * toBinary(DirectorySchema, dir, { writeUnknownFields: false }).
 */
export function encodeDirectory(dir: Directory): Uint8Array {
  return encodeFast(dir) ?? toBinary(DirectorySchema, dir, { writeUnknownFields: false });
}
