// What every Executor does with real commands (sh, cat, gcc), run against the
// local executor, the remote executor talking to `specbuild server`, and the
// remote executor talking to Bazel's remote worker. `specbuildExecutorContract`
// adds what specbuild's own executor promises beyond REAPI: input roots laid
// over the host root, a host it never changes, one run for identical actions
// in flight, platform checks.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fromBinary } from '@bufbuild/protobuf';
import {
  MissingBlobsError,
  type ActionCache,
  type Cas,
  type ExecutionEvent,
  type Executor,
} from '../../src/cas/index.js';
import {
  ActionSchema,
  TreeSchema,
  digestOf,
  fromPb,
  type ActionResult,
  type Digest,
} from '../../src/reapi/index.js';
import { uploadAction, type ActionSpec } from '../helpers/actions.js';

export interface ExecRig extends AsyncDisposable {
  /** The store the executor reads inputs from and writes outputs to. */
  cas: Cas;
  ac: ActionCache;
  executor: Executor;
  /** How many actions the executor really ran, when it can tell. */
  runs?: () => number;
  /** Removes a blob from the store behind the executor. */
  evict: (d: Digest) => Promise<void>;
  /** Added to every action's salt (rigs that share one server set it). */
  salt?: string;
}

/** A blob's text; an absent digest is empty output (servers may omit it, as Bazel's does). */
async function text(cas: Cas, d: ActionResult['stdoutDigest']): Promise<string> {
  if (d === undefined) return '';
  return Buffer.from(await cas.readBlob(fromPb(d))).toString('utf8');
}

/**
 * Uploads an action with a salt of this rig's, so that rigs sharing one
 * server never answer each other's actions. Outputs are declared in both the
 * REAPI 2.1 and the 2.0 lists: each server reads the one it knows.
 */
async function action(
  rig: ExecRig,
  spec: ActionSpec & { files?: string[]; dirs?: string[] },
): Promise<Digest> {
  const salt = rig.salt ?? '';
  const files = spec.files ?? [];
  const dirs = spec.dirs ?? [];
  return uploadAction(rig.cas, {
    ...spec,
    salt: `${salt}${spec.salt ?? ''}`,
    outputPaths: spec.outputPaths ?? [...files, ...dirs],
    outputFiles: spec.outputFiles ?? files,
    outputDirectories: spec.outputDirectories ?? dirs,
  });
}

/** A rig with a salt of its own (see `action`). */
export function salted(rig: ExecRig): ExecRig {
  return { ...rig, salt: randomBytes(8).toString('hex') };
}

