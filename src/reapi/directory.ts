// Canonical encoding and validation of Directory messages: sorted, unique,
// well-formed entries, encoded with fields in number order and nothing unknown.
import { create, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { SpecbuildError } from '../core/index.js';
import { digestOf, fromPb, type Digest } from './digest.js';
import { encodeDirectory } from './directory-codec.js';
import { checkName } from './names.js';
import {
  DirectorySchema,
  type Directory,
} from './gen/build/bazel/remote/execution/v2/remote_execution_pb.js';

/** Encodes a message canonically: fields in number order, no unknown fields. */
export function encodeCanonical<D extends DescMessage>(
  schema: D,
  msg: MessageShape<D>,
): Uint8Array {
  // Directories, the hot case, without reflection (the same bytes).
  if ((schema as DescMessage) === DirectorySchema) return encodeDirectory(msg as Directory);
  return toBinary(schema, msg, { writeUnknownFields: false });
}

/** The canonical bytes of a message and their digest. */
export function digestMessage<D extends DescMessage>(
  schema: D,
  msg: MessageShape<D>,
): { digest: Digest; bytes: Uint8Array } {
  const bytes = encodeCanonical(schema, msg);
  return { digest: digestOf(bytes), bytes };
}

/**
 * Byte-wise (UTF-8 code unit) comparison, as REAPI requires for sorting
 * names. Without surrogates UTF-16 code units order as code points, and so
 * as UTF-8 bytes: compared in place, where encoding both names cost two
 * Buffers per comparison (a compile's input tree sorts hundreds of names).
 * Names with surrogates (or lone ones, which UTF-8 encodes as U+FFFD) are
 * encoded and compared as bytes.
 */
export function compareNames(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if ((x & 0xf800) === 0xd800 || (y & 0xf800) === 0xd800) return compareEncoded(a, b);
    if (x !== y) return x < y ? -1 : 1;
  }
  // One is a prefix of the other, encoded too (the prefix holds whole code points).
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

function compareEncoded(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Returns a copy of `dir` with each entry list sorted by name. */
export function canonicalDirectory(dir: Directory): Directory {
  const byName = (x: { name: string }, y: { name: string }): number => compareNames(x.name, y.name);
  return create(DirectorySchema, {
    files: [...dir.files].sort(byName),
    directories: [...dir.directories].sort(byName),
    symlinks: [...dir.symlinks].sort(byName),
    nodeProperties: dir.nodeProperties,
  });
}

/**
 * Validates a Directory from outside this process: every name is a single
 * component, each list is strictly sorted, no name appears twice across
 * files/directories/symlinks, every digest is valid and symlink targets are non-empty.
 */
export function validateDirectory(dir: Directory, where: string): void {
  const seen = new Set<string>();
  const lists: [string, { name: string }[]][] = [
    ['files', dir.files],
    ['directories', dir.directories],
    ['symlinks', dir.symlinks],
  ];
  for (const [kind, list] of lists) {
    let prev: string | undefined;
    for (const node of list) {
      const at = `${where}: ${kind}`;
      checkName(node.name, at);
      if (seen.has(node.name)) {
        throw new SpecbuildError('reapi/invalid-directory', `${at}: "${node.name}" appears twice`);
      }
      seen.add(node.name);
      if (prev !== undefined && compareNames(prev, node.name) >= 0) {
        throw new SpecbuildError(
          'reapi/invalid-directory',
          `${at}: "${node.name}" is out of order after "${prev}"`,
          { hint: 'Directory entries must be sorted by name' },
        );
      }
      prev = node.name;
    }
  }
  for (const f of dir.files) fromPb(f.digest, `${where}: file "${f.name}"`);
  for (const d of dir.directories) fromPb(d.digest, `${where}: directory "${d.name}"`);
  for (const s of dir.symlinks) {
    if (s.target === '' || s.target.includes('\0')) {
      throw new SpecbuildError(
        'reapi/invalid-directory',
        `${where}: symlink "${s.name}" has an empty or invalid target`,
      );
    }
  }
}
