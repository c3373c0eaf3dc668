// Proves that a real REAPI client, Debian's Bazel (bazel-bootstrap 4.2.3), can
// use `specbuild server` as its remote cache, fully offline: a cold build
// uploads its results, and after `bazel clean` every action is a cache hit.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { assertStopsCleanly, startCliServer, type CliServer } from '../helpers/cli-server.js';
import { repoRoot } from '../helpers/paths.js';
import { describeRun, runProcess, type ProcessResult } from '../helpers/process.js';
import { onPath } from '../helpers/prereq.js';
import { tempDir } from '../helpers/tmp.js';

const bazelDir = join(repoRoot, 'test', 'interop', 'bazel');
const runBazelScript = join(bazelDir, 'run-bazel.sh');
const workspaceSource = join(bazelDir, 'workspace');
const installHint = 'run .ci/run, or: apt-get install bazel-bootstrap';

/** What //:hello prints (workspace/lib.c). */
const HELLO_LINE = 'hello from bazel via specbuild';
/** The spawns of //:hello: compile lib.c, compile main.c, link. */
const MIN_SPAWNS = 3;
const EMPTY_BLOB = createHash('sha256').digest('hex');

const BAZEL_TIMEOUT_MS = 150_000;

type Mode = 'cache' | 'exec' | 'clean' | 'expunge';

/** Runs test/interop/bazel/run-bazel.sh (always `bazel --batch`: no server is left behind). */
function runBazel(
  workspace: string,
  target: string,
  mode: Mode,
  env: NodeJS.ProcessEnv,
): Promise<ProcessResult> {
  return runProcess('bash', [runBazelScript, workspace, target, mode], {
    timeoutMs: BAZEL_TIMEOUT_MS,
    env: { ...process.env, ...env },
  });
}

/**
 * Parses Bazel's spawn summary, e.g. `INFO: 7 processes: 3 remote cache hit, 4 internal.`,
 * into counts by runner ("remote cache hit", "internal", "linux-sandbox", ...).
 */
function processCounts(output: string): {
  line: string;
  total: number;
  byRunner: Map<string, number>;
} {
  const lines = [...output.matchAll(/^INFO: (\d+) process(?:es)?(?:: (.*?))?\.?$/gm)];
  const last = lines.at(-1);
  assert.ok(last !== undefined, `Bazel printed no "INFO: N processes: ..." line:\n${output}`);
  const byRunner = new Map<string, number>();
  for (const part of (last[2] ?? '').split(', ').filter((p) => p !== '')) {
    const m = /^(\d+) (.+)$/.exec(part);
    assert.ok(m?.[1] !== undefined && m[2] !== undefined, `unparsable summary part "${part}"`);
    byRunner.set(m[2], (byRunner.get(m[2]) ?? 0) + Number(m[1]));
  }
  const total = Number(last[1]);
  const sum = [...byRunner.values()].reduce((a, b) => a + b, 0);
  assert.equal(sum, total, `summary counts do not add up: ${last[0]}`);
  return { line: last[0], total, byRunner };
}

interface SpawnExec {
  mnemonic?: string;
  runner?: string;
  remoteCacheHit?: boolean;
  exitCode?: number;
}

/** Bazel's --execution_log_json_file is a sequence of JSON objects (not an array). */
function parseExecutionLog(text: string): SpawnExec[] {
  const out: SpawnExec[] = [];
  let depth = 0;
  let inString = false;
  let escaped = false;
  let start = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
    } else if (c === '{') {
      if (depth++ === 0) start = i;
    } else if (c === '}') {
      if (--depth === 0) out.push(JSON.parse(text.slice(start, i + 1)) as SpawnExec);
    }
  }
  assert.equal(depth, 0, 'truncated execution log');
  return out;
}

/** Lines where Bazel complains about the remote cache (it only warns on upload/download errors). */
function remoteWarnings(output: string): string[] {
  return output.split('\n').filter((l) => /^(WARNING|ERROR):.*remote/i.test(l));
}

/** Hex digests of every blob in the server's CAS directory. */
async function casDigests(cacheDir: string): Promise<Set<string>> {
  const names = await readdir(join(cacheDir, 'cas', 'objects'), { recursive: true });
  return new Set(names.map((n) => basename(n)).filter((n) => /^[0-9a-f]{64}$/.test(n)));
}