export function executorContract(name: string, makeRig: () => Promise<ExecRig>): void {
  describe(`executor contract: ${name}`, () => {
    it('runs a command and returns its outputs, stdout, stderr, exit code and stages', async () => {
      await using rig = await makeRig();
      const a = await action(rig, {
        argv: ['sh', '-c', 'cat a.txt b.txt > out/c.txt; echo to-out; echo to-err >&2; exit 0'],
        inputs: { 'a.txt': 'A\n', 'b.txt': 'B\n', 'out/.keep': '' },
        files: ['out/c.txt'],
      });
      const events: ExecutionEvent[] = [];
      const { result, cached } = await rig.executor.execute(a, { events: (e) => events.push(e) });
      assert.equal(cached, false);
      assert.equal(result.exitCode, 0, await text(rig.cas, result.stderrDigest));
      assert.equal(await text(rig.cas, result.stdoutDigest), 'to-out\n');
      assert.equal(await text(rig.cas, result.stderrDigest), 'to-err\n');
      const f = result.outputFiles[0];
      assert.equal(f?.path, 'out/c.txt');
      assert.equal(await text(rig.cas, f.digest), 'A\nB\n');
      assert.ok(events.every((e) => e.action.hash === a.hash));
      assert.equal(events.at(-1)?.stage, 'completed');
    });

    it('caches a successful result and answers the second time from the cache', async () => {
      await using rig = await makeRig();
      const a = await action(rig, { argv: ['sh', '-c', 'echo once > o'], files: ['o'] });
      const first = await rig.executor.execute(a);
      assert.equal(first.cached, false);
      const second = await rig.executor.execute(a);
      assert.equal(second.cached, true);
      assert.equal(
        second.result.outputFiles[0]?.digest?.hash,
        first.result.outputFiles[0]?.digest?.hash,
      );
      if (rig.runs !== undefined) assert.equal(rig.runs(), 1);
      assert.ok(await rig.ac.getActionResult(a));
      const forced = await rig.executor.execute(a, { skipCacheLookup: true });
      assert.equal(forced.cached, false);
      if (rig.runs !== undefined) assert.equal(rig.runs(), 2);
    });

    it('reports a failing exit code and does not cache it', async () => {
      await using rig = await makeRig();
      const a = await action(rig, { argv: ['sh', '-c', 'echo broken >&2; exit 3'] });
      const { result, cached } = await rig.executor.execute(a);
      assert.equal(result.exitCode, 3);
      assert.equal(cached, false);
      assert.equal(await text(rig.cas, result.stderrDigest), 'broken\n');
      assert.equal(await rig.ac.getActionResult(a), undefined);
      assert.equal((await rig.executor.execute(a)).cached, false, 'runs again');
    });

    it('compiles and links with gcc in the working directory it is given', async () => {
      await using rig = await makeRig();
      const a = await action(rig, {
        argv: ['gcc', '-Iinclude', 'main.c', 'dep.c', '-o', 'bin/app'],
        env: { PATH: '/usr/bin:/bin' },
        inputs: {
          'proj/app/include/dep.h': 'int dep(void);\n',
          'proj/app/dep.c': '#include "dep.h"\nint dep(void) { return 42; }\n',
          'proj/app/main.c':
            '#include <stdio.h>\n#include "dep.h"\nint main(void) { printf("%d\\n", dep()); return 0; }\n',
          'proj/app/bin/.keep': '',
        },
        workingDirectory: 'proj/app',
        files: ['bin/app'],
      });
      const { result } = await rig.executor.execute(a);
      assert.equal(result.exitCode, 0, await text(rig.cas, result.stderrDigest));
      const bin = result.outputFiles[0];
      assert.equal(bin?.path, 'bin/app');
      assert.equal(bin.isExecutable, true);
      const bytes = await rig.cas.readBlob(fromPb(bin.digest));
      assert.equal(Buffer.from(bytes.subarray(1, 4)).toString(), 'ELF');
    });

    it('captures output directories as Trees with executables and subdirectories', async () => {
      await using rig = await makeRig();
      const a = await action(rig, {
        argv: [
          'sh',
          '-c',
          'mkdir -p d/sub && echo x > d/sub/f && printf "#!/bin/sh\\n" > d/run && chmod +x d/run',
        ],
        dirs: ['d'],
      });
      const { result } = await rig.executor.execute(a);
      assert.equal(result.exitCode, 0, await text(rig.cas, result.stderrDigest));
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

    it('reports a command that runs past its timeout, and does not cache it', async () => {
      await using rig = await makeRig();
      const a = await action(rig, {
        argv: ['sh', '-c', 'echo started; sleep 3'],
        timeoutSeconds: 1,
      });
      const outcome = await rig.executor.execute(a);
      assert.equal(outcome.error?.code, 'exec/timeout');
      assert.equal(await rig.ac.getActionResult(a), undefined);
    });

    it('runs do_not_cache actions every time, never from or into the cache', async () => {
      await using rig = await makeRig();
      const a = await action(rig, { argv: ['sh', '-c', 'echo hi'], doNotCache: true });
      const outcomes = await Promise.all([rig.executor.execute(a), rig.executor.execute(a)]);
      outcomes.push(await rig.executor.execute(a));
      assert.deepEqual(
        outcomes.map((o) => o.cached),
        [false, false, false],
      );
      if (rig.runs !== undefined) assert.equal(rig.runs(), 3);
      assert.equal(await rig.ac.getActionResult(a), undefined);
    });

    it('rejects an action whose inputs are missing, naming them by digest', async () => {
      await using rig = await makeRig();
      const content = `data that will vanish ${randomBytes(4).toString('hex')}`;
      const a = await action(rig, { argv: ['cat', 'in'], inputs: { in: content } });
      const gone = digestOf(Buffer.from(content));
      await rig.evict(gone);
      await assert.rejects(rig.executor.execute(a), (e: unknown) => {
        assert.ok(e instanceof MissingBlobsError, String(e));
        assert.equal(e.code, 'exec/missing-inputs');
        assert.deepEqual(
          e.digests.map((d) => `${d.hash}/${d.size}`),
          [`${gone.hash}/${gone.size}`],
        );
        return true;
      });
      const never = digestOf(Buffer.from(`no such action ${randomBytes(4).toString('hex')}`));
      await assert.rejects(rig.executor.execute(never), (e: unknown) => {
        assert.ok(e instanceof MissingBlobsError, String(e));
        assert.deepEqual(
          e.digests.map((d) => d.hash),
          [never.hash],
        );
        return true;
      });
    });

    it('stops waiting when the caller cancels', async () => {
      await using rig = await makeRig();
      const a = await action(rig, { argv: ['sh', '-c', 'sleep 20'] });
      const abort = new AbortController();
      const started = Date.now();
      setTimeout(() => {
        abort.abort();
      }, 300);
      await assert.rejects(rig.executor.execute(a, { signal: abort.signal }));
      assert.ok(Date.now() - started < 10_000);
    });
  });
}

export function specbuildExecutorContract(name: string, makeRig: () => Promise<ExecRig>): void {
  describe(`specbuild executor: ${name}`, () => {
    it('records the worker and timings in the execution metadata', async () => {
      await using rig = await makeRig();
      const a = await action(rig, { argv: ['true'] });
      const { result } = await rig.executor.execute(a);
      assert.ok(result.executionMetadata?.worker);
      assert.ok(result.executionMetadata.executionStartTimestamp);
      assert.ok(result.executionMetadata.executionCompletedTimestamp);
    });

    it('lays the input root over the host root: headers above /usr/include, the host untouched', async () => {
      await using rig = await makeRig();
      const a = await action(rig, {
        argv: ['gcc', '-c', 'main.c', '-o', 'main.o'],
        inputs: {
          'usr/include/specbuild-dep.h': '#define DEP 42\n',
          'buildstream/proj/app/main.c':
            '#include <specbuild-dep.h>\nint dep(void) { return DEP; }\n',
        },
        workingDirectory: 'buildstream/proj/app',
        outputPaths: ['main.o'],
      });
      const { result } = await rig.executor.execute(a);
      assert.equal(result.exitCode, 0, await text(rig.cas, result.stderrDigest));
      assert.equal(result.outputFiles[0]?.path, 'main.o');
      assert.ok(!existsSync('/usr/include/specbuild-dep.h'));
    });

    it('lets the command write wherever a build writes, though it is not host root', async () => {
      await using rig = await makeRig();
      const a = await action(rig, {
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
      const { result } = await rig.executor.execute(a);
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
      const a = await action(rig, {
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
      const { result } = await rig.executor.execute(a);
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

    it('captures symlinks as output symlinks', async () => {
      await using rig = await makeRig();
      const a = await action(rig, {
        argv: ['sh', '-c', 'mkdir -p d && echo x > d/f && ln -s d/f link'],
        outputPaths: ['d', 'link'],
      });
      const { result } = await rig.executor.execute(a);
      assert.equal(result.exitCode, 0, await text(rig.cas, result.stderrDigest));
      assert.deepEqual(
        result.outputSymlinks.map((l) => [l.path, l.target]),
        [['link', 'd/f']],
      );
      assert.equal(result.outputDirectories[0]?.path, 'd');
    });

    it('supports the legacy output_files / output_directories lists alone', async () => {
      await using rig = await makeRig();
      const a = await uploadAction(rig.cas, {
        argv: ['sh', '-c', 'echo f > out/file; mkdir -p out/dir; echo g > out/dir/g'],
        outputFiles: ['out/file'],
        outputDirectories: ['out/dir'],
      });
      const { result } = await rig.executor.execute(a);
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

    it('kills a command as soon as it runs past its timeout', async () => {
      await using rig = await makeRig();
      const a = await action(rig, {
        argv: ['sh', '-c', 'echo started; sleep 30'],
        timeoutSeconds: 1,
      });
      const started = Date.now();
      const outcome = await rig.executor.execute(a);
      assert.equal(outcome.error?.code, 'exec/timeout');
      assert.ok(Date.now() - started < 25_000, 'stopped long before the command would end');
      assert.equal(await rig.ac.getActionResult(a), undefined);
    });

    it('never lets a command change the host', async () => {
      await using rig = await makeRig();
      const marker = `specbuild-exec-${process.pid}-${Date.now()}`;
      const a = await action(rig, {
        argv: ['sh', '-c', `touch /usr/${marker}; touch /etc/${marker}; echo done`],
      });
      const { result } = await rig.executor.execute(a);
      assert.equal(await text(rig.cas, result.stdoutDigest), 'done\n');
      assert.ok(!existsSync(`/usr/${marker}`));
      assert.ok(!existsSync(`/etc/${marker}`));
    });

    it('runs two identical concurrent actions once, telling both callers each stage', async () => {
      await using rig = await makeRig();
      const a = await action(rig, {
        argv: ['sh', '-c', 'sleep 0.3; date +%N > t'],
        outputPaths: ['t'],
      });
      const seen: string[][] = [[], []];
      const [x, y] = await Promise.all(
        seen.map((stages) => rig.executor.execute(a, { events: (e) => stages.push(e.stage) })),
      );
      assert.equal(rig.runs?.(), 1);
      // Shared while in flight, not answered from the cache afterwards.
      assert.deepEqual([x?.cached, y?.cached], [false, false]);
      assert.equal(x?.result.outputFiles[0]?.digest?.hash, y?.result.outputFiles[0]?.digest?.hash);
      for (const stages of seen) {
        assert.ok(stages.includes('executing'), stages.join(','));
        assert.equal(stages.at(-1), 'completed');
      }
    });

    it('keeps a shared run going while one of its callers still waits', async () => {
      await using rig = await makeRig();
      const a = await action(rig, {
        argv: ['sh', '-c', 'sleep 0.5; echo kept > k'],
        outputPaths: ['k'],
      });
      const leaving = new AbortController();
      const first = rig.executor.execute(a, { signal: leaving.signal });
      const second = rig.executor.execute(a);
      setTimeout(() => {
        leaving.abort();
      }, 100);
      await assert.rejects(first);
      const kept = await second;
      assert.equal(kept.result.exitCode, 0);
      assert.equal(kept.result.outputFiles[0]?.path, 'k');
      assert.equal(rig.runs?.(), 1);
    });

    it('still finds the Action or Command missing once they left the store after a run', async () => {
      await using rig = await makeRig();
      const a = await action(rig, { argv: ['true'], salt: randomBytes(4).toString('hex') });
      assert.equal((await rig.executor.execute(a, { skipCacheLookup: true })).result.exitCode, 0);
      const command = fromPb(fromBinary(ActionSchema, await rig.cas.readBlob(a)).commandDigest);
      for (const gone of [command, a]) {
        await rig.evict(gone);
        // (Past the action cache, which remote clients ask first.)
        await assert.rejects(rig.executor.execute(a, { skipCacheLookup: true }), (e: unknown) => {
          assert.ok(e instanceof MissingBlobsError, String(e));
          assert.deepEqual(
            e.digests.map((d) => d.hash),
            [gone.hash],
          );
          return true;
        });
      }
    });

    it('rejects platform properties it does not offer', async () => {
      await using rig = await makeRig();
      const a = await action(rig, { argv: ['true'], platform: { OSFamily: 'windows' } });
      await assert.rejects(rig.executor.execute(a), (e: { code?: string }) =>
        ['exec/platform', 'remote/failed-precondition'].includes(e.code ?? ''),
      );
      const b = await action(rig, { argv: ['true'], platform: { 'no-such-property': 'x' } });
      await assert.rejects(rig.executor.execute(b), (e: { code?: string }) =>
        ['exec/platform', 'remote/failed-precondition'].includes(e.code ?? ''),
      );
      const c = await action(rig, {
        argv: ['true'],
        platform: { OSFamily: 'linux', ISA: 'x86-64' },
      });
      assert.equal((await rig.executor.execute(c)).result.exitCode, 0);
    });
  });
}
