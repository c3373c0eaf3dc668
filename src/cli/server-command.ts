// `specbuild server`: serves the local CAS, action cache and asset index over
// REAPI and Remote Asset gRPC.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import cluster, { type Worker } from 'node:cluster';
import { DEFAULT_MAX_INPUT_ENTRIES, LocalExecutor, prepareWorkDir } from '../exec/index.js';
import {
  defaultPoolSize,
  FsPool,
  LocalActionCache,
  LocalAssetStore,
  LocalCas,
} from '../cas/index.js';
import { SpecbuildError, type Slots } from '../core/index.js';
// Values from the server layer's leaf modules, not its index: the index loads
// gRPC, which a primary of several processes never needs (types only from it).
import type { InstanceStores, RunningServer, ServerOptions } from '../server/index.js';
import {
  failedError,
  PrimarySlots,
  SERVING_ENV,
  SlotBroker,
  type ToPrimary,
  type ToServing,
  type WireSettings,
} from '../server/processes.js';
import { bindUnixSocket, DEFAULT_SOCKET_MODE, type UnixSocket } from '../server/unix-socket.js';
import { defaultCacheDir, parseSize } from './config.js';
import { info, warn } from './render/output.js';

export const serverHelp = `Usage: specbuild server [options]

Serve a Remote Execution API v2 endpoint: the local CAS and action cache
(Capabilities, ContentAddressableStorage, ByteStream, ActionCache), and the
execution of actions in a Linux sandbox, --jobs at once (Execution,
Operations). With --jobs 0 it serves storage only, without Execution. It
also serves the Remote Asset API (Fetch, Push) as a push/fetch cache of
names for content in its CAS (kept in the cache directory's assets/).

Options:
  --listen ADDR      HOST:PORT or unix:/path/to.sock (default 127.0.0.1:50051;
                     loopback only unless you name another address)
  --socket-mode MODE permissions of a unix: socket, in octal (default 600:
                     only you; e.g. 660 for your group too)
  --cache-dir DIR    cache directory (default $XDG_CACHE_HOME/specbuild)
  --instance NAME    REAPI instance name to serve (default: the empty name)
  --quota SIZE       keep at most SIZE bytes of blobs, evicting the least
                     recently used (e.g. 20G; default unlimited)
  --jobs N           run at most N actions at once (default: the number of
                     cores); 0 serves storage only, without Execution
  --processes N      serve calls from N processes over the same cache, each
                     new connection going to the next (default auto: one per
                     2 cores, at most 8; 1 with --quota); --jobs stays one
                     limit for all of them
  --max-input-entries N
                     refuse actions whose input root expands to more than N
                     files, directories and symlinks (default ${DEFAULT_MAX_INPUT_ENTRIES})
  --token-file FILE  require clients to send this bearer token
  --tls-cert FILE    serve TLS with this PEM certificate chain (with --tls-key)
  --tls-key FILE     PEM private key for --tls-cert
  --tls-client-ca FILE
                     with --tls-cert: require client certificates signed by
                     a CA certificate in this PEM file (mutual TLS)
  --debug            show stack traces on errors, and grpc-js's own log lines
  -h, --help         show this help

Examples:
  specbuild server
      cache and execution on 127.0.0.1:50051, one action per core
  specbuild server --listen unix:/run/user/1000/reapi.sock --jobs 0
      storage only (a remote cache), on a unix socket only you can use
  specbuild server --listen 0.0.0.0:50051 --token-file ~/.reapi-token --quota 20G
      for the whole network, with a token, keeping at most 20G of blobs
  specbuild server --listen 0.0.0.0:50051 --jobs 32 --processes 8
      a 32-core executor whose calls 8 processes serve
  specbuild server --listen 0.0.0.0:11002 --jobs 0 --tls-cert cache.pem \\
      --tls-key cache.key --tls-client-ca clients-ca.pem
      a TLS cache that lets in only clients with a certificate clients-ca
      signed (their auth.client-cert and auth.client-key)

Stop with Ctrl-C (SIGINT) or SIGTERM.`;

