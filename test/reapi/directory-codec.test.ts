// The hand-written Directory codec is exact: on randomized and edge-case
// Directories it returns what protobuf-es's fromBinary returns (or fails
// where it fails), writes the bytes its toBinary writes, and accepts as
// valid only what validateDirectory accepts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { SpecbuildError } from '../../src/core/index.js';
import { decodeDirectory } from '../../src/cas/index.js';
import {
  DirectorySchema,
  EMPTY_HASH,
  decodeDirectoryMessage,
  decodeValidDirectory,
  digestKey,
  digestOf,
  encodeCanonical,
  encodeDirectory,
  validateDirectory,
  type Directory,
} from '../../src/reapi/index.js';
import { scanDirectory } from '../../src/reapi/directory-scan.js';
import { damage, gen, HASH, nearlyValid, rng } from '../helpers/random-directories.js';

/** The scan calls bytes canonical exactly when they are toBinary's encoding of what they hold. */
function assertCanonicalFlag(bytes: Uint8Array, dir: Directory, what: string): void {
  const scan = scanDirectory(Buffer.from(bytes));
  assert.ok(scan, what);
  const same =
    Buffer.compare(
      Buffer.from(bytes),
      Buffer.from(toBinary(DirectorySchema, dir, { writeUnknownFields: false })),
    ) === 0;
  assert.equal(scan.canonical, same, `${what}: canonical`);
}

/** What a function returns, or the error it throws, comparable with deepEqual. */
function outcome<T>(f: () => T): { ok: T } | { error: string } {
  try {
    return { ok: f() };
  } catch (e) {
    return { error: e instanceof Error ? e.constructor.name : String(e) };
  }
}

