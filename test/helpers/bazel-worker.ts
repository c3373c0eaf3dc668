// Bazel's own remote worker (src/tools/remote in Bazel's sources), an REAPI
// 2.0 server not written here that executes actions: compiled once per
// machine from Debian's bazel-bootstrap-source against bazel-bootstrap's
// server jar (kept under dist/, never in /tmp), started per test.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, renameSync, statSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { describeRun, runProcess, startService, type Exit } from './process.js';
import { repoRoot } from './paths.js';

const SERVER_JAR = '/usr/share/bazel/A-server.jar';
const WORKER_SOURCES = '/usr/src/bazel-bootstrap/src/tools/remote/src/main/java';
const WORKER_PACKAGE = 'com/google/devtools/build/remote/worker';
const WORKER_MAIN = 'com.google.devtools.build.remote.worker.RemoteWorker';
export const bazelInstallHint =
  'run .ci/run, or: apt-get install bazel-bootstrap bazel-bootstrap-source default-jdk-headless';

function javaFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.java'))
    .sort()
    .map((f) => join(dir, f));
}

let compiled: Promise<string> | undefined;

/** The worker's compiled classes (compiled on first use, then reused). */
export function bazelWorkerClasses(): Promise<string> {
  compiled ??= (async () => {
    for (const path of [SERVER_JAR, join(WORKER_SOURCES, WORKER_PACKAGE)])
      assert.ok(existsSync(path), `${path} is missing; ${bazelInstallHint}`);
    const sources = javaFiles(join(WORKER_SOURCES, WORKER_PACKAGE));
    const id = createHash('sha256');
    for (const f of [SERVER_JAR, ...sources]) {
      const st = statSync(f);
      id.update(`${f}\0${st.size}\0${st.mtimeMs}\n`);
    }
    const classes = join(
      repoRoot,
      'dist',
      '.test-cache',
      `bazel-worker-${id.digest('hex').slice(0, 16)}`,
    );
    if (existsSync(classes)) return classes;
    const tmp = `${classes}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    const javac = await runProcess(
      'javac',
      ['-J-XX:-UsePerfData', '-nowarn', '-d', tmp, '-cp', SERVER_JAR, ...sources],
      {
        timeoutMs: 180_000,
      },
    );
    assert.equal(javac.code, 0, describeRun(`javac (${bazelInstallHint})`, javac));
    // Another test process may have finished first: either copy will do.
    try {
      renameSync(tmp, classes);
    } catch {
      await rm(tmp, { recursive: true, force: true });
    }
    return classes;
  })();
  return compiled;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => {
        if (addr !== null && typeof addr === 'object') resolve(addr.port);
        else reject(new Error('no port'));
      });
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection(port, '127.0.0.1');
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => {
      resolve(false);
    });
  });
}

export interface BazelWorker {
  /** `grpc://127.0.0.1:PORT` */
  target: string;
  /** Where the worker keeps its blobs. */
  casPath: string;
  output(): string;
  stop(): Promise<Exit>;
}

/** Starts a worker whose work and CAS directories live under `dir`. */
export async function startBazelWorker(dir: string): Promise<BazelWorker> {
  const classes = await bazelWorkerClasses();
  const port = await freePort();
  const work = join(dir, 'work');
  const casPath = join(dir, 'cas');
  await mkdir(work, { recursive: true });
  await mkdir(casPath, { recursive: true });
  const worker = await startService(
    'java',
    [
      // Temporary files under the test's directory, no perf data in /tmp.
      `-Djava.io.tmpdir=${work}`,
      '-XX:-UsePerfData',
      '-cp',
      `${SERVER_JAR}:${classes}`,
      WORKER_MAIN,
      `--listen_port=${port}`,
      `--work_path=${work}`,
      `--cas_path=${casPath}`,
    ],
    { ready: async () => ((await accepts(port)) ? true : undefined), startTimeoutMs: 60_000 },
  );
  return {
    target: `grpc://127.0.0.1:${port}`,
    casPath,
    output: worker.output,
    stop: worker.stop,
  };
}
