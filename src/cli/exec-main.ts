#!/usr/bin/env node
// specbuild-exec: run one command as a cached REAPI action (see src/wrap/).
import { execHelp, fallbackWarning, parseExecArgs, runWrapped } from '../wrap/index.js';
import { EXIT, runEntryPoint } from './exit-codes.js';
import { info } from './render/output.js';

async function main(): Promise<number> {
  const req = parseExecArgs(process.argv.slice(2), process.env, process.cwd());
  if (req === 'help') {
    info(execHelp);
    return EXIT.ok;
  }
  const reply = await runWrapped(req);
  if (reply.error !== undefined) process.stderr.write(`${fallbackWarning(reply.error)}\n`);
  process.stdout.write(reply.stdout);
  process.stderr.write(reply.stderr);
  return reply.exitCode;
}

runEntryPoint(main, process.env.SPECBUILD_DEBUG === '1');
