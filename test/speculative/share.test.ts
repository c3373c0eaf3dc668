// What a push sends so that another machine can prime: after a real build
// through the recording socket, primingData names exactly each recorded
// action, its Command, every Directory of its input root and the blobs of
// its result, and the one input file no overlay replaces (written by an
// unrecorded command) and the toolchain files the link reads, and each result; an action whose tree has left the CAS
// is skipped and counted, never sent half.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { LocalActionCache, listFiles } from '../../src/cas/index.js';
import {
  ActionSchema,
  DirectorySchema,
  digestKey,
  digestOf,
  fromPb,
  parseDigestString,
  type Digest,
} from '../../src/reapi/index.js';
import { primingData } from '../../src/speculative/share.js';
import { buildRig } from '../helpers/build-rig.js';
import { PROJECT_CONF, ProjectRig } from '../helpers/project-rig.js';
import { appElement } from '../helpers/scenario.js';

const files = {
  'project.conf': PROJECT_CONF,
  'elements/app.bst': appElement(
    [],
    [
      "printf '#define ANSWER 0\\n' > gen.h",
      '$CC -c main.c -o main.o',
      '$CC -c other.c -o other.o',
      '$CC -o app main.o other.o',
    ],
  ),
  'app/main.c': '#include "gen.h"\nint other(void);\nint main(void) { return other() + ANSWER; }\n',
  'app/other.c': 'int other(void) { return 0; }\n',
};

describe('priming data for a push', () => {
  it('names each recorded action, its Command, its input Directories and its result blobs; a broken tree is skipped', async () => {
    await using rig = await ProjectRig.create(files);
    const cacheDir = join(rig.scratch, 'cache');
    const r = await buildRig(rig, ['app.bst'], { mode: 'full', cacheDir });
    assert.equal(r.states['app.bst'], 'built');
    const app = r.results.find((x) => x.name === 'app.bst');
    const recorded = app?.subactions ?? [];
    assert.equal(recorded.length, 3, 'two compiles and the link');
    const sa = app?.artifact?.speculativeActions;
    assert.ok(sa !== undefined, 'full mode stored speculative actions');
    const cas = r.cas;
    const ac = await LocalActionCache.open(cacheDir, cas);

    // What it should name, found by reading the blobs directly.
    const expected = new Set<string>();
    const expectedResults = new Set<string>();
    const directories = async (d: Digest): Promise<void> => {
      expected.add(digestKey(d));
      const dir = fromBinary(DirectorySchema, await cas.readBlob(d));
      for (const sub of dir.directories) await directories(fromPb(sub.digest));
    };
    for (const key of recorded) {
      const digest = parseDigestString(key, 'test');
      const action = fromBinary(ActionSchema, await cas.readBlob(digest));
      expected.add(key);
      expected.add(digestKey(fromPb(action.commandDigest)));
      await directories(fromPb(action.inputRootDigest));
      const result = await ac.getActionResult(digest);
      assert.ok(result !== undefined);
      for (const f of result.outputFiles) expectedResults.add(digestKey(fromPb(f.digest)));
      for (const d of [result.stdoutDigest, result.stderrDigest])
        if (d !== undefined) expectedResults.add(digestKey(fromPb(d)));
    }

    const data = await primingData(cas, ac, fromPb(sa));
    assert.equal(data.skipped, 0);
    assert.deepEqual(data.structure.map(digestKey).sort(), [...expected].sort());
    assert.deepEqual(data.resultBlobs.map(digestKey).sort(), [...expectedResults].sort());
    // Inputs no overlay replaces: gen.h (written by an unrecorded command)
    // and the host toolchain's files the actions read (stdc-predef.h, crt*.o,
    // libc); never the element's sources or the compiles' objects.
    const genH = digestOf(Buffer.from('#define ANSWER 0\n'));
    const ownFiles = /^buildstream\/test\/app\.bst\/(main|other)\.[co]$/;
    const host = new Set<string>();
    for (const key of recorded) {
      const action = fromBinary(ActionSchema, await cas.readBlob(parseDigestString(key, 'test')));
      for (const f of await listFiles(cas, fromPb(action.inputRootDigest)))
        if (!ownFiles.test(f.path) && !f.path.endsWith('/gen.h')) {
          assert.match(f.path, /^(usr|lib|lib64)\//, 'only host files besides the own ones');
          host.add(digestKey(f.digest));
        }
    }
    assert.ok(host.size > 3, 'the compiles and the link read host toolchain files');
    assert.deepEqual(data.inputFiles.map(digestKey).sort(), [digestKey(genH), ...host].sort());

    // gen.h evicted from the local CAS: left out of the inputs, the rest sent.
    await rm(cas.pathOf(genH));
    const evicted = await primingData(cas, ac, fromPb(sa));
    assert.deepEqual(
      evicted.inputFiles.map(digestKey).sort(),
      [...host].sort(),
      'gen.h left out, nothing thrown',
    );
    assert.equal(evicted.skipped, 0);

    // The link's input root leaves the CAS: the link is skipped (counted),
    // and the compiles, whose results its overlays name, are still sent.
    const link = fromBinary(
      ActionSchema,
      await cas.readBlob(parseDigestString(recorded[2] ?? '', 'test')),
    );
    await rm(cas.pathOf(fromPb(link.inputRootDigest)));
    const broken = await primingData(cas, ac, fromPb(sa));
    assert.equal(broken.skipped, 1);
    assert.deepEqual(
      broken.results.map((x) => digestKey(x.action)).sort(),
      [recorded[0], recorded[1]].sort(),
    );
    assert.ok(!broken.structure.some((d) => digestKey(d) === recorded[2]), 'the link is not sent');
  });
});
