// Edits on encoded Directories are exact: EncodedDirectory takes only valid,
// canonical encodings, finds entries as the decoded message would, and its
// withDigests writes the bytes encodeDirectory writes for the edited message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  DirectorySchema,
  EMPTY_DIGEST,
  EncodedDirectory,
  decodeValidDirectory,
  digestOf,
  encodeDirectory,
  fromPb,
  toPb,
  type Digest,
  type Directory,
} from '../../src/reapi/index.js';
import { damage, gen, rng } from '../helpers/random-directories.js';

/** A digest of a random size: sizes around varint boundaries change the encoded lengths. */
function someDigest(r: () => number): Digest {
  const roll = r();
  if (roll < 0.1) return EMPTY_DIGEST;
  const d = digestOf(Buffer.from(String(r())));
  const size = [1, 127, 128, 16383, 16384, 2 ** 31, 2 ** 53 - 1][Math.floor(r() * 7)] as number;
  return { ...d, size };
}

const hex = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : Buffer.from(b).toString('hex');

test('withDigests writes what encodeDirectory writes for the edited Directory (randomized)', () => {
  const r = rng(4);
  let edited = 0;
  for (let i = 0; i < 4000; i++) {
    const dir = gen(r);
    let bytes: Uint8Array;
    try {
      bytes = toBinary(DirectorySchema, dir, { writeUnknownFields: false });
    } catch {
      continue;
    }
    const enc = EncodedDirectory.from(bytes);
    const valid = decodeValidDirectory(bytes);
    // Canonical bytes of a valid plain Directory are always taken.
    assert.equal(enc !== undefined, valid !== undefined, `case ${i}`);
    if (enc === undefined || valid === undefined) continue;
    assert.equal(hex(enc.bytes), hex(bytes));
    // Entries by index read as the decoded message has them.
    assert.equal(enc.fileCount, valid.files.length);
    assert.equal(enc.directoryEnd, valid.files.length + valid.directories.length);
    valid.files.forEach((f, k) => {
      assert.equal(enc.name(k), f.name);
      assert.deepEqual(enc.digest(k), fromPb(f.digest));
      assert.equal(enc.executable(k), f.isExecutable);
    });
    valid.directories.forEach((x, k) => {
      assert.equal(enc.name(enc.fileCount + k), x.name);
      assert.deepEqual(enc.digest(enc.fileCount + k), fromPb(x.digest));
    });
    // Some files and directories get new digests; sometimes a name is not there.
    const files = new Map<string, Digest>();
    const dirs = new Map<string, Digest>();
    for (const f of valid.files) if (r() < 0.3) files.set(f.name, someDigest(r));
    for (const x of valid.directories) if (r() < 0.3) dirs.set(x.name, someDigest(r));
    const missing = r() < 0.1;
    if (missing)
      (r() < 0.5 ? files : dirs).set(`${valid.files[0]?.name ?? ''}~missing`, someDigest(r));
    const want = create(DirectorySchema, {
      files: valid.files.map((f) => {
        const d = files.get(f.name);
        return d === undefined ? f : { ...f, digest: toPb(d) };
      }),
      directories: valid.directories.map((x) => {
        const d = dirs.get(x.name);
        return d === undefined ? x : { ...x, digest: toPb(d) };
      }),
      symlinks: valid.symlinks,
    });
    const got = enc.withDigests(files, dirs);
    if (missing) {
      assert.equal(got, undefined, `case ${i}`);
      continue;
    }
    assert.equal(hex(got), hex(encodeDirectory(want)), `case ${i}`);
    if (files.size + dirs.size > 0) edited++;
    // Lookups agree with the decoded message.
    for (const f of valid.files) assert.ok(enc.hasFile(f.name));
    for (const x of valid.directories) {
      assert.deepEqual(enc.directory(x.name), fromPb(x.digest));
      assert.equal(enc.hasFile(x.name), false);
    }
    for (const l of valid.symlinks) {
      assert.equal(enc.hasFile(l.name), false);
      assert.equal(enc.directory(l.name), undefined);
    }
  }
  assert.ok(edited > 500, `only ${edited} edits`);
});

test('only valid canonical encodings are taken', () => {
  const r = rng(5);
  let taken = 0;
  for (let i = 0; i < 4000; i++) {
    const dir: Directory = gen(r);
    const bytes = damage(r, toBinary(DirectorySchema, dir));
    const enc = EncodedDirectory.from(bytes);
    if (enc === undefined) continue;
    taken++;
    const decoded = decodeValidDirectory(bytes);
    assert.ok(decoded, `case ${i}: taken but not valid`);
    assert.equal(
      hex(bytes),
      hex(toBinary(DirectorySchema, fromBinary(DirectorySchema, bytes))),
      `case ${i}: taken but not canonical`,
    );
  }
  assert.ok(taken > 100, `only ${taken} taken`);
});
