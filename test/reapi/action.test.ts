// Golden action digests: encodeAction, which the wrappers, the per-build
// session and the speculative instantiator all use, reproduces the Command
// and Action vectors of the reference protobuf implementation byte for byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { apiBelow, encodeAction, parseDigest, type ActionSpec } from '../../src/reapi/index.js';
import { sharedVectors } from '../helpers/paths.js';

interface Vector {
  name: string;
  bytes_hex: string;
  digest: { hash: string; size_bytes: number };
}
const vectors = (
  JSON.parse(readFileSync(join(sharedVectors, 'reapi-canonical.json'), 'utf8')) as {
    vectors: Vector[];
  }
).vectors;
function vector(name: string): Vector {
  const v = vectors.find((x) => x.name === name);
  assert.ok(v, `vector ${name} is missing`);
  return v;
}

/** The compile of the vectors: command-compile in the input root of action-compile. */
const compile: ActionSpec = {
  argv: ['gcc', '-c', 'main.c', '-o', 'main.o'],
  // Given unsorted: encodeAction sorts variables and platform properties.
  env: [
    ['PATH', '/usr/bin:/bin'],
    ['LANG', 'C'],
  ],
  workingDirectory: 'buildstream/proj/app',
  outputs: ['main.o', 'main.o'],
  platform: [
    ['OSFamily', 'linux'],
    ['ISA', 'x86-64'],
  ],
  inputRoot: parseDigest('5ff8828f4c6681df1560f7c16411fbfec151edfde843e75cec4397d0b0d37cc5', 255),
  timeoutSeconds: 60,
};

test('a compile encodes to the golden Command and Action (REAPI 2.2)', () => {
  const { action, command } = encodeAction(compile, '2.2');
  const cv = vector('command-compile');
  assert.equal(Buffer.from(command.bytes).toString('hex'), cv.bytes_hex);
  assert.equal(
    `${command.digest.hash}/${command.digest.size}`,
    `${cv.digest.hash}/${cv.digest.size_bytes}`,
  );
  const av = vector('action-compile');
  assert.equal(Buffer.from(action.bytes).toString('hex'), av.bytes_hex);
  assert.equal(
    `${action.digest.hash}/${action.digest.size}`,
    '7e11e5b78356b50c54fde84d29edc33a89f9d532d5eceaec0355810a1cf99dae/181',
  );
  assert.equal(action.digest.hash, av.digest.hash);
});

test('do_not_cache and salt encode to the golden Action', () => {
  const { action } = encodeAction(
    {
      ...compile,
      platform: undefined,
      timeoutSeconds: undefined,
      inputRoot: parseDigest('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 0),
      doNotCache: true,
      salt: Buffer.from('salt-1'),
    },
    '2.2',
  );
  const v = vector('action-do-not-cache-salt');
  assert.equal(Buffer.from(action.bytes).toString('hex'), v.bytes_hex);
  assert.equal(action.digest.hash, v.digest.hash);
});

test('older servers get the older shapes, and so other digests', () => {
  const v22 = encodeAction(compile, '2.2');
  const v21 = encodeAction(compile, '2.1');
  const v20 = encodeAction(compile, '2.0');
  // 2.1: the platform moves into the Command.
  assert.notEqual(v21.command.digest.hash, v22.command.digest.hash);
  assert.notEqual(v21.action.digest.hash, v22.action.digest.hash);
  // 2.0: outputs in output_files as well.
  assert.notEqual(v20.command.digest.hash, v21.command.digest.hash);
  assert.equal(encodeAction(compile, '2.3').action.digest.hash, v22.action.digest.hash);
  assert.deepEqual(
    [apiBelow('2.0', 2, 1), apiBelow('2.1', 2, 1), apiBelow('1.9', 2, 0), apiBelow('3.0', 2, 2)],
    [true, false, true, false],
  );
});
