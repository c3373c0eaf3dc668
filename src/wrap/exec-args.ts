// Parsing of specbuild-exec's command line (shared by the Node entry point
// and the wrapper daemon that serves the native client).
import { SpecbuildError } from '../core/index.js';
import { platformFromEnv, wrapperTarget } from './env.js';
import type { ExecRequest } from './exec-wrapper.js';

/** An --output: relative to the working directory and inside it, as REAPI requires. */
function outputPath(v: string): string {
  const p = v.replace(/\/+$/, '').replace(/^(\.\/)+/, '');
  if (
    p === '' ||
    p.startsWith('/') ||
    p.split('/').some((s) => s === '' || s === '.' || s === '..')
  )
    throw new SpecbuildError(
      'wrap/usage',
      `--output "${v}" is not a path inside the working directory`,
      {
        hint: 'name outputs relative to the current directory, without "..", e.g. --output build/a.o',
      },
    );
  return p;
}

export const execHelp = `Usage: specbuild-exec [options] -- COMMAND [ARG]...

Run COMMAND as a Remote Execution API action: its declared inputs (and the
working directory) form the input root, at their absolute paths. The action
cache answers if it can; otherwise the server executes it. Outputs are written
into place, stdout/stderr replayed, and the command's exit code returned.
Without a server, or if the server fails, the command runs locally.

Options:
  --server TARGET    REAPI endpoint (else $SPECBUILD_SERVER, else $RECC_SERVER):
                     HOST:PORT, grpc://, grpcs:// or unix:/path
  --instance NAME    REAPI instance name (else $SPECBUILD_INSTANCE; default "")
  --input PATH       an input file or directory (repeatable)
  --output PATH      an output file or directory, relative to the working
                     directory (repeatable)
  --platform K=V     a required platform property (repeatable; else those of
                     $SPECBUILD_REMOTE_PLATFORM, K=V,K=V, and of
                     $SPECBUILD_REMOTE_PLATFORM_<K> or $RECC_REMOTE_PLATFORM_<K>)
  --env K=V          an environment variable of the command (repeatable);
                     nothing else is passed
  --log FILE         append a JSON line per run (else $SPECBUILD_WRAPPER_LOG)
  -h, --help         show this help`;

function pair(flag: string, v: string): [string, string] {
  const eq = v.indexOf('=');
  if (eq <= 0) throw new SpecbuildError('wrap/usage', `${flag} "${v}" is not KEY=VALUE`);
  return [v.slice(0, eq), v.slice(eq + 1)];
}

export function parseExecArgs(
  argv: string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
): ExecRequest | 'help' {
  const req: ExecRequest = {
    argv: [],
    cwd,
    inputs: [],
    outputs: [],
    platform: [],
    env: [],
    ...wrapperTarget((k) => env[k]),
  };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--') {
      i++;
      break;
    }
    if (a === '-h' || a === '--help') return 'help';
    const value = argv[i + 1];
    if (!a.startsWith('--') || value === undefined) {
      throw new SpecbuildError('wrap/usage', `unexpected "${a}"`, {
        hint: 'put the command after "--"; see --help',
      });
    }
    i++;
    switch (a) {
      case '--server':
        req.server = value;
        break;
      case '--instance':
        req.instance = value;
        break;
      case '--input':
        req.inputs.push(value);
        break;
      case '--output':
        req.outputs.push(outputPath(value));
        break;
      case '--platform':
        req.platform.push(pair(a, value));
        break;
      case '--env':
        req.env.push(pair(a, value));
        break;
      case '--log':
        req.logFile = value;
        break;
      default:
        throw new SpecbuildError('wrap/usage', `unknown option ${a}`, {
          hint: 'see specbuild-exec --help',
        });
    }
  }
  req.argv = argv.slice(i);
  if (req.argv.length === 0)
    throw new SpecbuildError('wrap/usage', 'no command given', {
      hint: 'specbuild-exec [options] -- COMMAND',
    });
  if (req.server === '') req.server = undefined;
  if (req.platform.length === 0) {
    // As specbuild-cc: the cluster's platform, when the build sets one.
    const p = platformFromEnv(Object.entries(env));
    if (typeof p === 'string') throw new SpecbuildError('wrap/usage', p);
    if (p !== undefined) req.platform = p;
  }
  return req;
}
