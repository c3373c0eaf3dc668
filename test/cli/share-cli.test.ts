// `specbuild artifact push | pull` between two machines (two cache
// directories) through a real `specbuild server`: A builds and pushes, B
// pulls and has the same artifact; a read-only remote is never written; a
// name whose content left the server is a miss.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { artifactPushCommand } from '../../src/cli/artifact-share.js';
import { artifactUrn } from '../../src/cas/index.js';
import { SpecbuildError } from '../../src/core/index.js';
import { RemoteEndpoint } from '../../src/remote/index.js';
import { cacheDirOf, ran, specbuild } from '../helpers/cli-rig.js';
import { assertStopsCleanly, startCliServer } from '../helpers/cli-server.js';
import { PROJECT_CONF, ProjectRig } from '../helpers/project-rig.js';
import { tempDir } from '../helpers/tmp.js';

const README = 'hello, shared\n';

const files = {
  'project.conf': PROJECT_CONF,
  'elements/hello.bst': [
    'kind: manual',
    'sources:',
    '- kind: local',
    '  path: hello-src',
    'config:',
    '  build-commands:',
    '  - gcc -o hello hello.c',
    '  install-commands:',
    '  - install -D hello %{install-root}%{bindir}/hello',
    '  - install -D -m 644 README %{install-root}%{docdir}/hello/README',
    '',
  ].join('\n'),
  'hello-src/hello.c': '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n',
  'hello-src/README': README,
};

async function show(rig: ProjectRig, format: string): Promise<string> {
  const r = await specbuild(rig, ['show', '--deps', 'none', '--format', format, 'hello.bst']);
  assert.equal(r.code, 0, ran(r));
  return r.stdout.trim();
}

async function checkout(rig: ProjectRig): Promise<Record<string, string>> {
  const out = join(rig.scratch, 'out');
  const r = await specbuild(rig, ['artifact', 'checkout', 'hello.bst', '--directory', out]);
  assert.equal(r.code, 0, ran(r));
  const hash = async (p: string): Promise<string> =>
    createHash('sha256')
      .update(await readFile(join(out, p)))
      .digest('hex');
  return {
    'usr/bin/hello': await hash('usr/bin/hello'),
    'usr/share/doc/hello/README': await hash('usr/share/doc/hello/README'),
  };
}

describe('specbuild artifact push | pull', () => {
  it('moves an artifact from machine A to machine B through a server; a read-only remote is not written; content gone from the server is a miss', async () => {
    await using serverCache = await tempDir();
    let server = await startCliServer(serverCache.path);
    try {
      await using a = await ProjectRig.create(files);
      await using b = await ProjectRig.create(files);
      const key = await show(a, '%{full-key}');
      assert.equal(await show(b, '%{full-key}'), key, 'both machines compute one key');

      const built = await specbuild(a, ['build', 'hello.bst']);
      assert.equal(built.code, 0, ran(built));
      assert.equal(await show(a, '%{state}'), 'cached');

      // B cannot pull what was never pushed: a miss, exit 1.
      const early = await specbuild(b, [
        'artifact',
        'pull',
        '--remote',
        server.address,
        'hello.bst',
      ]);
      assert.equal(early.code, 1, ran(early));
      assert.equal(
        early.stderr,
        `hello.bst (${key.slice(0, 8)}) is not pulled: ${server.address}: the remote does not know it\n`,
      );

      // A read-only remote is refused before anything is sent.
      const warnings: string[] = [];
      const orig = console.error;
      console.error = (line: string) => warnings.push(line);
      try {
        await assert.rejects(
          artifactPushCommand(
            ['hello.bst'],
            { remotes: [{ url: server.address, push: false }] },
            {
              directory: a.dir,
              debug: false,
              config: {
                cacheDir: cacheDirOf(a),
                quota: undefined,
                builders: 1,
                onError: 'quit',
                maxJobs: undefined,
                speculativeActions: 'none',
                primingOrder: 'recorded',
                artifactServers: [],
                remoteExecution: {},
                file: undefined,
              },
            },
          ),
          (e: unknown) =>
            e instanceof SpecbuildError &&
            e.code === 'remote/read-only' &&
            e.message === `no remote to push to: ${server.address} is read-only` &&
            e.hint === 'set push: true on an artifact server you may write to',
        );
      } finally {
        console.error = orig;
      }
      assert.deepEqual(warnings, [
        `warning: ${server.address} is read-only (push: false): nothing is pushed to it`,
      ]);
      {
        const ep = await RemoteEndpoint.connect({ target: server.address });
        try {
          assert.equal(
            await ep.assets.fetchBlob({ uris: [artifactUrn('test', 'hello', key)] }),
            undefined,
          );
        } finally {
          ep.close();
        }
      }

      // A pushes; pushing again sends nothing new.
      const pushed = await specbuild(a, [
        'artifact',
        'push',
        '--remote',
        server.address,
        'hello.bst',
      ]);
      assert.equal(pushed.code, 0, ran(pushed));
      const first =
        /^pushed hello\.bst \(([0-9a-f]{8})\) to (\S+): (\d+) of (\d+) blobs sent, (\d+) bytes, 0 action results\n$/.exec(
          pushed.stdout,
        );
      assert.ok(first, pushed.stdout);
      assert.equal(first[1], key.slice(0, 8));
      assert.equal(first[2], server.address);
      assert.equal(first[3], first[4], 'an empty server lacks every blob');
      const again = await specbuild(a, [
        'artifact',
        'push',
        '--remote',
        server.address,
        'hello.bst',
      ]);
      assert.equal(again.code, 0, ran(again));
      assert.equal(
        again.stdout,
        `pushed hello.bst (${key.slice(0, 8)}) to ${server.address}: 0 of ${first[4]} blobs sent, 0 bytes, 0 action results\n`,
      );

      // B, with an empty cache, pulls: cached, the same files.
      assert.equal(await show(b, '%{state}'), 'buildable');
      const pulled = await specbuild(b, [
        'artifact',
        'pull',
        '--remote',
        server.address,
        'hello.bst',
      ]);
      assert.equal(pulled.code, 0, ran(pulled));
      assert.equal(
        pulled.stdout,
        `pulled hello.bst (${key.slice(0, 8)}) from ${server.address}: ${first[3]} blobs fetched, ${first[5]} bytes\n`,
        'B fetches exactly what A sent',
      );
      assert.equal(await show(b, '%{state}'), 'cached');
      assert.deepEqual(await checkout(b), await checkout(a));
      const twice = await specbuild(b, [
        'artifact',
        'pull',
        '--remote',
        server.address,
        'hello.bst',
      ]);
      assert.equal(twice.stdout, `hello.bst (${key.slice(0, 8)}) is cached already\n`);

      // The README leaves the server's CAS: the name is a miss for a third machine.
      await server.stop();
      const hash = createHash('sha256').update(README).digest('hex');
      await rm(join(serverCache.path, 'cas', 'objects', hash.slice(0, 2), hash));
      server = await startCliServer(serverCache.path);
      await using c = await ProjectRig.create(files);
      const miss = await specbuild(c, [
        'artifact',
        'pull',
        '--remote',
        server.address,
        'hello.bst',
      ]);
      assert.equal(miss.code, 1, ran(miss));
      assert.equal(
        miss.stderr,
        `hello.bst (${key.slice(0, 8)}) is not pulled: ${server.address}: the remote does not know it\n`,
      );
      assert.equal(await show(c, '%{state}'), 'buildable');
    } finally {
      await assertStopsCleanly(server);
    }
  });
});
