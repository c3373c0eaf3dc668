// Wrapper daemons that tests start (autostarted by the native client) outlive
// the command that started them: a test stops the ones whose socket lies in
// its directories before removing them, or a daemon saving its caches on the
// way out recreates a directory being deleted (ENOTEMPTY, leftovers in /tmp).
import { readdirSync, readFileSync } from 'node:fs';

/** Pids of the processes whose command line (argv) `match` accepts. */
export function pidsWhere(match: (argv: string[]) => boolean): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone meanwhile
    }
    if (match(argv)) pids.push(Number(name));
  }
  return pids;
}

/** Pids of wrapper daemons whose `--socket` path lies under `dir`. */
export function daemonsUnder(dir: string): number[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return pidsWhere((argv) => {
    const i = argv.indexOf('--socket');
    const socket = i >= 0 ? argv[i + 1] : undefined;
    return (
      argv.some((a) => /daemon-main(\.bundle)?\.js$/.test(a)) && socket?.startsWith(prefix) === true
    );
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops (SIGTERM, then SIGKILL after 5 s) every daemon whose socket lies
 * under `dir`, and waits until they are gone.
 */
export async function stopDaemonsUnder(dir: string): Promise<number> {
  const pids = daemonsUnder(dir);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + 5000;
  while (pids.some(alive)) {
    if (Date.now() > deadline) {
      for (const pid of pids.filter(alive)) process.kill(pid, 'SIGKILL');
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return pids.length;
}
