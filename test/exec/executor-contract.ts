// What every executor does with real commands (sh, cat, gcc): run against the
// local executor and against `specbuild server` through the remote client.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fromBinary } from '@bufbuild/protobuf';
import type { ActionCache, Cas } from '../../src/cas/index.js';
import { TreeSchema, fromPb, type ActionResult, type Digest } from '../../src/reapi/index.js';
import { uploadAction } from '../helpers/actions.js';

export interface ExecOutcome {
  result: ActionResult;
  cached: boolean;
  /** Error code of an execution error (e.g. 'exec/timeout'), if any. */
  errorCode?: string;
}

export interface ExecRig extends AsyncDisposable {
  cas: Cas;
  ac: ActionCache;
  execute(action: Digest, opts?: { skipCacheLookup?: boolean }): Promise<ExecOutcome>;
  /** How many actions the executor really ran. */
  runs(): number;
  /** Removes a blob from the store behind the executor. */
  evict?: (d: Digest) => Promise<void>;
}

async function text(cas: Cas, d: ActionResult['stdoutDigest']): Promise<string> {
  return Buffer.from(await cas.readBlob(fromPb(d))).toString('utf8');
}

export function executorContract(name: string, makeRig: () => Promise<ExecRig>): void {
  describe(`executor contract: ${name}`, () => {
    it('runs a command and returns its outputs, stdout, stderr and exit code', async () => {
      await using rig = await makeRig();
      const a = await uploadAction(rig.cas, {
        argv: ['sh', '-c', 'cat a.txt b.txt > out/c.txt; echo to-out; echo to-err >&2; exit 0'],
        inputs: { 'a.txt': 'A\n', 'b.txt': 'B\n' },
        outputPaths: ['out/c.txt'],
      });
      const { result, cached } = await rig.execute(a);
      assert.equal(cached, false);
      assert.equal(result.exitCode, 0);
      assert.equal(await text(rig.cas, result.stdoutDigest), 'to-out\n');
      assert.equal(await text(rig.cas, result.stderrDigest), 'to-err\n');
      const f = result.outputFiles[0];
      assert.equal(f?.path, 'out/c.txt');
      assert.equal(await text(rig.cas, f.digest), 'A\nB\n');
      assert.ok(result.executionMetadata?.worker);
      assert.ok(result.executionMetadata.executionStartTimestamp);
    });

    it('caches a successful result and answers the second time from the cache', async () => {
      await using rig = await makeRig();
      const a = await uploadAction(rig.cas, {
        argv: ['sh', '-c', 'echo once > o'],
        outputPaths: ['o'],
      });
      const first = await rig.execute(a);
      assert.equal(first.cached, false);
      const second = await rig.execute(a);
      assert.equal(second.cached, true);
      assert.equal(rig.runs(), 1);
      assert.ok(await rig.ac.getActionResult(a));
      const forced = await rig.execute(a, { skipCacheLookup: true });
      assert.equal(forced.cached, false);
      assert.equal(rig.runs(), 2);
    });

    it('reports a failing exit code and does not cache it', async () => {
      await using rig = await makeRig();
      const a = await uploadAction(rig.cas, { argv: ['sh', '-c', 'echo broken >&2; exit 3'] });
      const { result } = await rig.execute(a);
      assert.equal(result.exitCode, 3);
      assert.equal(await text(rig.cas, result.stderrDigest), 'broken\n');
      assert.equal(await rig.ac.getActionResult(a), undefined);
    });

    it('compiles with gcc, with headers staged above /usr/include and the working directory honoured', async () => {
      await using rig = await makeRig();
      const a = await uploadAction(rig.cas, {
        argv: ['gcc', '-c', 'main.c', '-o', 'main.o'],
        inputs: {
          'usr/include/specbuild-dep.h': '#define DEP 42\n',
          'buildstream/proj/app/main.c':
            '#include <specbuild-dep.h>\nint dep(void) { return DEP; }\n',
        },
        workingDirectory: 'buildstream/proj/app',
        outputPaths: ['main.o'],
      });
      const { result } = await rig.execute(a);
      assert.equal(result.exitCode, 0, await text(rig.cas, result.stderrDigest));
      const obj = result.outputFiles[0];
      assert.equal(obj?.path, 'main.o');
      const bytes = await rig.cas.readBlob(fromPb(obj.digest));
      assert.equal(Buffer.from(bytes.subarray(1, 4)).toString(), 'ELF');
      assert.ok(!existsSync('/usr/include/specbuild-dep.h'));
    });

    it('lets the command write wherever a build writes, though it is not host root', async () => {
      await using rig = await makeRig();
      const a = await uploadAction(rig.cas, {
        argv: [
          'sh',
          '-c',
          [
            'set -e',
            'echo created > src/created.txt', // a new file in a staged directory
            'mkdir -p src/deep/er && echo f > src/deep/er/f', // copy-up of a staged directory, mkdir -p
            'echo replaced > src/in.txt.new && mv src/in.txt.new src/in.txt', // replacing an input
            'echo t > /tmp/t && cat /tmp/t > /dev/null',
            'gcc -c src/add.c -o build/add.o', // into a staged directory
            'gcc -c src/add.c -o out/add.o', // into the parent the executor made
            'mkdir made && gcc -c src/add.c -o made/add.o', // into a directory of its own
          ].join('\n'),
        ],
        // Below a top-level directory: the staged directories are the layer's, not its upper's.
        workingDirectory: 'proj',
        inputs: {
          'proj/src/in.txt': 'original\n',
          'proj/src/deep/keep.txt': 'kept\n',
          'proj/src/add.c': 'int add(int a, int b) { return a + b; }\n',
          'proj/build/stale.txt': 'stale\n',
        },
        outputPaths: [
          'src/created.txt',
          'src/deep',
          'src/in.txt',
          'build/add.o',
          'out/add.o',
          'made',
        ],
      });
      const { result } = await rig.execute(a);
      assert.equal(result.exitCode, 0, await text(rig.cas, result.stderrDigest));
      const files = new Map(result.outputFiles.map((f) => [f.path, f.digest]));
      assert.equal(await text(rig.cas, files.get('src/created.txt')), 'created\n');
      assert.equal(await text(rig.cas, files.get('src/in.txt')), 'replaced\n');
      for (const o of ['build/add.o', 'out/add.o']) {
        assert.match(await text(rig.cas, files.get(o)), /^\x7fELF/, o);
      }
      const trees = new Map(
        await Promise.all(
          result.outputDirectories.map(
            async (d) =>
              [
                d.path,
                fromBinary(TreeSchema, await rig.cas.readBlob(fromPb(d.treeDigest))),
              ] as const,
          ),
        ),
      );
      assert.deepEqual(
        trees.get('src/deep')?.root?.files.map((f) => f.name),
        ['keep.txt'],
      );
      assert.equal(
        await text(rig.cas, trees.get('src/deep')?.children[0]?.files[0]?.digest),
        'f\n',
      );
      assert.deepEqual(
        trees.get('made')?.root?.files.map((f) => f.name),
        ['add.o'],
      );
      // The input's blob, hard-linked into the input root, is untouched.
      const { digestOf } = await import('../../src/reapi/index.js');
      const original = await rig.cas.readBlob(digestOf(Buffer.from('original\n')));
      assert.equal(Buffer.from(original).toString(), 'original\n');
    });

    it('compiles a project at the top of its input root, whose lib/ and bin/ win over the host symlinks', async () => {
      await using rig = await makeRig();
      const a = await uploadAction(rig.cas, {
        argv: [
          'sh',
          '-c',
          'gcc -c lib/add.c -o lib/add.o && gcc -Ilib app/main.c lib/add.c -o app/app && ./app/app && greet',
        ],
        inputs: {
          'lib/add.h': 'int add(int a, int b);\n',
          'lib/add.c': '#include "add.h"\nint add(int a, int b) { return a + b; }\n',
          'app/main.c':
            '#include <stdio.h>\n#include "add.h"\nint main(void) { printf("2 + 3 = %d\\n", add(2, 3)); return 0; }\n',
          // On PATH as /bin/greet; its #!/bin/sh is still the host's.
          'bin/greet': 'x:#!/bin/sh\necho hello from the input root\n',
        },
        outputPaths: ['app/app', 'lib/add.o'],
      });
      const { result } = await rig.execute(a);
      assert.equal(result.exitCode, 0, await text(rig.cas, result.stderrDigest));
      assert.equal(
        await text(rig.cas, result.stdoutDigest),
        '2 + 3 = 5\nhello from the input root\n',
      );
      assert.deepEqual(
        result.outputFiles.map((f) => [f.path, f.isExecutable]),
        [
          ['app/app', true],
          ['lib/add.o', false],
        ],
      );
      for (const f of result.outputFiles) {
        const bytes = await rig.cas.readBlob(fromPb(f.digest));
        assert.equal(Buffer.from(bytes.subarray(1, 4)).toString(), 'ELF', f.path);
      }
    });

    it('captures output directories as Trees, executables and symlinks', async () => {
      await using rig = await makeRig();
      const a = await uploadAction(rig.cas, {
        argv: [
          'sh',
          '-c',
          'mkdir -p d/sub && echo x > d/sub/f && printf "#!/bin/sh\\n" > d/run && chmod +x d/run && ln -s d/sub/f link',
        ],
        outputPaths: ['d', 'link'],
      });
      const { result } = await rig.execute(a);
      assert.equal(result.exitCode, 0, await text(rig.cas, result.stderrDigest));
      const link = result.outputSymlinks[0];
      assert.ok(link);
      assert.equal(link.path, 'link');
      assert.equal(link.target, 'd/sub/f');
      const dir = result.outputDirectories[0];
      assert.equal(dir?.path, 'd');
      const tree = fromBinary(TreeSchema, await rig.cas.readBlob(fromPb(dir.treeDigest)));
      const run = tree.root?.files[0];
      assert.ok(run);
      assert.equal(run.name, 'run');
      assert.equal(run.isExecutable, true);
      assert.equal(tree.root?.directories[0]?.name, 'sub');
      assert.equal(tree.children.length, 1);
      assert.equal(await text(rig.cas, tree.children[0]?.files[0]?.digest), 'x\n');
    });

    it('supports the legacy output_files / output_directories lists', async () => {
      await using rig = await makeRig();
      const a = await uploadAction(rig.cas, {
        argv: ['sh', '-c', 'echo f > out/file; mkdir -p out/dir; echo g > out/dir/g'],
        outputFiles: ['out/file'],
        outputDirectories: ['out/dir'],
      });
      const { result } = await rig.execute(a);
      assert.equal(result.exitCode, 0, await text(rig.cas, result.stderrDigest));
      assert.deepEqual(
        result.outputFiles.map((f) => f.path),
        ['out/file'],
      );
      assert.deepEqual(
        result.outputDirectories.map((d) => d.path),
        ['out/dir'],
      );
    });

    it('kills a command that runs past its timeout', async () => {
      await using rig = await makeRig();
      const a = await uploadAction(rig.cas, {
        argv: ['sh', '-c', 'echo started; sleep 30'],
        timeoutSeconds: 1,
      });
      const outcome = await rig.execute(a);
      assert.equal(outcome.errorCode, 'exec/timeout');
      assert.equal(await rig.ac.getActionResult(a), undefined);
    });

    it('never lets a command change the host', async () => {
      await using rig = await makeRig();
      const marker = `specbuild-exec-${process.pid}-${Date.now()}`;
      const a = await uploadAction(rig.cas, {
        argv: ['sh', '-c', `touch /usr/${marker}; touch /etc/${marker}; echo done`],
      });
      const { result } = await rig.execute(a);
      assert.equal(await text(rig.cas, result.stdoutDigest), 'done\n');
      assert.ok(!existsSync(`/usr/${marker}`));
      assert.ok(!existsSync(`/etc/${marker}`));
    });

    it('runs two identical concurrent actions once', async () => {
      await using rig = await makeRig();
      const a = await uploadAction(rig.cas, {
        argv: ['sh', '-c', 'sleep 0.3; date +%N > t'],
        outputPaths: ['t'],
      });
      const [x, y] = await Promise.all([rig.execute(a), rig.execute(a)]);
      assert.equal(rig.runs(), 1);
      // Shared while in flight, not answered from the cache afterwards.
      assert.deepEqual([x.cached, y.cached], [false, false]);
      assert.equal(x.result.outputFiles[0]?.digest?.hash, y.result.outputFiles[0]?.digest?.hash);
    });

    it('runs do_not_cache actions every time, never from or into the cache', async () => {
      await using rig = await makeRig();
      const a = await uploadAction(rig.cas, { argv: ['sh', '-c', 'echo hi'], doNotCache: true });
      await Promise.all([rig.execute(a), rig.execute(a)]);
      await rig.execute(a);
      assert.equal(rig.runs(), 3);
      assert.equal(await rig.ac.getActionResult(a), undefined);
    });

    it('rejects actions whose inputs are missing, naming them', async () => {
      await using rig = await makeRig();
      const a = await uploadAction(rig.cas, {
        argv: ['cat', 'in'],
        inputs: { in: 'data that will vanish' },
      });
      const { digestOf } = await import('../../src/reapi/index.js');
      const gone = digestOf(Buffer.from('data that will vanish'));
      await rig.evict?.(gone);
      await assert.rejects(rig.execute(a), (e: { code?: string; missing?: string[] }) => {
        assert.ok(
          ['exec/missing-inputs', 'remote/failed-precondition'].includes(e.code ?? ''),
          e.code,
        );
        assert.deepEqual(e.missing, [`blobs/${gone.hash}/${String(gone.size)}`]);
        return true;
      });
    });

    it('rejects platform properties it does not offer', async () => {
      await using rig = await makeRig();
      const a = await uploadAction(rig.cas, { argv: ['true'], platform: { OSFamily: 'windows' } });
      await assert.rejects(rig.execute(a), (e: { code?: string }) =>
        ['exec/platform', 'remote/failed-precondition'].includes(e.code ?? ''),
      );
      const b = await uploadAction(rig.cas, {
        argv: ['true'],
        platform: { 'no-such-property': 'x' },
      });
      await assert.rejects(rig.execute(b), (e: { code?: string }) =>
        ['exec/platform', 'remote/failed-precondition'].includes(e.code ?? ''),
      );
      const c = await uploadAction(rig.cas, {
        argv: ['true'],
        platform: { OSFamily: 'linux', ISA: 'x86-64' },
      });
      assert.equal((await rig.execute(c)).result.exitCode, 0);
    });
  });
}