/** Names of the server's action-cache entries (files named after an action digest). */
async function acEntries(cacheDir: string): Promise<string[]> {
  const names = await readdir(join(cacheDir, 'ac'), { recursive: true });
  return names.map((n) => basename(n)).filter((n) => /^[0-9a-f]{64}/.test(n));
}

function summarize(t: TestContext, what: string, r: ProcessResult): void {
  const s = processCounts(r.output);
  t.diagnostic(`${what}: ${s.line}`);
}

interface BazelRun {
  dir: string;
  workspace: string;
  cacheDir: string;
  /** Environment for runBazel: a private output root. */
  env: NodeJS.ProcessEnv;
  server: CliServer;
  /** The server as Bazel names it. */
  target: string;
}

/**
 * Copies the workspace into a fresh directory, starts `specbuild server`, runs
 * `body`, then stops the server and expunges Bazel's output base (with Bazel
 * itself: it may hold read-only trees).
 */
async function withBazel(
  t: TestContext,
  prefix: string,
  body: (run: BazelRun) => Promise<void>,
): Promise<void> {
  assert.ok(onPath('bazel'), `bazel is not installed (not on PATH); ${installHint}`);
  assert.ok(existsSync(runBazelScript), `missing ${runBazelScript}`);
  await using tmp = await tempDir(prefix);
  const workspace = join(tmp.path, 'workspace');
  await cp(workspaceSource, workspace, { recursive: true });
  const cacheDir = join(tmp.path, 'cache');
  const env = { BAZEL_OUTPUT_USER_ROOT: join(tmp.path, 'bazel-root') };
  const server = await startCliServer(cacheDir);
  try {
    await body({
      dir: tmp.path,
      workspace,
      cacheDir,
      env,
      server,
      target: `grpc://${server.address}`,
    });
  } finally {
    await server.stop(); // no-op once stopped
    const expunge = await runBazel(workspace, '-', 'expunge', env);
    if (expunge.code !== 0) t.diagnostic(describeRun('`bazel clean --expunge`', expunge));
  }
}

