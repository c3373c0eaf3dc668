#!/usr/bin/env node
// The wrapper daemon behind the native specbuild-cc / specbuild-exec clients:
// started on first use, keeps the stat cache and server connections warm,
// exits after an idle timeout. Usage: daemon-main.js --socket PATH
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SpecbuildError } from '../core/index.js';
import { RemoteEndpoint } from '../remote/index.js';
import {
  DirectCache,
  StatCache,
  ccConfig,
  decideExec,
  handleCompile,
  logLine,
  startDaemon,
  type DaemonReply,
  type DaemonRequest,
} from '../wrap/index.js';
import { defaultCacheDir } from './config.js';
import { execHelp, parseExecArgs } from './exec-args.js';
import { formatError } from './render/output.js';

const endpoints = new Map<string, Promise<RemoteEndpoint>>();
const warned = new Set<string>();

function endpoint(target: string, instance: string): Promise<RemoteEndpoint> {
  const key = `${target}\0${instance}`;
  let p = endpoints.get(key);
  if (p === undefined) {
    p = RemoteEndpoint.connect({
      target,
      instance,
      retry: { attempts: 2, baseDelayMs: 50, maxDelayMs: 200 },
    });
    endpoints.set(key, p);
    // A failed connection is forgotten so that the next compile tries again.
    p.catch(() => endpoints.delete(key));
  }
  return p;
}

async function log(file: string | undefined, line: string): Promise<void> {
  if (file !== undefined && file !== '') await appendFile(file, line).catch(() => undefined);
}

async function handleCc(
  req: DaemonRequest,
  reply: DaemonReply,
  stats: StatCache,
  directCache: DirectCache,
): Promise<void> {
  const started = performance.now();
  const ms = (): number => Math.round(performance.now() - started);
  const logFile = req.env.get('SPECBUILD_WRAPPER_LOG');
  if (req.argv.length === 0) {
    reply.stderr('usage: specbuild-cc COMPILER ARGS...\n');
    reply.exit(2);
    return;
  }
  const r = await handleCompile(
    { argv: req.argv, cwd: req.cwd, env: req.env },
    { statCache: stats, directCache, endpoint },
  );
  const verbose = ccConfig(req.env).verbose;
  if (r.kind === 'done') {
    await log(logFile, logLine(req.argv, r.outcome, r.action, ms()));
    reply.stdout(r.stdout);
    reply.stderr(r.stderr);
    if (verbose) {
      const phases = Object.entries(r.phases)
        .map(([k, v]) => `${k} ${String(v)} ms`)
        .join(', ');
      reply.stderr(
        `specbuild-cc: ${r.outcome} ${r.action.hash}/${String(r.action.size)} in ${String(ms())} ms (${phases})\n`,
      );
    }
    reply.exit(r.exitCode);
    return;
  }
  if (r.kind === 'fallback') {
    const server = req.env.get('SPECBUILD_SERVER') ?? req.env.get('RECC_SERVER') ?? '';
    if (!warned.has(server)) {
      warned.add(server);
      reply.stderr(`specbuild-cc: ${r.reason}; compiling locally\n`);
    }
  } else if (verbose) {
    reply.stderr(`specbuild-cc: running locally: ${r.reason}\n`);
  }
  await log(logFile, logLine(req.argv, r.kind, undefined, ms()));
  reply.runLocally();
}

async function handleExec(req: DaemonRequest, reply: DaemonReply): Promise<void> {
  const started = performance.now();
  let parsed: ReturnType<typeof parseExecArgs>;
  try {
    parsed = parseExecArgs(req.argv, Object.fromEntries(req.env), req.cwd);
  } catch (e) {
    if (!(e instanceof SpecbuildError && e.code === 'cli/usage')) throw e;
    // A usage error is the user's to fix: said, never run.
    reply.stderr(formatError(e, false));
    reply.exit(2);
    return;
  }
  if (parsed === 'help') {
    reply.stdout(`${execHelp}\n`);
    reply.exit(0);
    return;
  }
  const d = await decideExec(parsed, endpoint);
  const ms = Math.round(performance.now() - started);
  if (parsed.logFile !== undefined)
    await log(parsed.logFile, logLine(parsed.argv, d.outcome, d.action, ms));
  if ('exitCode' in d) {
    reply.stdout(d.stdout);
    reply.stderr(d.stderr);
    reply.exit(d.exitCode);
    return;
  }
  if (d.warning !== undefined) reply.stderr(`${d.warning}\n`);
  reply.runLocally();
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { socket: { type: 'string' }, 'idle-timeout-ms': { type: 'string' } },
  });
  if (values.socket === undefined) throw new Error('daemon-main: --socket PATH is required');
  const stats = await StatCache.load(join(defaultCacheDir(), 'wrap', 'stat-cache.json'));
  const direct = await DirectCache.load(join(defaultCacheDir(), 'wrap', 'direct-cache.json'));
  const saveAll = (): Promise<unknown> =>
    Promise.all([stats.save(), direct.save()]).catch(() => undefined);
  const timer = setInterval(() => void saveAll(), 30_000);
  timer.unref();
  const daemon = await startDaemon({
    socketPath: values.socket,
    idleTimeoutMs:
      values['idle-timeout-ms'] === undefined ? undefined : Number(values['idle-timeout-ms']),
    handler: (req, reply) =>
      req.tool === 'cc' ? handleCc(req, reply, stats, direct) : handleExec(req, reply),
  });
  const stop = (): void => {
    void daemon.close();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  await daemon.closed;
  clearInterval(timer);
  await saveAll();
  for (const p of endpoints.values())
    void p
      .then((ep) => {
        ep.close();
      })
      .catch(() => undefined);
}

main().catch((e: unknown) => {
  process.stderr.write(`specbuild daemon: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
