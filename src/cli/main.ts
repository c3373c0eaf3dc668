#!/usr/bin/env node
// specbuild's command-line entry point: dispatches subcommands and maps
// errors to exit codes (2 for usage errors, 1 for everything else).
import { SpecbuildError } from '../core/index.js';
import { info, reportError } from './render/output.js';
import { serverCommand, serverHelp } from './server-command.js';

const help = `Usage: specbuild COMMAND [options]

Commands:
  server     serve the local CAS and action cache over REAPI gRPC

Run "specbuild COMMAND --help" for a command's options.`;

const commands: Record<string, { run: (argv: string[]) => Promise<number>; help: string }> = {
  server: { run: serverCommand, help: serverHelp },
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    info(help);
    return name === undefined ? 2 : 0;
  }
  const cmd = commands[name];
  if (cmd === undefined) {
    throw new SpecbuildError('cli/usage', `unknown command "${name}"`, {
      hint: 'run "specbuild --help"',
    });
  }
  return cmd.run(rest);
}

const debug = process.argv.includes('--debug');
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    const usage =
      (e instanceof SpecbuildError && e.code === 'cli/usage') ||
      (e instanceof Error &&
        'code' in e &&
        typeof e.code === 'string' &&
        e.code.startsWith('ERR_PARSE_ARGS'));
    reportError(
      usage && !(e instanceof SpecbuildError)
        ? new SpecbuildError('cli/usage', (e as Error).message)
        : e,
      debug,
    );
    process.exitCode = usage ? 2 : 1;
  },
);
