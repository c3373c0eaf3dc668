// `specbuild build` with artifact remotes, and what goes wrong with them, on
// examples/hello through real `specbuild server` processes: an unreachable
// remote is one warning and the build goes on locally; wrong credentials are
// an error naming the remote before anything builds; a server killed with
// SIGKILL mid-push or mid-pull fails nothing, and the next run pushes what
// is missing (or finds everything cached).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { fromBinary } from '@bufbuild/protobuf';
import { join } from 'node:path';
import { artifactUrn, LocalCas } from '../../src/cas/index.js';
import { ActionSchema, parseDigestString } from '../../src/reapi/index.js';
import { RemoteEndpoint } from '../../src/remote/index.js';
import { cacheDirOf, ran, specbuild } from '../helpers/cli-rig.js';
import { assertStopsCleanly, startCliServer, type CliServer } from '../helpers/cli-server.js';
import { EXAMPLE_ELEMENTS, exampleFiles } from '../helpers/example.js';
import { ProjectRig } from '../helpers/project-rig.js';
import { tempDir } from '../helpers/tmp.js';

async function configure(rig: ProjectRig, yaml: string): Promise<void> {
  const dir = join(rig.scratch, 'xdg-config', 'specbuild');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'specbuild.yaml'), yaml);
}

/** The elements of examples/hello whose strong key the server's asset index names. */
async function known(server: CliServer, rig: ProjectRig): Promise<string[]> {
  const out: string[] = [];
  const ep = await RemoteEndpoint.connect({ target: server.address });
  try {
    for (const e of EXAMPLE_ELEMENTS) {
      const shown = await specbuild(rig, ['show', '--deps', 'none', '--format', '%{full-key}', e]);
      const urn = artifactUrn('hello', e.replace(/\.bst$/, ''), shown.stdout.trim());
      if ((await ep.assets.fetchBlob({ uris: [urn] })) !== undefined) out.push(e);
    }
  } finally {
    ep.close();
  }
  return out;
}

function lines(output: string, re: RegExp): string[] {
  return output.split('\n').filter((l) => re.test(l));
}

