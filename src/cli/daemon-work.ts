// The wrapper daemon's work on one thread, shared by its worker threads
// (daemon-worker.ts) and its in-thread mode (SPECBUILD_DAEMON_WORKERS=0): a
// wrapper handler with its own stat cache and direct-mode memory, loaded from
// files of the thread's index and saved every 30 s and on close.
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { SpecbuildError } from '../core/index.js';
import { hostToolchainFiles, type HostSnapshot } from '../reapi/index.js';
import {
  AnswerWriter,
  DirectCache,
  SharedOnce,
  StatCache,
  wrapperHandler,
  type DaemonHandler,
} from '../wrap/index.js';
import { formatError } from './render/output.js';

/** What daemon-main gives each worker thread. */
export interface DaemonWorkerData {
  /** Where the caches live: CACHE_DIR/wrap. */
  wrapDir: string;
  /** The SharedOnce of servers warned about, shared by all workers. */
  warned: SharedArrayBuffer;
  /** Where answers for the native client go (answersDirOf the socket), and this build's identity. */
  answers?: { dir: string; buildId: string };
  /** The host platform, as the main thread computed it once for all workers (seedHostPlatform). */
  host?: HostSnapshot;
}

export interface DaemonWork {
  handler: DaemonHandler;
  /** Saves the caches and closes the warm connections. */
  close: () => Promise<void>;
}

const SAVE_EVERY_MS = 30_000;
/**
 * The default pool: one worker per this many cores. A worker spends ~10-15
 * ms of CPU on a miss whose compile takes ~100-150 ms, so one keeps up with
 * several concurrent compiles, and hits are answered by the native client
 * without any (native-answers.ts). Each worker costs its own start (~280 ms
 * of CPU) and its own warming up: on the 2-core CI machine a cold zlib
 * build cost the daemon 76-84 ticks of CPU with one worker against 101-108
 * with two (docs/performance.md), CPU the compiles did not get.
 */
const CORES_PER_DEFAULT_WORKER = 4;
/** The default pool, at most. */
const MAX_DEFAULT_WORKERS = 8;
/** More workers than this is a typo, not a machine. */
const MAX_WORKERS = 256;

/** SPECBUILD_DAEMON_WORKERS, validated: a whole number 0 … 256 (default: one per 4 cores, at most 8). */
export function daemonWorkerCount(value: string | undefined): number {
  if (value === undefined || value.trim() === '')
    return Math.min(
      Math.ceil(availableParallelism() / CORES_PER_DEFAULT_WORKER),
      MAX_DEFAULT_WORKERS,
    );
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!(n <= MAX_WORKERS))
    throw new SpecbuildError(
      'cli/usage',
      `SPECBUILD_DAEMON_WORKERS "${value}" is not a whole number from 0 to ${String(MAX_WORKERS)}`,
    );
  return n;
}

/** The files of worker `index`'s stat cache and direct-mode memory (0 in the in-thread mode). */
export function workCacheFiles(wrapDir: string, index: number): { stat: string; direct: string } {
  return {
    stat: join(wrapDir, `stat-cache-${String(index)}.json`),
    direct: join(wrapDir, `direct-cache-${String(index)}.json`),
  };
}

/**
 * Loads the caches of worker thread `worker.index` and builds its handler
 * (which logs the index, and shares `worker.warned` with the other workers);
 * without `worker`, those of the in-thread mode (index 0).
 */
export async function loadDaemonWork(
  wrapDir: string,
  worker?: { index: number; warned: SharedArrayBuffer },
  answers?: { dir: string; buildId: string },
): Promise<DaemonWork> {
  const files = workCacheFiles(wrapDir, worker?.index ?? 0);
  const stats = await StatCache.load(files.stat);
  // The toolchain's binaries as hostPlatform hashed them (in the main
  // thread, once for all workers): the compiler's digest and the client's
  // answers then hash none of them again.
  for (const f of await hostToolchainFiles())
    if (f.stat !== undefined && f.digest !== undefined)
      stats.seed(f.real ?? f.path, f.stat, f.digest.hash);
  const direct = await DirectCache.load(files.direct);
  const saveAll = (): Promise<unknown> =>
    Promise.all([stats.save(), direct.save()]).catch(() => undefined);
  const timer = setInterval(() => void saveAll(), SAVE_EVERY_MS);
  timer.unref();
  const warned = worker === undefined ? undefined : new SharedOnce(worker.warned);
  const work = wrapperHandler({
    statCache: stats,
    directCache: direct,
    formatError: (e) => formatError(e, false),
    worker: worker?.index,
    firstWarning: warned === undefined ? undefined : (server) => warned.first(server),
    answers: answers === undefined ? undefined : new AnswerWriter(answers.dir, answers.buildId),
  });
  return {
    handler: work.handler,
    close: async () => {
      clearInterval(timer);
      await saveAll();
      work.close();
    },
  };
}
