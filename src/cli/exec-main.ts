#!/usr/bin/env node
// specbuild-exec: run one command as a cached REAPI action (see src/wrap/).
import { SpecbuildError } from '../core/index.js';
import { execHelp, parseExecArgs, runWrapped } from '../wrap/index.js';
import { info, reportError } from './render/output.js';

async function main(): Promise<number> {
  const req = parseExecArgs(process.argv.slice(2), process.env, process.cwd());
  if (req === 'help') {
    info(execHelp);
    return 0;
  }
  const reply = await runWrapped(req);
  if (reply.warning !== undefined) process.stderr.write(`${reply.warning}\n`);
  process.stdout.write(reply.stdout);
  process.stderr.write(reply.stderr);
  return reply.exitCode;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    reportError(e, process.env.SPECBUILD_DEBUG === '1');
    process.exitCode = e instanceof SpecbuildError && e.code === 'cli/usage' ? 2 : 1;
  },
);