describe('specbuild build with artifact remotes', () => {
  it('an unreachable remote is one warning and the build goes on; wrong credentials are an error naming the remote', async () => {
    const files = await exampleFiles();
    await using rig = await ProjectRig.create(files);
    // Port 1 on loopback: nothing listens there.
    const down = await specbuild(rig, ['build', '--remote', '127.0.0.1:1', 'hello.bst']);
    assert.equal(down.code, 0, ran(down));
    const warnings = lines(down.stderr, /warning/);
    assert.equal(warnings.length, 1, ran(down));
    assert.match(
      warnings[0] ?? '',
      /^\[\d\d:\d\d\] {3}warning: artifact remote 127\.0\.0\.1:1 is unreachable: connection refused; going on without it$/,
    );
    assert.match(down.stdout, /^build succeeded: 4 built, 0 cached/m);
    assert.match(down.stdout, /^remotes: 0 pulled, 0 pulled for priming, 0 pushed$/m);

    await using secrets = await tempDir();
    await writeFile(join(secrets.path, 'right'), 'open-sesame\n');
    await writeFile(join(secrets.path, 'wrong'), 'open-barley\n');
    await using serverCache = await tempDir();
    const server = await startCliServer(serverCache.path, {
      args: ['--token-file', join(secrets.path, 'right')],
    });
    try {
      await configure(
        rig,
        [
          'artifacts:',
          '  servers:',
          `  - url: grpc://${server.address}`,
          '    push: true',
          '    auth:',
          `      access-token: ${join(secrets.path, 'wrong')}`,
          '',
        ].join('\n'),
      );
      const refused = await specbuild(rig, ['build', 'hello.bst']);
      assert.equal(refused.code, 1, ran(refused));
      assert.equal(
        refused.stderr,
        `error: artifact remote grpc://${server.address} refused the credentials: missing or wrong bearer token\n` +
          '  hint: check auth.access-token (or the client certificate) of this server in the configuration\n',
      );
    } finally {
      await assertStopsCleanly(server);
    }
  });

  it('a server killed mid-push fails nothing and the next run pushes the rest; killed mid-pull, the build goes on locally', async () => {
    const files = await exampleFiles();
    await using serverCache = await tempDir();
    let server = await startCliServer(serverCache.path);
    const address = server.address;
    try {
      await using a = await ProjectRig.create(files);
      await configure(a, `artifacts:\n  servers:\n  - url: grpc://${address}\n    push: true\n`);
      // Killed once the first artifact (libbase's) is pushed: the next
      // elements' pushes find no server.
      let killed: Promise<unknown> | undefined;
      const first = await specbuild(a, ['build', 'hello.bst'], {
        onOutput: (out) => {
          if (killed === undefined && /pushed libbase\.bst/.test(out)) killed = server.kill();
        },
      });
      await killed;
      assert.equal(first.code, 0, ran(first));
      assert.match(first.stdout, /^build succeeded: 4 built, 0 cached/m, ran(first));
      assert.match(first.stdout, /^remotes: 0 pulled, 0 pulled for priming, 1 pushed/m, ran(first));
      assert.equal(lines(first.stderr, /is unreachable/).length, 1, ran(first));

      // The server back on the same address with the same cache: the next
      // run has everything cached and pushes the three the server lacks.
      server = await startCliServer(serverCache.path, { listen: address });
      assert.deepEqual(await known(server, a), ['libbase.bst']);
      const again = await specbuild(a, ['build', 'hello.bst']);
      assert.equal(again.code, 0, ran(again));
      assert.match(again.stdout, /^build succeeded: 0 built, 4 cached/m);
      assert.match(again.stdout, /^remotes: 0 pulled, 0 pulled for priming, 3 pushed$/m);
      assert.deepEqual(await known(server, a), EXAMPLE_ELEMENTS);

      // B pulls; the server is killed once the first artifact is in.
      await using b = await ProjectRig.create(files);
      await configure(b, `artifacts:\n  servers:\n  - url: grpc://${address}\n`);
      let killedB: Promise<unknown> | undefined;
      const pulling = await specbuild(b, ['build', 'hello.bst'], {
        onOutput: (out) => {
          if (killedB === undefined && /pulled \S+\.bst from/.test(out)) killedB = server.kill();
        },
      });
      await killedB;
      assert.equal(pulling.code, 0, ran(pulling));
      const pulled = lines(pulling.output, /^\[\d\d:\d\d\] +pulled \S+ from/).length;
      const built = lines(pulling.output, /^\[\d\d:\d\d\] +built /).length;
      assert.ok(pulled >= 1, ran(pulling));
      assert.equal(pulled + built, 4, `each element pulled or built: ${ran(pulling)}`);
      const rerun = await specbuild(b, ['build', 'hello.bst']);
      assert.equal(rerun.code, 0, ran(rerun));
      assert.match(rerun.stdout, /^build succeeded: 0 built, 4 cached/m);
      const checked = await specbuild(b, [
        'artifact',
        'checkout',
        'app.bst',
        '--directory',
        join(b.scratch, 'app'),
      ]);
      assert.equal(checked.code, 0, ran(checked));
    } finally {
      await server.stop();
    }
  });

  it('remote-execution runs the subactions on the cluster; an unreachable cluster is one warning and they run here', async () => {
    const files = await exampleFiles();
    await using serverCache = await tempDir();
    const server = await startCliServer(serverCache.path);
    try {
      await using a = await ProjectRig.create(files);
      await configure(
        a,
        [
          'remote-execution:',
          '  jobs: 4',
          '  platform:',
          '    OSFamily: linux',
          '  execution-service:',
          `    url: grpc://${server.address}`,
          '',
        ].join('\n'),
      );
      const report = join(a.scratch, 'report.json');
      const r = await specbuild(a, ['build', '--report', report, 'hello.bst']);
      assert.equal(r.code, 0, ran(r));
      // libbase 5, libmid 6, app 4 actions (the wrapper logs' count), all run there.
      assert.match(r.stdout, /^remote execution: 15 executed, 0 cached there$/m, ran(r));
      assert.match(r.stdout, /^actions: 0 primed hits, 0 cached hits, 15 executed/m);
      // Each recorded action carries the configured platform, not this host's.
      const parsed = JSON.parse(await readFile(report, 'utf8')) as {
        elements: { subactions: string[] }[];
      };
      const recorded = parsed.elements.flatMap((e) => e.subactions);
      assert.equal(recorded.length, 15);
      const cas = await LocalCas.open({ dir: cacheDirOf(a) });
      for (const key of recorded) {
        const action = fromBinary(ActionSchema, await cas.readBlob(parseDigestString(key)));
        assert.deepEqual(
          action.platform?.properties.map((p) => `${p.name}=${p.value}`),
          ['OSFamily=linux'],
          key,
        );
      }

      await using b = await ProjectRig.create(files);
      await configure(b, 'remote-execution:\n  execution-service:\n    url: grpc://127.0.0.1:1\n');
      const down = await specbuild(b, ['build', 'hello.bst']);
      assert.equal(down.code, 0, ran(down));
      const warnings = lines(down.stderr, /warning/);
      assert.deepEqual(
        warnings.map((w) => w.replace(/^\[\d\d:\d\d\] +/, '')),
        [
          'warning: remote execution at grpc://127.0.0.1:1 is unreachable: connection refused; running actions here',
        ],
      );
      assert.doesNotMatch(down.stdout, /^remote execution:/m);
      assert.match(down.stdout, /^build succeeded: 4 built/m);

      // A third machine with the same platform: libbase's 5 actions are
      // answered from the cluster's action cache (A ran them there); the cluster is killed once libbase
      // is built, and libmid's and app's 10 find it gone (one warning) and
      // run here.
      await using c = await ProjectRig.create(files);
      await configure(
        c,
        `remote-execution:\n  platform:\n    OSFamily: linux\n  execution-service:\n    url: grpc://${server.address}\n`,
      );
      let killed: Promise<unknown> | undefined;
      const midway = await specbuild(c, ['build', 'hello.bst'], {
        onOutput: (out) => {
          if (killed === undefined && /built \S+ libbase\.bst/.test(out)) killed = server.kill();
        },
      });
      await killed;
      assert.equal(midway.code, 0, ran(midway));
      assert.match(midway.stdout, /^build succeeded: 4 built/m);
      assert.match(midway.stdout, /^remote execution: 0 executed, 5 cached there, 10 run here$/m);
      assert.equal(lines(midway.stderr, /warning: remote execution .* is unreachable/).length, 1);
    } finally {
      await server.stop();
    }
  });
});
