// Sharing through an artifact remote, end to end with real builds and a real
// `specbuild server`: machine A builds examples/hello with full and pushes
// (artifacts, speculative actions, priming data, action results); machine B,
// with an empty cache and a new version of libbase's header, pulls by weak
// key and primes, and every element's build gets exactly the counts that
// the same rebuild gets on machine A itself. Then B rebuilds with the
// header A built: everything is pulled by strong key, nothing runs. The
// same rebuild of B with its subactions and priming on the server's
// Execution service gets the same counts with nothing run here.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { RemoteEndpoint } from '../../src/remote/index.js';
import type { ShareEvent, ShareRemote } from '../../src/speculative/index.js';
import { buildRig, type RigBuild } from '../helpers/build-rig.js';
import { assertStopsCleanly, startCliServer } from '../helpers/cli-server.js';
import {
  bumpedHeader,
  EXAMPLE_ELEMENTS,
  EXAMPLE_HEADER,
  exampleFiles,
} from '../helpers/example.js';
import { ProjectRig } from '../helpers/project-rig.js';
import { counts } from '../helpers/scenario.js';
import { tempDir } from '../helpers/tmp.js';

const ELEMENTS = EXAMPLE_ELEMENTS;
const HEADER = EXAMPLE_HEADER;
const bumped = bumpedHeader;

function shareEvents(r: RigBuild): ShareEvent[] {
  return r.events.filter((e): e is ShareEvent => e.type === 'share');
}

/** "op outcome" per element, sorted. */
function shareSummary(r: RigBuild): string[] {
  return shareEvents(r)
    .map((e) => `${e.element ?? '-'} ${e.op} ${e.outcome}`)
    .sort();
}

describe('sharing speculative actions through an artifact remote', () => {
  it('machine B primes from what machine A pushed and gets exactly the counts of the same rebuild on A', async () => {
    await using serverCache = await tempDir();
    const server = await startCliServer(serverCache.path);
    try {
      const remote = (push: boolean): ShareRemote => ({
        url: server.address,
        push,
        connect: () => RemoteEndpoint.connect({ target: server.address }),
      });
      const files = await exampleFiles();
      await using a = await ProjectRig.create(files);
      const cacheA = join(a.scratch, 'cache');

      // A: the first build, pushed.
      const first = await buildRig(a, ['hello.bst'], {
        mode: 'full',
        cacheDir: cacheA,
        remotes: [remote(true)],
      });
      assert.deepEqual(first.states, Object.fromEntries(ELEMENTS.map((e) => [e, 'built'])));
      assert.deepEqual(
        shareSummary(first),
        [
          'app.bst pull miss',
          'app.bst pull-priming miss',
          'hello.bst pull miss',
          'hello.bst pull-priming miss',
          'hello.bst push pushed',
          'libbase.bst pull miss',
          'libbase.bst pull-priming miss',
          'libbase.bst push pushed',
          'libmid.bst pull miss',
          'libmid.bst pull-priming miss',
          'libmid.bst push pushed',
          'app.bst push pushed',
        ].sort(),
      );

      // The reference: the same rebuild on A (a copy of its cache), no remote.
      const cacheRef = join(a.scratch, 'cache-ref');
      await cp(cacheA, cacheRef, { recursive: true });
      await a.write(bumped(files));
      const reference = await buildRig(a, ['hello.bst'], { mode: 'full', cacheDir: cacheRef });

      // B: an empty cache, the same change, the remote read-only.
      await using b = await ProjectRig.create({ ...files, ...bumped(files) });
      const cacheB = join(b.scratch, 'cache');
      const rebuilt = await buildRig(b, ['hello.bst'], {
        mode: 'full',
        cacheDir: cacheB,
        remotes: [remote(false)],
      });
      assert.deepEqual(rebuilt.states, reference.states);
      assert.deepEqual(
        rebuilt.states,
        Object.fromEntries(ELEMENTS.map((e) => [e, 'built'])),
        'every element has a new strong key',
      );
      // libbase's own sources changed (a new weak key: nothing to prime);
      // libmid and app prime from what A recorded; the stack records nothing.
      const pulledForPriming = shareEvents(rebuilt)
        .filter((e) => e.op === 'pull-priming' && e.outcome === 'pulled')
        .map((e) => e.element)
        .sort();
      assert.deepEqual(pulledForPriming, ['app.bst', 'libmid.bst']);
      for (const e of ELEMENTS)
        assert.deepEqual(counts(rebuilt, e), counts(reference, e), `${e}: B's counts equal A's`);
      const primedHits = ['libmid.bst', 'app.bst'].map(
        (e) => counts(reference, e)['build-action:hit-primed'] ?? 0,
      );
      assert.ok(
        primedHits.every((n) => n > 0),
        `libmid and app get primed hits (${primedHits.join(', ')})`,
      );
      assert.equal(
        shareEvents(rebuilt).filter((e) => e.outcome === 'failed' || e.outcome === 'unreachable')
          .length,
        0,
      );

      // B again from an empty cache, its subactions and priming on the
      // server's Execution service (which is also the artifact remote, so
      // no input files or results are fetched here): the same counts, and
      // nothing runs on this machine.
      const endpoint = await RemoteEndpoint.connect({ target: server.address });
      let onCluster: RigBuild;
      try {
        onCluster = await buildRig(b, ['hello.bst'], {
          mode: 'full',
          cacheDir: join(b.scratch, 'cache-cluster'),
          remotes: [{ ...remote(false), filesNeeded: false }],
          cluster: endpoint,
        });
      } finally {
        endpoint.close();
      }
      assert.deepEqual(onCluster.states, reference.states);
      for (const e of ELEMENTS)
        assert.deepEqual(
          counts(onCluster, e),
          counts(reference, e),
          `${e}: on the cluster, B's counts equal A's`,
        );
      assert.equal(onCluster.localExecutions, 0, 'no action ran on this machine');
      const ranThere = ELEMENTS.reduce(
        (n, e) =>
          n +
          (counts(reference, e)['build-action:miss'] ?? 0) +
          (counts(reference, e)['prime:completed'] ?? 0),
        0,
      );
      assert.ok(ranThere > 0);
      assert.equal(onCluster.cluster?.counts.executed, ranThere, 'every miss and primed action');
      assert.equal(onCluster.cluster.counts.fallback, 0);
      const priming = shareEvents(onCluster).filter(
        (e) => e.op === 'pull-priming' && e.outcome === 'pulled',
      );
      assert.deepEqual(priming.map((e) => [e.element, e.results]).sort(), [
        ['app.bst', 0],
        ['libmid.bst', 0],
      ]);

      // B again, with the header A built: everything comes by strong key.
      await b.write({ [HEADER]: files[HEADER] ?? '' });
      const pulled = await buildRig(b, ['hello.bst'], {
        mode: 'full',
        cacheDir: join(b.scratch, 'cache-2'),
        remotes: [remote(false)],
      });
      assert.deepEqual(pulled.states, Object.fromEntries(ELEMENTS.map((e) => [e, 'cached'])));
      assert.deepEqual(shareSummary(pulled), ELEMENTS.map((e) => `${e} pull pulled`).sort());
      for (const e of ELEMENTS)
        assert.deepEqual(
          pulled.results.find((r) => r.name === e)?.subactions,
          first.results.find((r) => r.name === e)?.subactions,
          `${e}: the pulled artifact records A's actions`,
        );
    } finally {
      await assertStopsCleanly(server);
    }
  });
});
