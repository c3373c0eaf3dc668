#!/usr/bin/env node
// The wrapper daemon behind the native specbuild-cc / specbuild-exec clients
// (its work is src/wrap/daemon-handler.ts): started on first use, keeps the
// stat cache and server connections warm, exits after an idle timeout.
// Usage: daemon-main.js --socket PATH [--idle-timeout-ms N]
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DirectCache, StatCache, startDaemon, wrapperHandler } from '../wrap/index.js';
import { defaultCacheDir } from './config.js';
import { SpecbuildError } from '../core/index.js';
import { EXIT, runEntryPoint } from './exit-codes.js';
import { formatError } from './render/output.js';

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
  const stats = await StatCache.load(join(defaultCacheDir(), 'wrap', 'stat-cache.json'));
  const direct = await DirectCache.load(join(defaultCacheDir(), 'wrap', 'direct-cache.json'));
  const saveAll = (): Promise<unknown> =>
    Promise.all([stats.save(), direct.save()]).catch(() => undefined);
  const timer = setInterval(() => void saveAll(), 30_000);
  timer.unref();
  const work = wrapperHandler({
    statCache: stats,
    directCache: direct,
    formatError: (e) => formatError(e, false),
  });
  const daemon = await startDaemon({
    socketPath: values.socket,
    idleTimeoutMs,
    handler: work.handler,
  });
  const stop = (): void => {
    void daemon.close();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  await daemon.closed;
  clearInterval(timer);
  await saveAll();
  work.close();
}

runEntryPoint(async () => {
  await main();
  return EXIT.ok;
}, process.env.SPECBUILD_DEBUG === '1');
