// `specbuild server`: serves the local CAS, action cache and asset index over
// REAPI and Remote Asset gRPC.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { DEFAULT_MAX_INPUT_ENTRIES, LocalExecutor, prepareWorkDir } from '../exec/index.js';
import { FsPool, LocalActionCache, LocalAssetStore, LocalCas } from '../cas/index.js';
import { SpecbuildError } from '../core/index.js';
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
  specbuild server --listen 0.0.0.0:11002 --jobs 0 --tls-cert cache.pem \\
      --tls-key cache.key --tls-client-ca clients-ca.pem
      a TLS cache that lets in only clients with a certificate clients-ca
      signed (their auth.client-cert and auth.client-key)

Stop with Ctrl-C (SIGINT) or SIGTERM.`;

export async function serverCommand(argv: string[]): Promise<number> {
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
  // Imported here, not by main.ts's other commands: gRPC takes ~70 ms to load.
  const { routeGrpcLog, startServer } = await import('../server/index.js');
  // grpc-js's own log lines repeat the errors we report (a taken port: its
  // "E No address added…" before our message and hint); --debug shows them.
  routeGrpcLog(
    values.debug
      ? (line) => {
          warn(`grpc-js: ${line}`);
        }
      : undefined,
  );
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
  // Blob writes, staging and removals in worker threads: the event loop
  // stays on the calls (docs/performance.md, "The server's main thread").
  const fsPool = new FsPool();
  const cas = await LocalCas.open({ dir: cacheDir, quotaBytes, pool: fsPool });
  const ac = await LocalActionCache.open(cacheDir, cas);
  const assets = await LocalAssetStore.open({ dir: cacheDir, cas });
  const jobs = values.jobs === undefined ? availableParallelism() : Number(values.jobs);
  if (!Number.isInteger(jobs) || jobs < 0) {
    throw new SpecbuildError('cli/usage', `--jobs "${values.jobs ?? ''}" is not a whole number`, {
      hint: 'use e.g. --jobs 4, or --jobs 0 to disable execution',
    });
  }
  // Leftovers of a crashed server go first (moved aside now, deleted in the background).
  const workBase = join(cacheDir, 'exec');
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
    jobs === 0
      ? undefined
      : new LocalExecutor({ cas, ac, workDir: work.path, jobs, maxInputEntries, fsPool });
  const server = await startServer({
    listen: values.listen,
    instances: new Map([[instance, { cas, ac, executor, assets }]]),
    tls,
    token,
    socketMode,
  });
  // Handlers first: whoever reads the "listening" line may signal us at once.
  const stopped = new Promise<void>((done) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  info(
    `specbuild server listening on ${server.address} (instance "${instance}", cache ${cacheDir}, ${executor === undefined ? 'no execution' : `${jobs} jobs`})`,
  );
  if (executor !== undefined) {
    const props = [...(await executor.platform())].map(([k, v]) => `${k}=${v}`).join(' ');
    info(`platform: ${props}`);
  }
  await stopped;
  // Whatever a shutdown waits on, it ends: a stuck close is cut short.
  setTimeout(() => {
    warn('specbuild server: shutdown took over 10 s; exiting anyway');
    process.exit(1);
  }, 10_000).unref();
  await server.close();
  info('specbuild server stopped');
  // Executions still running in their sandboxes must not keep a stopped server alive.
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
