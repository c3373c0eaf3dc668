// A project that brings its own toolchain: examples/hello built on a
// sysroot element made from Debian's packages, each element naming it with
// `digest-environment: RECC_REMOTE_PLATFORM_chrootRootDigest`. Every
// recorded action carries that tree as its chrootRootDigest and runs in it
// (nothing of the host's), and the first build and the rebuild after a new
// libbase header get, element by element, exactly the counts of the same
// builds on the host's toolchain. On a specbuild server the same actions
// run there, the sysroot's tree uploaded with them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { ActionSchema, digestKey, fromPb, parseDigestString } from '../../src/reapi/index.js';
import { buildRig, type RigBuild } from '../helpers/build-rig.js';
import { bumpedHeader, EXAMPLE_ELEMENTS, exampleFiles } from '../helpers/example.js';
import { ProjectRig } from '../helpers/project-rig.js';
import { assertStopsCleanly, startCliServer } from '../helpers/cli-server.js';
import { tempDir } from '../helpers/tmp.js';
import { RemoteEndpoint } from '../../src/remote/index.js';
import { counts } from '../helpers/scenario.js';
import { sysrootTarball } from '../helpers/sysroot.js';

const SYSROOT_DEP = [
  '- filename: sysroot.bst',
  '  config:',
  '    digest-environment: RECC_REMOTE_PLATFORM_chrootRootDigest',
];

/** The example with every element building on sysroot.bst. */
async function onSysroot(files: Record<string, string>): Promise<Record<string, string>> {
  const sys = await sysrootTarball();
  const out = { ...files };
  for (const e of ['libbase', 'libmid', 'app']) {
    const path = `elements/${e}.bst`;
    const text = out[path] ?? '';
    out[path] = text.includes('build-depends:\n')
      ? text.replace('build-depends:\n', `build-depends:\n${SYSROOT_DEP.join('\n')}\n`)
      : `${text.trimEnd()}\n\nbuild-depends:\n${SYSROOT_DEP.join('\n')}\n`;
  }
  out['elements/sysroot.bst'] = [
    'kind: import',
    'description: gcc, binutils and libc6-dev from Debian packages',
    'sources:',
    '- kind: tar',
    `  url: file://${sys.path}`,
    `  ref: ${sys.sha256}`,
    '',
  ].join('\n');
  return out;
}

/** Two builds (the second after a new libbase header), and the platform of each first-build action. */
async function twice(
  files: Record<string, string>,
): Promise<{ first: RigBuild; second: RigBuild; platforms: string[][] }> {
  await using rig = await ProjectRig.create(files);
  const cacheDir = join(rig.scratch, 'cache');
  const first = await buildRig(rig, ['hello.bst'], { mode: 'full', cacheDir });
  const platforms: string[][] = [];
  for (const key of first.results.flatMap((r) => r.subactions)) {
    const action = fromBinary(ActionSchema, await first.cas.readBlob(parseDigestString(key)));
    platforms.push(action.platform?.properties.map((p) => `${p.name}=${p.value}`) ?? []);
  }
  await rig.write(bumpedHeader(files));
  const second = await buildRig(rig, ['hello.bst'], { mode: 'full', cacheDir });
  return { first, second, platforms };
}

describe('a sysroot element (chrootRootDigest)', () => {
  it('records its actions in the sysroot and primes them exactly: the counts of the host toolchain', async () => {
    const files = await exampleFiles();
    const host = await twice(files);
    const [hostFirst, hostSecond] = [host.first, host.second];
    const { first, second, platforms } = await twice(await onSysroot(files));
    for (const r of [first, second])
      for (const e of EXAMPLE_ELEMENTS)
        assert.equal(
          r.states[e],
          'built',
          `${e}: ${r.results.find((x) => x.name === e)?.error?.message ?? ''}`,
        );
    for (const e of EXAMPLE_ELEMENTS) {
      assert.deepEqual(counts(first, e), counts(hostFirst, e), `${e}, first build`);
      assert.deepEqual(counts(second, e), counts(hostSecond, e), `${e}, rebuild`);
    }
    const primed = EXAMPLE_ELEMENTS.reduce(
      (n, e) => n + (counts(second, e)['build-action:hit-primed'] ?? 0),
      0,
    );
    assert.ok(primed > 0, 'the rebuild gets primed hits');

    // Every recorded action names the sysroot's tree as its root, and nothing else.
    const sysroot = first.results.find((r) => r.name === 'sysroot.bst')?.artifact?.files;
    assert.ok(sysroot !== undefined);
    const root = digestKey(fromPb(sysroot));
    assert.equal(platforms.length, 15);
    for (const p of platforms) assert.deepEqual(p, [`chrootRootDigest=${root}`]);
  });

  it('runs the same sysroot actions on a specbuild server: the tree is uploaded with them, nothing runs here', async () => {
    const files = await onSysroot(await exampleFiles());
    await using rig = await ProjectRig.create(files);
    await using serverCache = await tempDir();
    const server = await startCliServer(serverCache.path);
    const ep = await RemoteEndpoint.connect({ target: server.address });
    try {
      const r = await buildRig(rig, ['hello.bst'], {
        mode: 'full',
        cacheDir: join(rig.scratch, 'cache'),
        cluster: ep,
      });
      for (const e of EXAMPLE_ELEMENTS) assert.equal(r.states[e], 'built', e);
      assert.deepEqual(counts(r, 'libbase.bst'), { 'build-action:miss': 5 });
      assert.equal(r.localExecutions, 0, 'nothing ran here');
      assert.deepEqual(r.cluster?.counts, { executed: 15, cached: 0, fallback: 0 });
    } finally {
      ep.close();
      await assertStopsCleanly(server);
    }
  });
});