test(
  'Debian Bazel 4.2.3 uses specbuild server as its remote cache, offline',
  { timeout: 300_000 },
  (t) =>
    withBazel(t, 'specbuild-bazel-', async ({ dir, workspace, cacheDir, env, server, target }) => {
      // 1. Cold build against an empty cache: spawns run locally, results are uploaded.
      const coldLog = join(dir, 'exec-cold.json');
      const cold = await runBazel(workspace, target, 'cache', { ...env, BAZEL_EXEC_LOG: coldLog });
      assert.equal(cold.code, 0, describeRun('cold `bazel build`', cold));
      summarize(t, 'cold build', cold);
      assert.deepEqual(remoteWarnings(cold.output), [], `remote cache errors:\n${cold.output}`);
      const coldCounts = processCounts(cold.output);
      assert.equal(coldCounts.byRunner.get('remote cache hit') ?? 0, 0, coldCounts.line);
      const coldSpawns = parseExecutionLog(await readFile(coldLog, 'utf8'));
      assert.ok(
        coldSpawns.length >= MIN_SPAWNS,
        `expected at least ${MIN_SPAWNS} spawns, execution log has ${coldSpawns.length}`,
      );

      const binary = join(workspace, 'bazel-bin', 'hello');
      const binaryDigest = createHash('sha256')
        .update(await readFile(binary))
        .digest('hex');
      const digests = await casDigests(cacheDir);
      digests.delete(EMPTY_BLOB);
      assert.ok(
        digests.size >= MIN_SPAWNS,
        `the server's CAS holds only ${digests.size} non-empty blobs after the cold build`,
      );
      assert.ok(digests.has(binaryDigest), `bazel-bin/hello (${binaryDigest}) was not uploaded`);
      const entries = await acEntries(cacheDir);
      assert.ok(
        entries.length >= MIN_SPAWNS,
        `the server's action cache holds ${entries.length} entries: ${entries.join(', ')}`,
      );

      // 2. Forget every local output, then build again: every spawn is a remote cache hit.
      const clean = await runBazel(workspace, '-', 'clean', env);
      assert.equal(clean.code, 0, describeRun('`bazel clean`', clean));
      assert.ok(!existsSync(binary), 'bazel clean left bazel-bin/hello behind');

      const warmLog = join(dir, 'exec-warm.json');
      const warm = await runBazel(workspace, target, 'cache', { ...env, BAZEL_EXEC_LOG: warmLog });
      assert.equal(warm.code, 0, describeRun('`bazel build` after `bazel clean`', warm));
      summarize(t, 'build after clean', warm);
      assert.deepEqual(remoteWarnings(warm.output), [], `remote cache errors:\n${warm.output}`);
      const warmCounts = processCounts(warm.output);
      const notHits = [...warmCounts.byRunner.entries()].filter(
        ([runner]) => runner !== 'remote cache hit' && runner !== 'internal',
      );
      assert.deepEqual(notHits, [], `spawns that were not remote cache hits: ${warmCounts.line}`);
      const hits = warmCounts.byRunner.get('remote cache hit') ?? 0;
      assert.ok(
        hits >= MIN_SPAWNS,
        `expected at least ${MIN_SPAWNS} cache hits: ${warmCounts.line}`,
      );
      const warmSpawns = parseExecutionLog(await readFile(warmLog, 'utf8'));
      assert.deepEqual(
        warmSpawns
          .filter((s) => s.remoteCacheHit !== true)
          .map((s) => `${s.mnemonic} (${s.runner})`),
        [],
        'spawns in the execution log that were not remote cache hits',
      );
      assert.equal(warmSpawns.length, hits, 'execution log and summary disagree');
      t.diagnostic(
        `execution log after clean: ${warmSpawns.map((s) => `${s.mnemonic}: ${s.runner}`).join(', ')}`,
      );

      // 3. The binary assembled from cached outputs runs.
      const run = await runProcess(binary, [], { timeoutMs: 10_000 });
      assert.equal(run.code, 0, describeRun('bazel-bin/hello', run));
      assert.equal(run.stdout, `${HELLO_LINE}\n`);

      await assertStopsCleanly(server);
    }),
);

test(
  'Debian Bazel 4.2.3 executes its actions on specbuild server, then gets them all from the cache',
  { timeout: 300_000 },
  (t) =>
    withBazel(t, 'specbuild-bazel-exec-', async ({ workspace, env, target }) => {
      // 1. Against an empty cache every compile and link runs on the server.
      const first = await runBazel(workspace, target, 'exec', env);
      assert.equal(first.code, 0, describeRun('`bazel build` with --remote_executor', first));
      summarize(t, 'remote execution', first);
      const firstCounts = processCounts(first.output);
      const remote = firstCounts.byRunner.get('remote') ?? 0;
      assert.ok(
        remote >= MIN_SPAWNS,
        `expected at least ${MIN_SPAWNS} remote executions: ${firstCounts.line}`,
      );
      const local = [...firstCounts.byRunner.keys()].filter(
        (r) => r !== 'remote' && r !== 'internal',
      );
      assert.deepEqual(local, [], `spawns that did not run remotely: ${firstCounts.line}`);

      // 2. After `bazel clean`, every action is an action-cache hit.
      const clean = await runBazel(workspace, '-', 'clean', env);
      assert.equal(clean.code, 0, describeRun('`bazel clean`', clean));
      const second = await runBazel(workspace, target, 'exec', env);
      assert.equal(second.code, 0, describeRun('second `bazel build`', second));
      summarize(t, 'after clean', second);
      const counts = processCounts(second.output);
      const notHits = [...counts.byRunner.keys()].filter(
        (r) => r !== 'remote cache hit' && r !== 'internal',
      );
      assert.deepEqual(notHits, [], `spawns that were not cache hits: ${counts.line}`);
      assert.ok((counts.byRunner.get('remote cache hit') ?? 0) >= MIN_SPAWNS, counts.line);

      // 3. The binary built remotely runs here.
      const run = await runProcess(join(workspace, 'bazel-bin', 'hello'), [], {
        timeoutMs: 10_000,
      });
      assert.equal(run.code, 0, describeRun('bazel-bin/hello', run));
      assert.equal(run.stdout, `${HELLO_LINE}\n`);
    }),
);
