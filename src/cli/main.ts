#!/usr/bin/env node
// specbuild's command-line entry point: dispatches subcommands and maps
// errors to exit codes through cli/exit-codes.ts.
import { SpecbuildError } from '../core/index.js';
import { EXIT, runEntryPoint } from './exit-codes.js';
import { info } from './render/output.js';
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
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const cmd = commands[name];
  if (cmd === undefined) {
    throw new SpecbuildError('cli/usage', `unknown command "${name}"`, {
      hint: 'run "specbuild --help"',
    });
  }
  return cmd.run(rest);
}

runEntryPoint(() => main(process.argv.slice(2)), process.argv.includes('--debug'));
