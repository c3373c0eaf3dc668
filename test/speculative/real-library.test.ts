// Speculative actions on real code nobody here wrote: zlib 1.2.13 from
// Debian's source archive (fetched by scripts/install-test-deps.sh; offline
// afterwards), and minizip from its contrib/ built against it as the next
// element of the chain. A realistic upstream change, zlib.h's version bump,
// then primes minizip's compiles and links ahead of its rebuild.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { debianTarball, DEBIAN_SRC, type Tarball } from '../helpers/debian-src.js';
import { ProjectRig } from '../helpers/project-rig.js';
import { buildRig, type RigBuild } from '../helpers/build-rig.js';
import { counts } from '../helpers/scenario.js';
import { SOCKET_SERIAL } from '../helpers/scenario.js';

const SRC_DIR = DEBIAN_SRC;

function zlibTarball(): Tarball {
  return debianTarball(/^zlib_.*\.orig\.tar\./, 'run bash scripts/install-test-deps.sh');
}

const SOCKET = SOCKET_SERIAL;

const MINIZIP_C = ['ioapi', 'unzip', 'zip', 'mztools', 'miniunz', 'minizip'];

function project(t: ReturnType<typeof zlibTarball>, zlibH: string): Record<string, string> {
  return {
    'project.conf': `name: real\nmin-version: 2.0\nelement-path: elements\naliases:\n  debian: file://${SRC_DIR}/\n`,
    'elements/zlib.bst': [
      'kind: manual',
      'description: zlib from its released tarball, with an upstream change to zlib.h laid over it',
      'sources:',
      '- kind: tar',
      `  url: debian:${t.file.slice(SRC_DIR.length + 1)}`,
      `  ref: ${t.sha256}`,
      '- kind: local',
      '  path: upstream',
      ...SOCKET,
      'config:',
      '  configure-commands:',
      '  - ./configure --static --prefix=%{prefix}',
      '  build-commands:',
      '  - make libz.a',
      '  install-commands:',
      '  - install -D -m 644 zlib.h %{install-root}%{includedir}/zlib.h',
      '  - install -D -m 644 zconf.h %{install-root}%{includedir}/zconf.h',
      '  - install -D -m 644 libz.a %{install-root}%{libdir}/libz.a',
      '',
    ].join('\n'),
    'elements/minizip.bst': [
      'kind: manual',
      'description: minizip (zlib contrib) built against the zlib element',
      'build-depends:',
      '- zlib.bst',
      'sources:',
      '- kind: tar',
      `  url: debian:${t.file.slice(SRC_DIR.length + 1)}`,
      `  ref: ${t.sha256}`,
      `  base-dir: ${t.topDir}/contrib/minizip`,
      ...SOCKET,
      'config:',
      '  build-commands:',
      ...MINIZIP_C.map((c) => `  - $CC -O2 -DNOCRYPT -D_LARGEFILE64_SOURCE -c ${c}.c -o ${c}.o`),
      '  - $CC -o miniunz miniunz.o unzip.o ioapi.o %{libdir}/libz.a',
      '  - $CC -o minizip minizip.o zip.o ioapi.o %{libdir}/libz.a',
      '  install-commands:',
      '  - install -D miniunz %{install-root}%{bindir}/miniunz',
      '  - install -D minizip %{install-root}%{bindir}/minizip',
      '',
    ].join('\n'),
    'upstream/zlib.h': zlibH,
  };
}

function byOutcome(r: RigBuild, element: string): Record<string, number> {
  return Object.fromEntries(
    Object.entries(counts(r, element)).filter(([k]) => k.startsWith('build-action')),
  );
}

describe('speculative actions on a real library', () => {
  it('zlib.h version bump: minizip is primed while zlib rebuilds, and its rebuild hits', async () => {
    const t = zlibTarball();
    const original = execFileSync('tar', ['-xOf', t.file, `${t.topDir}/zlib.h`], {
      encoding: 'utf8',
    });
    await using rig = await ProjectRig.create(project(t, original));
    const first = await buildRig(rig, ['minizip.bst'], { mode: 'full' });
    assert.deepEqual(
      first.states,
      { 'zlib.bst': 'built', 'minizip.bst': 'built' },
      JSON.stringify(first.results.map((r) => r.error?.message)),
    );
    assert.deepEqual(byOutcome(first, 'minizip.bst'), { 'build-action:miss': 8 });
    // Upstream bumps its version: zlib.h (and so every compile that includes it) changes.
    const bumped = original
      .replace(/#define ZLIB_VERSION "([^"]+)"/, '#define ZLIB_VERSION "$1.1"')
      .replace(
        /#define ZLIB_VERNUM 0x([0-9a-f]+)/,
        (_, v: string) => `#define ZLIB_VERNUM 0x${(parseInt(v, 16) + 1).toString(16)}`,
      );
    assert.notEqual(bumped, original);
    await rig.write({ 'upstream/zlib.h': bumped });
    const second = await buildRig(rig, ['minizip.bst'], { mode: 'full' });
    assert.deepEqual(second.states, { 'zlib.bst': 'built', 'minizip.bst': 'built' });
    const mz = second.results.find((r) => r.name === 'minizip.bst')?.speculative;
    assert.ok(mz);
    // Every compile includes zlib.h; both links take the new libz.a: all 8 are primed and hit.
    assert.deepEqual(byOutcome(second, 'minizip.bst'), { 'build-action:hit-primed': 8 });
    assert.deepEqual([mz.primed, mz.precision, mz.recall], [8, 1, 1]);
  });
});
