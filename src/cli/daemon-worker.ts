// One worker thread of the wrapper daemon: daemon-main.ts starts a pool of
// them (src/wrap/daemon-pool.ts), and each answers the requests routed to it
// with its own wrapper handler and caches (daemon-work.ts).
import { workerData } from 'node:worker_threads';
import { seedHostPlatform } from '../reapi/index.js';
import { servePoolWorker, type DaemonHandler, type PoolWorkerData } from '../wrap/index.js';
import { loadDaemonWork, type DaemonWorkerData } from './daemon-work.js';

/**
 * SPECBUILD_DAEMON_TEST_CRASH, for tests only: a command with an argument
 * containing this text ends the worker thread in the middle of its request,
 * as a crash would (nothing else makes a worker die on demand).
 */
function crashHook(handler: DaemonHandler): DaemonHandler {
  const needle = process.env.SPECBUILD_DAEMON_TEST_CRASH;
  if (needle === undefined || needle === '') return handler;
  return (req, reply) => {
    if (req.argv.some((a) => a.includes(needle))) process.exit(70);
    return handler(req, reply);
  };
}

const pool = workerData as PoolWorkerData;
const { wrapDir, warned, answers, host } = pool.data as DaemonWorkerData;
if (host !== undefined) seedHostPlatform(host);
const work = await loadDaemonWork(wrapDir, { index: pool.index, warned }, answers);
servePoolWorker({ handler: crashHook(work.handler), close: work.close, pool });
