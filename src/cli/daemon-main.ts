#!/usr/bin/env node
// The wrapper daemon behind the native specbuild-cc / specbuild-exec clients:
// started on first use, exits after an idle timeout. Its main thread only
// accepts connections and moves frames; a pool of worker threads
// (daemon-worker.ts) does the work, each with its own warm state.
// Usage: daemon-main.js --socket PATH [--idle-timeout-ms N]
// SPECBUILD_DAEMON_WORKERS: how many worker threads (default: one per 4
// cores, at most 8); 0 does the work on the main thread, as before the pool. A worker
// that dies is logged in CACHE_DIR/wrap/daemon-crashes.log.
import { appendFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  AnswerWriter,
  SharedOnce,
  answersDirOf,
  nativeBuildId,
  publishWorkers,
  startDaemon,
  startWorkerPool,
  type Daemon,
} from '../wrap/index.js';
import { hostSnapshot } from '../reapi/index.js';
import { defaultCacheDir } from './config.js';
import { SpecbuildError } from '../core/index.js';
import { daemonWorkerCount, loadDaemonWork, type DaemonWorkerData } from './daemon-work.js';
import { EXIT, runEntryPoint } from './exit-codes.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { socket: { type: 'string' }, 'idle-timeout-ms': { type: 'string' } },
  });
  if (values.socket === undefined)
    throw new SpecbuildError('cli/usage', 'daemon-main: --socket PATH is required');
  const idle = values['idle-timeout-ms'];
  const idleTimeoutMs = idle === undefined ? undefined : Number(idle);
  if (idleTimeoutMs !== undefined && !(Number.isInteger(idleTimeoutMs) && idleTimeoutMs >= 0))
    throw new SpecbuildError(
      'cli/usage',
      `daemon-main: --idle-timeout-ms "${idle ?? ''}" is not a whole number`,
    );
  // The compilers it runs make their outputs under its umask, which was that
  // of whichever command started it (say 0177, no x bit for anyone): made
  // under 022, an executable is seen as one (and recorded so), and each
  // command's own umask is applied to its outputs afterwards (cc.ts, modesAsAsked).
  process.umask(0o022);
  const workers = daemonWorkerCount(process.env.SPECBUILD_DAEMON_WORKERS);
  const wrapDir = join(defaultCacheDir(), 'wrap');
  // Hits the native client answers itself, from what this daemon writes down
  // (native-answers.ts); not without the native build, nor with SPECBUILD_NATIVE_HITS=0.
  const buildId = nativeBuildId();
  const off = ['0', 'false'].includes((process.env.SPECBUILD_NATIVE_HITS ?? '').toLowerCase());
  const answers =
    buildId === undefined || off ? undefined : { dir: answersDirOf(values.socket), buildId };
  await AnswerWriter.prune(answersDirOf(values.socket), answers === undefined);
  let daemon: Daemon;
  let finish: () => Promise<void>;
  if (workers === 0) {
    const work = await loadDaemonWork(wrapDir, undefined, answers);
    daemon = await startDaemon({ socketPath: values.socket, idleTimeoutMs, handler: work.handler });
    finish = work.close;
  } else {
    // The toolchain's binaries hashed here once, not by each worker at its first compile.
    const host = await hostSnapshot();
    const data: DaemonWorkerData = { wrapDir, warned: new SharedOnce().buffer, answers, host };
    const pool = startWorkerPool({
      // Run from its bundle (scripts/bundle-daemon.js, as the native client
      // does), the workers run the worker's bundle beside it.
      url: new URL(
        import.meta.url.endsWith('.bundle.js') ? './daemon-worker.bundle.js' : './daemon-worker.js',
        import.meta.url,
      ),
      size: workers,
      data,
      socketPath: values.socket,
      // The daemon has no terminal (its stdio is /dev/null): a worker that
      // dies is written down where its caches live, else nobody would know
      // why some commands fell back to local runs.
      onCrash: (index, err) => {
        const line = `${new Date().toISOString()} worker ${String(index)} died: ${
          err instanceof Error ? (err.stack ?? err.message) : String(err)
        }\n`;
        void mkdir(wrapDir, { recursive: true })
          .then(() => appendFile(join(wrapDir, 'daemon-crashes.log'), line))
          .catch(() => undefined);
      },
    });
    let unpublish: () => Promise<void>;
    try {
      daemon = await startDaemon({
        socketPath: values.socket,
        idleTimeoutMs,
        activity: pool.activity,
        frameHandler: pool.frameHandler,
      });
      unpublish = await publishWorkers(values.socket, workers);
    } catch (e) {
      await pool.close(0);
      throw e;
    }
    finish = async () => {
      await unpublish();
      await pool.close();
    };
  }
  const stop = (): void => {
    void daemon.close();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  await daemon.closed;
  await finish();
}

runEntryPoint(async () => {
  await main();
  return EXIT.ok;
}, process.env.SPECBUILD_DEBUG === '1');
