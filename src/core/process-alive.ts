// Whether a process still runs, for files and directories named by the pid of
// their writer: what a dead one left behind may be removed.
import { errnoCode } from './errors.js';

/** True when process `pid` exists (EPERM: it exists but is another user's). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errnoCode(e) === 'EPERM';
  }
}