export async function serverCommand(argv: string[]): Promise<number> {
  // A serving process of --processes N: its primary parsed the options.
  if (cluster.isWorker && process.env[SERVING_ENV] === '1') return serveForPrimary();
  const { values } = parseArgs({
    args: argv,
    options: {
      listen: { type: 'string', default: '127.0.0.1:50051' },
      'socket-mode': { type: 'string' },
      'cache-dir': { type: 'string' },
      instance: { type: 'string', default: '' },
      quota: { type: 'string' },
      'token-file': { type: 'string' },
      jobs: { type: 'string' },
      processes: { type: 'string', default: 'auto' },
      'max-input-entries': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-client-ca': { type: 'string' },
      debug: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    info(serverHelp);
    return 0;
  }
  const cacheDir = resolve(values['cache-dir'] ?? defaultCacheDir());
  const quotaBytes = values.quota === undefined ? 0 : parseSize(values.quota, '--quota');
  const maxInputEntries = wholeNumber(values['max-input-entries'], '--max-input-entries', 1);
  const socketMode = parseSocketMode(values['socket-mode'], values.listen);
  const instance = values.instance;
  if (
    instance.split('/').some((p) => p === '.' || p === '..') ||
    instance.startsWith('/') ||
    instance.endsWith('/')
  ) {
    throw new SpecbuildError('cli/usage', `--instance "${instance}" is not a valid instance name`, {
      hint: 'use slash-separated words such as "main" or "team/ci"',
    });
  }
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) {
    throw new SpecbuildError('cli/usage', '--tls-cert and --tls-key go together', {
      hint: 'pass both, or neither for plain TCP',
    });
  }
  const clientCa = values['tls-client-ca'];
  if (clientCa !== undefined && values['tls-cert'] === undefined) {
    throw new SpecbuildError('cli/usage', '--tls-client-ca needs --tls-cert and --tls-key', {
      hint: 'client certificates are checked in a TLS handshake: serve TLS too',
    });
  }
  const tls =
    values['tls-cert'] === undefined || values['tls-key'] === undefined
      ? undefined
      : {
          cert: readInput(values['tls-cert'], '--tls-cert'),
          key: readInput(values['tls-key'], '--tls-key'),
          clientCa: clientCa === undefined ? undefined : readCaFile(clientCa),
        };
  const tokenFile = values['token-file'];
  const token =
    tokenFile === undefined
      ? undefined
      : readInput(tokenFile, '--token-file').toString('utf8').trim();
  if (token === '')
    throw new SpecbuildError('cli/usage', `--token-file ${tokenFile ?? ''} is empty`);
  const jobs = values.jobs === undefined ? availableParallelism() : Number(values.jobs);
  if (!Number.isInteger(jobs) || jobs < 0) {
    throw new SpecbuildError('cli/usage', `--jobs "${values.jobs ?? ''}" is not a whole number`, {
      hint: 'use e.g. --jobs 4, or --jobs 0 to disable execution',
    });
  }
  const processes = parseProcesses(values.processes, quotaBytes);
  const common: Common = {
    cacheDir,
    quotaBytes,
    jobs,
    maxInputEntries,
    instance,
    tls,
    token,
    socketMode,
    processes,
  };
  // The primary of several serves no call itself: no gRPC to load.
  if (processes > 1) return runPrimary(values.listen, common, values.debug);
  const startServer = await loadServer(values.debug);
  const { stores, executor, close } = await openStores(common, undefined);
  const running = await startServer({
    listen: values.listen,
    instances: new Map([[instance, stores]]),
    tls,
    token,
    socketMode,
  });
  const stopped = stopSignal();
  info(listeningLine(running.address, common));
  if (executor !== undefined) info(`platform: ${await platformText(executor)}`);
  await stopped;
  // Whatever a shutdown waits on, it ends: a stuck close is cut short.
  setTimeout(() => {
    warn('specbuild server: shutdown took over 10 s; exiting anyway');
    process.exit(1);
  }, 10_000).unref();
  await running.close();
  await close();
  info('specbuild server stopped');
  // Executions still running in their sandboxes must not keep a stopped server alive.
  setTimeout(() => process.exit(0), 2000).unref();
  return 0;
}

/**
 * The gRPC server, imported only by the processes that serve calls (not by
 * main.ts's other commands, nor a primary of several: gRPC takes ~70 ms to
 * load), with grpc-js's own log lines silenced unless `debug`: they repeat
 * the errors we report (a taken port: its "E No address added…" before our
 * message and hint).
 */
async function loadServer(
  debug: boolean,
): Promise<(opts: ServerOptions) => Promise<RunningServer>> {
  const { routeGrpcLog, startServer } = await import('../server/index.js');
  routeGrpcLog(
    debug
      ? (line) => {
          warn(`grpc-js: ${line}`);
        }
      : undefined,
  );
  return startServer;
}

/** What every process of a server needs to know, from the command line. */
interface Common {
  cacheDir: string;
  quotaBytes: number;
  jobs: number;
  maxInputEntries: number | undefined;
  instance: string;
  tls: ServerOptions['tls'];
  token: string | undefined;
  socketMode: number | undefined;
  processes: number;
}

/** Resolves when SIGINT or SIGTERM arrives (handlers set now: a reader of the first line may signal at once). */
function stopSignal(): Promise<void> {
  return new Promise<void>((done) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

function listeningLine(address: string, c: Common): string {
  const what = c.jobs === 0 ? 'no execution' : `${c.jobs} jobs`;
  const procs = c.processes > 1 ? `, ${c.processes} processes` : '';
  return `specbuild server listening on ${address} (instance "${c.instance}", cache ${c.cacheDir}, ${what}${procs})`;
}

async function platformText(executor: LocalExecutor): Promise<string> {
  return [...(await executor.platform())].map(([k, v]) => `${k}=${v}`).join(' ');
}

/**
 * The stores of the cache directory, and the executor over them, for this
 * process. `slots`: where the executor gets its CPU slots (a serving
 * process's primary), else its own pool of `--jobs`.
 */
async function openStores(
  c: Common,
  slots: Slots | undefined,
): Promise<{
  stores: InstanceStores;
  executor: LocalExecutor | undefined;
  close: () => Promise<void>;
}> {
  // Blob writes, staging and removals in worker threads: the event loop
  // stays on the calls (docs/performance.md, "The server's main thread").
  // Serving processes share the cores: fewer threads each.
  const fsPool = new FsPool(Math.max(2, Math.ceil(defaultPoolSize() / c.processes)));
  const cas = await LocalCas.open({ dir: c.cacheDir, quotaBytes: c.quotaBytes, pool: fsPool });
  const ac = await LocalActionCache.open(c.cacheDir, cas);
  const assets = await LocalAssetStore.open({ dir: c.cacheDir, cas });
  // Leftovers of a crashed server go first (moved aside now, deleted in the background).
  const workBase = join(c.cacheDir, 'exec');
  const work = await prepareWorkDir(workBase);
  void work.cleared.then(
    () => {
      if (work.leftovers > 0) info(`removed what an earlier run left in ${workBase}`);
    },
    (e: unknown) => {
      warn(`could not remove leftover staging directories: ${String(e)}`);
    },
  );
  const executor =
    c.jobs === 0
      ? undefined
      : new LocalExecutor({
          cas,
          ac,
          workDir: work.path,
          jobs: c.jobs,
          maxInputEntries: c.maxInputEntries,
          fsPool,
          ...(slots === undefined ? {} : { slots }),
        });
  return {
    stores: { cas, ac, executor, assets },
    executor,
    close: () => fsPool.close(),
  };
}

/**
 * `--processes`: a whole number of at least 1, or `auto` (one per 2 cores,
 * at most 8). With a quota, one: each process would keep its own index of
 * the blobs and evict by it.
 */
function parseProcesses(text: string, quotaBytes: number): number {
  if (text === 'auto') {
    if (quotaBytes > 0) return 1;
    return Math.max(1, Math.min(8, Math.floor(availableParallelism() / 2)));
  }
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1 || n > 64) {
    throw new SpecbuildError(
      'cli/usage',
      `--processes "${text}" is not a whole number from 1 to 64`,
      {
        hint: 'use e.g. --processes 4, or auto',
      },
    );
  }
  if (n > 1 && quotaBytes > 0) {
    throw new SpecbuildError('cli/usage', `--processes ${text} cannot be combined with --quota`, {
      hint: 'each process would keep its own index of the blobs and evict by it: use --processes 1 with --quota',
    });
  }
  return n;
}

/**
 * The primary of `--processes N`: forks N serving processes that listen on
 * the same address (node:cluster hands each connection to the next one), and
 * keeps the one pool of `--jobs` slots they all ask for theirs. A serving
 * process that dies is replaced while another still listens.
 */
async function runPrimary(listen: string, c: Common, debug: boolean): Promise<number> {
  cluster.setupPrimary({ exec: process.argv[1] ?? '', args: ['server'] });
  const broker = c.jobs === 0 ? undefined : new SlotBroker(c.jobs);
  const alive = new Set<Worker>();
  /** Those that asked for their settings: they handle messages (a `stop`) from then on. */
  const greeted = new Set<Worker>();
  /**
   * Those listening. node:cluster closes the shared socket when the last of
   * them goes, and a process started after that would listen anew (on
   * another port, for port 0): so none listening is the end of the server.
   */
  const listening = new Set<Worker>();
  let stopping = false;
  let lost: Error | undefined;
  const stopped = stopSignal();
  let wake: () => void = () => undefined;
  const fatal = new Promise<void>((resolve) => {
    wake = resolve;
  });
  let platform: string | undefined;
  /** Where the first serving process said it listens (the port, when 0 was asked for). */
  let boundAt: string | undefined;
  const settings = wireSettings(c, debug);

  const fork = (address: string): Promise<Worker> => {
    const worker = cluster.fork({ [SERVING_ENV]: '1' });
    alive.add(worker);
    return new Promise<Worker>((resolve, reject) => {
      let ready = false;
      let readyAt = 0;
      worker.on('message', (m: ToPrimary) => {
        if (broker?.handle(worker, m) === true) return;
        if (m.t === 'hello') {
          greeted.add(worker);
          if (stopping) worker.send({ t: 'stop' } satisfies ToServing);
          else worker.send({ t: 'settings', listen: address, settings } satisfies ToServing);
        } else if (m.t === 'ready') {
          ready = true;
          readyAt = Date.now();
          listening.add(worker);
          platform ??= m.platform;
          boundAt ??= m.address;
          resolve(worker);
        } else if (m.t === 'failed') {
          reject(failedError(m));
        }
      });
      // Off the shared socket from here (before its exit).
      worker.on('disconnect', () => {
        listening.delete(worker);
      });
      worker.on('exit', (code: number) => {
        alive.delete(worker);
        greeted.delete(worker);
        listening.delete(worker);
        broker?.forget(worker);
        const signal = worker.process.signalCode;
        const how = signal === null ? `code ${String(code)}` : signal;
        if (!ready) {
          reject(
            new SpecbuildError(
              'server/listen',
              `a serving process exited (${how}) before it was ready`,
            ),
          );
          return;
        }
        if (stopping) return;
        const pid = String(worker.process.pid);
        if (listening.size === 0) {
          lost = new SpecbuildError(
            'server/crashed',
            `the last serving process listening (${pid}) exited (${how}); nothing serves ${listen} any more`,
          );
          wake();
          return;
        }
        warn(`specbuild server: serving process ${pid} exited (${how}); starting another`);
        // One that dies soon after it started waits a moment: no fork loop.
        replace(address, pid, Date.now() - readyAt < 5000 ? 1000 : 0, 1);
      });
    });
  };
  const replace = (address: string, pid: string, delayMs: number, attempt: number): void => {
    setTimeout(() => {
      if (stopping) return;
      fork(address).then(
        (next) => {
          if (!stopping)
            info(
              `specbuild server: serving process ${String(next.process.pid)} took over from ${pid}`,
            );
        },
        (e: unknown) => {
          if (stopping) return;
          if (attempt >= MAX_REPLACE_ATTEMPTS) {
            warn(
              `specbuild server: could not start a serving process (${String(e)}); giving up after ${String(attempt)} attempts`,
            );
            return;
          }
          warn(`specbuild server: could not start a serving process (${String(e)}); trying again`);
          replace(address, pid, 2000, attempt + 1);
        },
      );
    }, delayMs);
  };
  /** Starts all of them; false when a stop came first (they are stopped then). */
  const startAll = async (address: string): Promise<boolean> => {
    const started = Promise.allSettled(Array.from({ length: c.processes }, () => fork(address)));
    const first = await Promise.race([started, stopped.then(() => 'stop' as const)]);
    if (first === 'stop') {
      stopping = true;
      await stopAll(alive, greeted, 5000);
      return false;
    }
    // If one failed, the others go too.
    const failed = first.find((r) => r.status === 'rejected');
    if (failed !== undefined) {
      stopping = true;
      await stopAll(alive, greeted, 5000);
      throw failed.reason;
    }
    return true;
  };

  let socket: UnixSocket | undefined;
  let address = listen;
  let started = false;
  if (listen.startsWith('unix:')) {
    const path = listen.startsWith('unix://') ? listen.slice(7) : listen.slice(5);
    // The primary owns the socket file; the processes listen on its first
    // path (node:cluster binds it here once and shares the handle).
    socket = await bindUnixSocket(path, c.socketMode ?? DEFAULT_SOCKET_MODE, async (tmp) => {
      started = await startAll(`unix:${tmp}`);
    });
    address = `unix:${path}`;
  } else {
    started = await startAll(listen);
    address = boundAt ?? listen;
  }
  if (started) {
    info(listeningLine(address, c));
    if (platform !== undefined) info(`platform: ${platform}`);
    await Promise.race([stopped, fatal]);
    stopping = true;
  }
  const killed = await stopAll(alive, greeted, 10_000);
  await socket?.release();
  if (lost !== undefined) throw lost;
  if (killed > 0) {
    warn(
      `specbuild server: ${String(killed)} serving process(es) did not stop within 10 s and were killed`,
    );
    return 1;
  }
  info('specbuild server stopped');
  return 0;
}

/** Attempts at replacing a serving process that died, 2 s apart. */
const MAX_REPLACE_ATTEMPTS = 5;

/**
 * Asks every serving process to stop (those that have not asked for their
 * settings yet cannot read a message: they get SIGTERM); kills those still
 * there after `graceMs`. Returns how many it killed.
 */
async function stopAll(alive: Set<Worker>, greeted: Set<Worker>, graceMs: number): Promise<number> {
  const all = [...alive];
  const exited = all.map(
    (w) =>
      new Promise<void>((resolve) => {
        if (w.isDead()) resolve();
        else
          w.once('exit', () => {
            resolve();
          });
      }),
  );
  for (const w of all) {
    if (greeted.has(w) && w.isConnected()) w.send({ t: 'stop' } satisfies ToServing);
    else w.process.kill('SIGTERM');
  }
  let killed = 0;
  const timer = setTimeout(() => {
    for (const w of all) {
      if (w.isDead()) continue;
      killed++;
      w.process.kill('SIGKILL');
    }
  }, graceMs);
  await Promise.all(exited);
  clearTimeout(timer);
  return killed;
}

/** The settings a serving process is sent, as the primary read them (files read once, here). */
function wireSettings(c: Common, debug: boolean): WireSettings {
  return {
    cacheDir: c.cacheDir,
    quotaBytes: c.quotaBytes,
    jobs: c.jobs,
    maxInputEntries: c.maxInputEntries ?? null,
    instance: c.instance,
    tls:
      c.tls === undefined
        ? null
        : {
            cert: c.tls.cert.toString('base64'),
            key: c.tls.key.toString('base64'),
            clientCa: c.tls.clientCa === undefined ? null : c.tls.clientCa.toString('base64'),
          },
    token: c.token ?? null,
    processes: c.processes,
    debug,
  };
}

function commonOf(w: WireSettings): Common {
  return {
    cacheDir: w.cacheDir,
    quotaBytes: w.quotaBytes,
    jobs: w.jobs,
    maxInputEntries: w.maxInputEntries ?? undefined,
    instance: w.instance,
    tls:
      w.tls === null
        ? undefined
        : {
            cert: Buffer.from(w.tls.cert, 'base64'),
            key: Buffer.from(w.tls.key, 'base64'),
            ...(w.tls.clientCa === null ? {} : { clientCa: Buffer.from(w.tls.clientCa, 'base64') }),
          },
    token: w.token ?? undefined,
    socketMode: undefined,
    processes: w.processes,
  };
}

/**
 * A serving process of `--processes N`: asks its primary for its settings
 * (parsed, and their files read, once, there), then runs the whole server
 * over the cache directory where the primary says, with its CPU slots asked
 * of the primary. Stops when the primary says so, or is gone; a stop before
 * it is ready ends it at once.
 */
async function serveForPrimary(): Promise<number> {
  const send = (m: ToPrimary): void => {
    if (process.connected) process.send?.(m);
  };
  // Ctrl-C reaches the whole process group: the primary decides when to stop.
  process.on('SIGINT', () => undefined);
  const slots = new PrimarySlots(send);
  let ready = false;
  let done: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => {
    done = resolve;
  });
  const stop = (): void => {
    if (!ready) process.exit(0); // nothing served yet, nothing to finish
    done();
  };
  const given = new Promise<{ listen: string; settings: WireSettings }>((resolve) => {
    process.on('message', (m: ToServing) => {
      if (slots.handle(m)) return;
      if (m.t === 'stop') stop();
      else if (m.t === 'settings') resolve(m);
    });
  });
  process.once('disconnect', stop);
  process.once('SIGTERM', stop);
  send({ t: 'hello' });
  let running: RunningServer;
  let close: () => Promise<void>;
  let platform: string | undefined;
  try {
    const { listen, settings } = await given;
    const c = commonOf(settings);
    const startServer = await loadServer(settings.debug);
    const opened = await openStores(c, slots);
    close = opened.close;
    running = await startServer({
      listen,
      instances: new Map([[c.instance, opened.stores]]),
      tls: c.tls,
      token: c.token,
      sharedSocket: true,
    });
    if (opened.executor !== undefined) platform = await platformText(opened.executor);
  } catch (e) {
    const err = SpecbuildError.from(e);
    send({ t: 'failed', code: err.code, message: err.message, hint: err.hint });
    if (process.connected) process.disconnect();
    return 1;
  }
  ready = true;
  send({ t: 'ready', address: running.address, platform });
  await stopped;
  setTimeout(() => {
    process.exit(1);
  }, 10_000).unref();
  await running.close();
  await close();
  if (process.connected) process.disconnect();
  // Executions still running in their sandboxes must not keep it alive.
  setTimeout(() => process.exit(0), 2000).unref();
  return 0;
}

/** `--socket-mode`: three octal digits (a leading 0 allowed), for a unix: address only. */
function parseSocketMode(text: string | undefined, listen: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^0?[0-7]{3}$/.test(text)) {
    throw new SpecbuildError('cli/usage', `--socket-mode "${text}" is not an octal mode`, {
      hint: 'use e.g. --socket-mode 600 (only you) or 660 (your group too)',
    });
  }
  if (!listen.startsWith('unix:')) {
    throw new SpecbuildError('cli/usage', '--socket-mode applies only to --listen unix:PATH');
  }
  return parseInt(text, 8);
}

/** An optional whole-number option, at least `min`. */
function wholeNumber(text: string | undefined, flag: string, min: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min) {
    throw new SpecbuildError(
      'cli/usage',
      `${flag} "${text}" is not a whole number of at least ${min}`,
    );
  }
  return n;
}

function readInput(file: string, flag: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new SpecbuildError(
      'cli/usage',
      `${flag}: cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}

/** --tls-client-ca: checked now, for a file of no certificate would refuse every client. */
function readCaFile(file: string): Buffer {
  const pem = readInput(file, '--tls-client-ca');
  try {
    new X509Certificate(pem);
  } catch {
    throw new SpecbuildError('cli/usage', `--tls-client-ca: ${file} holds no PEM certificate`, {
      hint: 'give the PEM certificate (-----BEGIN CERTIFICATE-----) of the CA that signs client certificates',
    });
  }
  return pem;
}