function validOrError(dir: Directory): string | undefined {
  try {
    validateDirectory(dir, 'test');
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

test('encodeDirectory writes what toBinary writes (randomized)', () => {
  const r = rng(1);
  for (let i = 0; i < 3000; i++) {
    const dir = gen(r);
    const want = outcome(() =>
      Buffer.from(toBinary(DirectorySchema, dir, { writeUnknownFields: false })).toString('hex'),
    );
    const got = outcome(() => Buffer.from(encodeDirectory(dir)).toString('hex'));
    assert.deepEqual(got, want, `case ${i}`);
    if ('ok' in want)
      assert.equal(
        Buffer.from(encodeCanonical(DirectorySchema, dir)).toString('hex'),
        want.ok,
        `case ${i}`,
      );
  }
});

test('decoding returns what fromBinary returns, and validates as validateDirectory does (randomized)', () => {
  const r = rng(2);
  let fast = 0;
  for (let i = 0; i < 6000; i++) {
    const dir = gen(r);
    if (i % 4 === 2) nearlyValid(r, dir);
    let bytes: Uint8Array = toBinary(DirectorySchema, dir);
    if (i % 4 === 1 || i % 4 === 3) bytes = damage(r, bytes);
    const want = outcome(() => fromBinary(DirectorySchema, bytes));
    assert.deepEqual(
      outcome(() => decodeDirectoryMessage(bytes)),
      want,
      `case ${i}: ${Buffer.from(bytes).toString('hex')}`,
    );
    const valid = decodeValidDirectory(bytes);
    if (valid !== undefined) {
      fast++;
      assert.ok('ok' in want, `case ${i}`);
      assert.deepEqual(valid, want.ok, `case ${i}`);
      assert.equal(validOrError(want.ok), undefined, `case ${i}`);
      assertCanonicalFlag(bytes, valid, `case ${i}`);
    } else if ('ok' in want && validOrError(want.ok) === undefined) {
      // Valid but not taken by the fast path: only for what it leaves to protobuf-es.
      const plain =
        want.ok.nodeProperties === undefined &&
        want.ok.$unknown === undefined &&
        want.ok.files.every((f) => f.nodeProperties === undefined) &&
        want.ok.symlinks.every((l) => l.nodeProperties === undefined) &&
        // eslint-disable-next-line no-control-regex -- ASCII is the point
        /^[\x00-\x7f]*$/.test(Buffer.from(bytes).toString('latin1'));
      const canonical =
        Buffer.compare(
          Buffer.from(bytes),
          Buffer.from(toBinary(DirectorySchema, want.ok, { writeUnknownFields: false })),
        ) === 0;
      assert.ok(!(plain && canonical), `case ${i}: a valid plain Directory missed the fast path`);
    }
  }
  assert.ok(fast > 1000, `only ${fast} cases took the fast path`);
});

/** A length-delimited field: tag, length, then the parts (hex, spaces ignored). */
const ld = (tag: string, ...parts: string[]): string => {
  const body = parts.join('').replace(/\s+/g, '');
  const n = body.length / 2;
  const len =
    n < 128
      ? n.toString(16).padStart(2, '0')
      : `${((n & 0x7f) | 0x80).toString(16)}${(n >> 7).toString(16).padStart(2, '0')}`;
  return `${tag}${len}${body}`;
};
const text = (s: string): string => Buffer.from(s, 'latin1').toString('hex');
/** A length-delimited field whose length (< 128) takes two bytes: valid, not canonical. */
const overlong = (tag: string, body: string): string =>
  `${tag}${((body.length / 2) | 0x80).toString(16)}00${body}`;

test('edge cases decode as fromBinary decodes them', () => {
  const full = ld('0a', text(HASH));
  const empty = ld('0a', text(EMPTY_HASH));
  const file = (name: string, ...rest: string[]): string => ld('0a', ld('0a', text(name)), ...rest);
  const emptyFile = (name: string): string => file(name, ld('12', empty));
  const cases: [string, string, boolean][] = [
    ['empty message', '', true],
    ['file', file('a', ld('12', full, '1001'), '2001'), true],
    ['fields out of order', ld('0a', '2001', ld('12', full, '1001'), ld('0a', text('a'))), true],
    ['size before hash', file('a', ld('12', '1001', full)), true],
    ['explicit size 0, empty hash', file('a', ld('12', empty, '1000')), true],
    ['overlong varint size', file('a', ld('12', full, '108100')), true],
    ['bool 0', file('a', ld('12', full, '1001'), '2000'), true],
    ['bool twice', file('a', ld('12', full, '1001'), '2001', '2001'), true],
    ['overlong name length', ld('0a', '0a8100', text('a'), ld('12', full, '1001')), true],
    ['overlong entry length', overlong('0a', ld('0a', text('a')) + ld('12', empty)), true],
    ['bool 2', file('a', ld('12', full, '1001'), '2002'), false],
    ['bool as multi-byte varint', file('a', ld('12', full, '1001'), '208100'), false],
    [
      'name twice',
      ld('0a', ld('0a', text('a')), ld('0a', text('b')), ld('12', full, '1001')),
      false,
    ],
    ['digest twice', file('a', ld('12', full, '1001'), ld('12', '1002')), false],
    ['digest missing', file('a'), false],
    [
      'interleaved lists',
      emptyFile('b') + ld('12', ld('0a', text('a')), ld('12', empty)) + emptyFile('c'),
      true,
    ],
    ['unknown field in Directory', '2801', false],
    ['node properties', '2a00', false],
    ['unknown in Digest', file('a', ld('12', full, '1001', '1801')), false],
    ['truncated', file('a', ld('12', full, '1001')).slice(0, -2), false],
    ['length past the end', '0a7f0a0161', false],
    ['group wire type', '0b0c', false],
    ['multi-byte tag', '820100', false],
    ['symlink', ld('1a', ld('0a', text('s')), ld('12', text('a/b'))), true],
    ['symlink empty target', ld('1a', ld('0a', text('s'))), false],
    [
      'symlink target twice',
      ld('1a', ld('0a', text('s')), ld('12', text('a')), ld('12', text('b'))),
      false,
    ],
    ['dot name', ld('1a', ld('0a', text('.')), ld('12', text('a'))), false],
    ['dot-dot name', emptyFile('..'), false],
    ['dot-dot-dot name', emptyFile('...'), true],
    ['slash in name', emptyFile('a/b'), false],
    ['NUL in name', emptyFile('a\0'), false],
    [
      'equal names in two lists',
      emptyFile('a') + ld('12', ld('0a', text('a')), ld('12', empty)),
      false,
    ],
    ['unsorted', emptyFile('b') + emptyFile('a'), false],
    ['prefix sorts first', emptyFile('a') + emptyFile('aa'), true],
    ['longer first (unsorted)', emptyFile('aa') + emptyFile('a'), false],
    ['twice', emptyFile('a') + emptyFile('a'), false],
    ['high byte in name', emptyFile('é'), false],
    ['invalid UTF-8 in name', ld('0a', ld('0a', 'ff'), ld('12', empty)), false],
    ['long name', emptyFile('n'.repeat(300)), true],
    ['size 2^53-1', file('a', ld('12', full, '10ffffffffffffff0f')), true],
    ['size 2^53', file('a', ld('12', full, '1080808080808080' + '10')), false],
    ['negative size', file('a', ld('12', full, '10ffffffffffffffffff01')), false],
    ['empty hash with size 1', file('a', ld('12', empty, '1001')), false],
    ['uppercase hash', file('a', ld('12', ld('0a', text(HASH.toUpperCase())), '1001')), false],
  ];
  for (const [what, h, fastPath] of cases) {
    const bytes = Buffer.from(h, 'hex');
    const want = outcome(() => fromBinary(DirectorySchema, bytes));
    assert.deepEqual(
      outcome(() => decodeDirectoryMessage(bytes)),
      want,
      what,
    );
    const valid = decodeValidDirectory(bytes);
    assert.equal(valid !== undefined, fastPath, `${what}: fast path`);
    if (valid !== undefined) {
      assert.ok('ok' in want, what);
      assert.deepEqual(valid, want.ok, what);
      assert.equal(validOrError(want.ok), undefined, what);
      assertCanonicalFlag(bytes, valid, what);
    }
  }
});

/** What CAS reads did before the codec: fromBinary, then validateDirectory. */
function decodeBefore(bytes: Uint8Array, where: string): Directory {
  let dir: Directory;
  try {
    dir = fromBinary(DirectorySchema, bytes);
  } catch (e) {
    throw new SpecbuildError('reapi/invalid-directory', `${where} does not parse: ${String(e)}`);
  }
  validateDirectory(dir, where);
  return dir;
}

/** A result, or the code and text of the SpecbuildError thrown. */
function codeOrValue<T>(f: () => T): { ok: T } | { code: string; message: string } {
  try {
    return { ok: f() };
  } catch (e) {
    if (!(e instanceof SpecbuildError)) throw e;
    return { code: e.code, message: e.message };
  }
}

test('decodeDirectory accepts what it accepted before and fails with the same error otherwise', () => {
  const r = rng(3);
  const d = digestOf(Buffer.from('where'));
  const codes = new Map<string, number>();
  for (let i = 0; i < 6000; i++) {
    const dir = gen(r);
    if (i % 3 === 1) nearlyValid(r, dir);
    let bytes: Uint8Array = toBinary(DirectorySchema, dir);
    if (i % 3 === 2) bytes = damage(r, bytes);
    const want = codeOrValue(() => decodeBefore(bytes, `Directory ${digestKey(d)}`));
    assert.deepEqual(
      codeOrValue(() => decodeDirectory(bytes, d)),
      want,
      `case ${i}: ${Buffer.from(bytes).toString('hex')}`,
    );
    const code = 'code' in want ? want.code : 'ok';
    codes.set(code, (codes.get(code) ?? 0) + 1);
  }
  // Every kind of refusal was exercised.
  for (const code of [
    'ok',
    'reapi/invalid-directory',
    'reapi/invalid-name',
    'reapi/invalid-digest',
  ])
    assert.ok((codes.get(code) ?? 0) > 100, `${code}: ${JSON.stringify([...codes])}`);
});

test('a hash with any byte other than a lowercase hex digit, anywhere, is refused', () => {
  const ok = Buffer.from(
    toBinary(
      DirectorySchema,
      create(DirectorySchema, { files: [{ name: 'f', digest: { hash: HASH, sizeBytes: 1n } }] }),
    ),
  );
  assert.ok(scanDirectory(ok));
  const at = ok.indexOf(Buffer.from(HASH, 'latin1'));
  for (let i = 0; i < 64; i++)
    for (let b = 0; b < 256; b++) {
      const bytes = Buffer.from(ok);
      bytes[at + i] = b;
      const digit = (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66);
      assert.equal(scanDirectory(bytes) !== undefined, digit, `byte ${b} at ${i}`);
    }
});
