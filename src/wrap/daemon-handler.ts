// What the wrapper daemon does with each request of the native clients: a
// compile for specbuild-cc, a command for specbuild-exec. It keeps the warm
// state (connections per server and instance, the stat cache, direct mode's
// memory) and writes the JSON log line of every run it decides.
import { appendFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { isSpecbuildError, type SpecbuildError } from '../core/index.js';
import { RemoteEndpoint, type Connection } from '../remote/index.js';
import { ccConfig, handleCompile } from './cc.js';
import type { DaemonHandler, DaemonReply } from './daemon-server.js';
import type { DaemonRequest } from './daemon-protocol.js';
import type { DirectCache } from './direct-cache.js';
import { execHelp, parseExecArgs } from './exec-args.js';
import { decideExec, fallbackWarning } from './exec-wrapper.js';
import { logLine, logLineAround } from './outcome.js';
import { requestKey, type AnswerWriter } from './native-answers.js';
import type { StatCache } from './stat-cache.js';

export interface WrapperHandlerOptions {
  statCache: StatCache;
  directCache: DirectCache;
  /** How a usage error reads for the user (the CLI's renderer). */
  formatError: (e: SpecbuildError) => string;
  /** The daemon worker thread this handler runs in, for the log line. */
  worker?: number;
  /**
   * Whether to warn now that commands for `server` compile locally: true the
   * first time (default: once per handler; the daemon's worker threads share
   * one answer, see shared-once.ts).
   */
  firstWarning?: (server: string) => boolean;
  /** Where to write answers for the native client (native-answers.ts); none without. */
  answers?: AnswerWriter;
}

export interface WrapperHandler {
  handler: DaemonHandler;
  /** Closes the warm connections. */
  close(): void;
}

async function log(file: string | undefined, line: string): Promise<void> {
  if (file !== undefined && file !== '') await appendFile(file, line).catch(() => undefined);
}

export function wrapperHandler(opts: WrapperHandlerOptions): WrapperHandler {
  const endpoints = new Map<string, Promise<RemoteEndpoint>>();
  /**
   * The connection of each target, kept when its endpoint is forgotten: the
   * next endpoint asks Capabilities again over it, and commands still using
   * the old endpoint keep a working channel (nothing is closed under them).
   */
  const connections = new Map<string, Connection>();
  /** Servers already warned about (once per daemon, not once per compile). */
  const warned = new Set<string>();
  const firstWarning =
    opts.firstWarning ??
    ((server: string): boolean => {
      if (warned.has(server)) return false;
      warned.add(server);
      return true;
    });
  const worker = opts.worker;

  const endpoint = (target: string, instance: string): Promise<RemoteEndpoint> => {
    const key = `${target}\0${instance}`;
    let p = endpoints.get(key);
    if (p === undefined) {
      p = RemoteEndpoint.connect(
        { target, instance, retry: { attempts: 2, baseDelayMs: 50, maxDelayMs: 200 } },
        {},
        connections.get(key),
      );
      endpoints.set(key, p);
      const mine = p;
      // A failed connection is forgotten so that the next compile tries again.
      mine.then(
        (ep) => {
          connections.set(key, ep.connection);
          // So is an endpoint whose channel dropped: the server may have come
          // back with a quota or another cache directory, and what its
          // Capabilities said (where its files are, whether this process may
          // write them) must be asked again.
          ep.connection.onceDropped(() => {
            if (endpoints.get(key) === mine) endpoints.delete(key);
          });
        },
        () => endpoints.delete(key),
      );
    }
    return p;
  };

  const handleCc = async (req: DaemonRequest, reply: DaemonReply): Promise<void> => {
    const started = performance.now();
    const ms = (): number => Math.round(performance.now() - started);
    if (req.argv.length === 0) {
      reply.stderr('usage: specbuild-cc COMPILER ARGS...\n');
      reply.exit(2);
      return;
    }
    const env = ccConfig(req.env);
    // A relative log is the command's, as the client's own lines are (client.c).
    const cfg = {
      ...env,
      logFile: env.logFile === undefined ? undefined : resolve(req.cwd, env.logFile),
    };
    const r = await handleCompile(
      { argv: req.argv, cwd: req.cwd, env: req.env, umask: req.umask },
      { statCache: opts.statCache, directCache: opts.directCache, endpoint },
      reply.signal,
      env,
    );
    const answers = opts.answers;
    // Written before the reply, so that the client's next run of this
    // command finds it. One whose checks no longer hold the client removed
    // (client.c, answer_here) before it sent the command here.
    if (
      answers !== undefined &&
      r.kind === 'done' &&
      r.answer !== undefined &&
      r.action !== undefined
    ) {
      const line = logLineAround({
        argv: req.argv,
        outcome: 'hit',
        action: r.action,
        deps: 'direct',
        remembered: true,
        direct: 'fresh',
        native: true,
      });
      await answers.write(requestKey(req.argv, req.cwd, req.env), {
        ...r.answer,
        logHead: line.head,
        logTail: line.tail,
      });
    }
    if (r.kind === 'done') {
      await log(
        cfg.logFile,
        logLine({
          argv: req.argv,
          outcome: r.outcome,
          action: r.action,
          deps: r.deps,
          ms: ms(),
          worker,
          remembered: r.remembered,
          direct: r.direct,
          unstored: r.unstored,
        }),
      );
      reply.stdout(r.stdout);
      reply.stderr(r.stderr);
      if (cfg.verbose) {
        const phases = Object.entries(r.phases)
          .map(([k, v]) => `${k} ${String(v)} ms`)
          .join(', ');
        reply.stderr(
          `specbuild-cc: ${r.outcome} ${r.action === undefined ? '(failed, not stored)' : `${r.action.hash}/${String(r.action.size)}`} in ${String(ms())} ms (${phases})\n`,
        );
      }
      reply.exit(r.exitCode);
      return;
    }
    if (r.kind === 'fallback') {
      if (firstWarning(cfg.server ?? '')) {
        reply.stderr(`specbuild-cc: ${r.error.message}; compiling locally\n`);
      }
    } else if (cfg.verbose) {
      reply.stderr(`specbuild-cc: running locally: ${r.reason}\n`);
    }
    await log(
      cfg.logFile,
      logLine({
        argv: req.argv,
        outcome: r.kind,
        ms: ms(),
        error: r.kind === 'fallback' ? r.error : undefined,
        worker,
      }),
    );
    reply.runLocally();
  };

  const handleExec = async (req: DaemonRequest, reply: DaemonReply): Promise<void> => {
    const started = performance.now();
    try {
      const parsed = parseExecArgs(req.argv, Object.fromEntries(req.env), req.cwd);
      if (parsed === 'help') {
        reply.stdout(`${execHelp}\n`);
        reply.exit(0);
        return;
      }
      const d = await decideExec(parsed, {
        endpoint,
        digest: async (p) => (await opts.statCache.digest(p)).digest,
        signal: reply.signal,
        umask: req.umask,
      });
      const ms = Math.round(performance.now() - started);
      await log(
        parsed.logFile,
        logLine({
          argv: parsed.argv,
          outcome: d.outcome,
          action: d.action,
          ms,
          error: d.error,
          worker,
        }),
      );
      if ('exitCode' in d) {
        reply.stdout(d.stdout);
        reply.stderr(d.stderr);
        reply.exit(d.exitCode);
        return;
      }
      if (d.error !== undefined) reply.stderr(`${fallbackWarning(d.error)}\n`);
      reply.runLocally();
    } catch (e) {
      if (!isSpecbuildError(e, 'wrap/usage')) throw e;
      // A usage error (a bad option, a missing --input) is the user's to fix: said, never run.
      reply.stderr(opts.formatError(e));
      reply.exit(2);
    }
  };

  return {
    handler: (req, reply) => (req.tool === 'cc' ? handleCc(req, reply) : handleExec(req, reply)),
    close() {
      for (const p of endpoints.values())
        void p
          .then((ep) => {
            ep.close();
          })
          .catch(() => undefined);
      // Those of forgotten endpoints too (closing one twice is harmless).
      for (const c of connections.values()) c.close();
    },
  };
}
