// explainBuild on actions made by hand (real Actions, Commands and trees in a
// real local CAS, no build): the environment diff, ties among candidates,
// input-file arguments set aside, differences that are not file contents,
// and a previous build whose record has left the cache.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { toBinary } from '@bufbuild/protobuf';
import {
  ArtifactCache,
  LocalActionCache,
  LocalCas,
  newArtifact,
  RefStore,
} from '../../src/cas/index.js';
import { digestKey, specbuildPb, toPb, type Digest } from '../../src/reapi/index.js';
import { explainBuild, type BuildTrace, type Explanation } from '../../src/speculative/index.js';
import { TreeFiles } from '../../src/speculative/index.js';
import { Labeler } from '../../src/speculative/explain-label.js';
import { uploadAction, type ActionSpec } from '../helpers/actions.js';
import { tempDir } from '../helpers/tmp.js';

const KEY_OLD = 'a'.repeat(64);
const KEY_NEW = 'b'.repeat(64);

/**
 * The previous build recorded `before`; the explained one recorded `after`,
 * each a miss unless it is also in `before` (a hit). Returns the explanation
 * and the actions' digests.
 */
async function explainOf(
  before: ActionSpec[],
  after: ActionSpec[],
  opts: { dropPrevious?: boolean } = {},
): Promise<{ x: Explanation; before: string[]; after: string[] }> {
  await using dir = await tempDir();
  const cas = await LocalCas.open({ dir: dir.path });
  const ac = await LocalActionCache.open(dir.path, cas);
  const artifacts = new ArtifactCache(cas, new RefStore(join(dir.path, 'refs')));
  const upload = async (specs: ActionSpec[]): Promise<Digest[]> => {
    const out: Digest[] = [];
    for (const s of specs) out.push(await uploadAction(cas, s));
    return out;
  };
  const [was, now] = [await upload(before), await upload(after)];
  const record = async (key: string, subactions: Digest[]): Promise<Digest> =>
    cas.writeBlob(
      toBinary(
        specbuildPb.ArtifactSchema,
        newArtifact({
          project: 'test',
          element: 'app.bst',
          strongKey: key,
          weakKey: 'c'.repeat(64),
          subactions: subactions.map(toPb),
        }),
      ),
    );
  const prev =
    opts.dropPrevious === true ? 'd'.repeat(64) + '/99' : digestKey(await record(KEY_OLD, was));
  const hit = new Set(was.map(digestKey));
  const trace: BuildTrace = {
    version: 1,
    project: 'test',
    element: 'app.bst',
    strong_key: KEY_NEW,
    weak_key: 'c'.repeat(64),
    mode: 'none',
    build_root: '/buildstream/test/app.bst',
    record: digestKey(await record(KEY_NEW, now)),
    previous: { record: prev, strong_key: KEY_OLD, via: 'weak-key' },
    primed_from: null,
    actions: now.map((d) => ({
      action: digestKey(d),
      outcome: hit.has(digestKey(d)) ? 'hit-cached' : 'miss',
    })),
    primes: [],
    finished: '2024-01-02T03:04:05.000Z',
  };
  const x = await explainBuild({ cas, ac, artifacts }, trace);
  return { x, before: was.map(digestKey), after: now.map(digestKey) };
}

const cc = (extra: Partial<ActionSpec> = {}): ActionSpec => ({
  argv: ['gcc', '-c', 'a.c', '-o', 'a.o'],
  inputs: { 'a.c': 'int a;\n' },
  outputPaths: ['a.o'],
  ...extra,
});

