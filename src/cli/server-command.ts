// `specbuild server`: serves the local CAS and action cache over REAPI gRPC.
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { LocalActionCache, LocalCas } from '../cas/index.js';
import { SpecbuildError } from '../core/index.js';
import { startServer } from '../server/index.js';
import { defaultCacheDir, parseSize } from './config.js';
import { info } from './render/output.js';

export const serverHelp = `Usage: specbuild server [options]

Serve the local CAS and action cache as a Remote Execution API v2 endpoint
(Capabilities, ContentAddressableStorage, ByteStream, ActionCache).

Options:
  --listen ADDR      HOST:PORT or unix:/path/to.sock (default 127.0.0.1:50051;
                     loopback only unless you name another address)
  --cache-dir DIR    cache directory (default $XDG_CACHE_HOME/specbuild)
  --instance NAME    REAPI instance name to serve (default: the empty name)
  --quota SIZE       keep at most SIZE bytes of blobs, evicting the least
                     recently used (e.g. 20G; default unlimited)
  --debug            show stack traces on errors
  -h, --help         show this help

Stop with Ctrl-C (SIGINT) or SIGTERM.`;

export async function serverCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      listen: { type: 'string', default: '127.0.0.1:50051' },
      'cache-dir': { type: 'string' },
      instance: { type: 'string', default: '' },
      quota: { type: 'string' },
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
  const cas = await LocalCas.open({ dir: cacheDir, quotaBytes });
  const ac = await LocalActionCache.open(cacheDir, cas);
  const server = await startServer({
    listen: values.listen,
    instances: new Map([[instance, { cas, ac }]]),
  });
  info(
    `specbuild server listening on ${server.address} (instance "${instance}", cache ${cacheDir})`,
  );
  await new Promise<void>((done) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close();
  info('specbuild server stopped');
  return 0;
}
