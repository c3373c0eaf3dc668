// The specbuild command line run on a ProjectRig as a user runs it: a child
// process in the project directory, with a cache and a configuration of the
// rig's own (XDG_CACHE_HOME and XDG_CONFIG_HOME under its scratch space), so
// that tests never see the user's, and every run of one rig shares a cache.
import { join } from 'node:path';
import { cliMain } from './paths.js';
import { runProcess, startService, type ProcessResult, type Service } from './process.js';
import type { ProjectRig } from './project-rig.js';

/** The cache directory the rig's runs use. */
export function cacheDirOf(rig: ProjectRig): string {
  return join(rig.scratch, 'xdg-cache', 'specbuild');
}

export function cliEnv(rig: ProjectRig): NodeJS.ProcessEnv {
  return {
    ...process.env,
    XDG_CACHE_HOME: join(rig.scratch, 'xdg-cache'),
    XDG_CONFIG_HOME: join(rig.scratch, 'xdg-config'),
    CI: 'true',
  };
}

/** Runs `specbuild ARGS...` in the rig's project directory to completion. */
export function specbuild(
  rig: ProjectRig,
  args: string[],
  opts: { input?: string; timeoutMs?: number; onOutput?: (output: string) => void } = {},
): Promise<ProcessResult> {
  return runProcess(process.execPath, [cliMain, ...args], {
    cwd: rig.dir,
    env: cliEnv(rig),
    timeoutMs: opts.timeoutMs ?? 120_000,
    input: opts.input,
    onOutput: opts.onOutput,
  });
}

/** Starts `specbuild ARGS...`, resolved once `ready` holds for what it printed. */
export function startSpecbuild(
  rig: ProjectRig,
  args: string[],
  ready: (output: string) => boolean | Promise<boolean>,
): Promise<Service<true>> {
  return startService(process.execPath, [cliMain, ...args], {
    cwd: rig.dir,
    env: cliEnv(rig),
    startTimeoutMs: 120_000,
    ready: async (out) => ((await ready(out)) ? true : undefined),
  });
}

/** A failure message for a run: how it ended and everything it printed. */
export function ran(r: ProcessResult): string {
  return `exit code ${r.code} (signal ${r.signal}); output:\n${r.output}`;
}