describe('explain (unit)', () => {
  it('lists environment differences by name, with unset sides as null', async () => {
    const { x, before } = await explainOf(
      [cc({ env: { PATH: '/bin', ZED: '1', BETA: 'x' } })],
      [cc({ env: { PATH: '/bin', ALPHA: 'new', BETA: 'y' } })],
    );
    assert.equal(x.misses.length, 1);
    assert.deepEqual(x.misses[0]?.previous, {
      by: 'same-command',
      action: before[0],
      index: 0,
      command: {
        environment: [
          { name: 'ALPHA', old: null, new: 'new' },
          { name: 'BETA', old: 'x', new: 'y' },
          { name: 'ZED', old: '1', new: null },
        ],
      },
      inputs: [],
    });
  });

  it('breaks ties by inputs in common, then by the nearest place in the build', async () => {
    // A configure run: the same probe command three times, on other sources.
    const probe = (src: string, header = 'int h;\n'): ActionSpec =>
      cc({ inputs: { 'a.c': src, 'h.h': header } });
    const { x, before } = await explainOf(
      [probe('int one;\n'), probe('int two;\n'), probe('int three;\n')],
      // The first shares a.c with the second probe only; the second shares h.h with the first
      // and the third alike (both 1 away from its place: the earlier wins); the third gets the rest.
      [probe('int two;\n', 'int h2;\n'), probe('int four;\n'), probe('int five;\n', 'x')],
    );
    assert.deepEqual(
      x.misses.map((m) => [m.previous?.by, m.previous?.action]),
      [
        ['same-command', before[1]],
        ['same-command', before[0]],
        ['same-command', before[2]],
      ],
    );
    assert.deepEqual(
      x.misses[0]?.previous?.inputs.map((d) => d.path),
      ['h.h'],
    );
  });

  it('sets aside arguments naming input files (ar rcsD liba.a a.o b.o against … a.o c.o)', async () => {
    const ar = (flags: string, objs: string[]): ActionSpec => ({
      argv: ['ar', flags, 'liba.a', ...objs],
      inputs: Object.fromEntries(objs.map((o) => [o, `${o}\n`])),
      outputPaths: ['liba.a'],
    });
    const { x, before } = await explainOf(
      [ar('rcs', ['a.o', 'b.o']), ar('rcsD', ['a.o', 'b.o'])],
      [ar('rcsD', ['a.o', 'c.o'])],
    );
    const m = x.misses[0]?.previous;
    assert.equal(m?.by, 'same-command-except-inputs');
    assert.equal(m.action, before[1]);
    assert.deepEqual(m.command.argv, {
      old: ['ar', 'rcsD', 'liba.a', 'a.o', 'b.o'],
      new: ['ar', 'rcsD', 'liba.a', 'a.o', 'c.o'],
      first_difference: 4,
      removed: ['b.o'],
      added: ['c.o'],
    });
    assert.deepEqual(
      m.inputs.map((d) => [d.path, d.old?.origin.type ?? null, d.new?.origin.type ?? null]),
      [
        ['b.o', 'unknown', null],
        ['c.o', null, 'unknown'],
      ],
    );
  });

  it('says when the input trees differ in something other than file contents', async () => {
    const { x } = await explainOf(
      [cc({ inputs: { 'a.c': 'int a;\n', tool: 'x:#!/bin/sh\n' } })],
      [cc({ inputs: { 'a.c': 'int a;\n', tool: '#!/bin/sh\n' } })],
    );
    assert.deepEqual(x.misses[0]?.previous?.inputs, []);
    assert.equal(
      x.misses[0].previous.note,
      'the input trees differ only in symlinks, directories or executable bits',
    );
  });

  it('matches by outputs, then by argv, and says when nothing resembles', async () => {
    const { x, before } = await explainOf(
      [cc({ argv: ['gcc', '-O2', '-c', 'a.c', '-o', 'a.o'] }), cc({ outputPaths: ['b.o'] })],
      [
        cc(),
        cc({ argv: ['gcc', '-c', 'a.c', '-o', 'a.o'], outputPaths: ['c.o'] }),
        cc({ argv: ['true'], outputPaths: ['z'] }),
      ],
    );
    assert.deepEqual(
      x.misses.map((m) => [m.previous?.by ?? null, m.previous?.action ?? null, m.note ?? null]),
      [
        ['same-outputs', before[0], null],
        ['same-argv', before[1], null],
        [null, null, 'no action of the previous build resembles it (same outputs or same command)'],
      ],
    );
    assert.deepEqual(x.misses[1]?.previous?.command.outputs, { old: ['b.o'], new: ['c.o'] });
  });

  it('explains without a previous record that has left the cache (no error)', async () => {
    const { x } = await explainOf([cc()], [cc({ inputs: { 'a.c': 'int b;\n' } })], {
      dropPrevious: true,
    });
    assert.equal(x.previous?.found, false);
    assert.deepEqual(
      x.misses.map((m) => [m.previous, m.note, m.priming.status]),
      [[null, "the previous build's record is no longer in the cache", 'off']],
    );
  });
});

describe('explain: where a file came from', () => {
  it('a file of the build tree that nothing recorded placed was written there by an unrecorded command', async () => {
    await using dir = await tempDir();
    const cas = await LocalCas.open({ dir: dir.path });
    const ac = await LocalActionCache.open(dir.path, cas);
    const gen = await cas.writeBlob(Buffer.from('#define GEN 1\n'));
    const labeler = new Labeler(cas, ac, new TreeFiles(cas), {
      element: 'app.bst',
      buildRoot: 'buildstream/test/app.bst',
      sources: undefined,
      deps: [],
      actions: [],
    });
    assert.deepEqual(await labeler.label('buildstream/test/app.bst/gen.h', gen, 0), {
      type: 'build-tree',
      element: 'app.bst',
      path: 'gen.h',
    });
    assert.deepEqual(await labeler.label('usr/include/stdio.h', gen, 0), { type: 'unknown' });
  });
});
