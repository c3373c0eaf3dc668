// Options every project command shares (BuildStream puts them before the
// verb: -C DIR, --config FILE, --builders N, --on-error), resolved once.
import type { UserConfig } from './user-config.js';

export interface GlobalOptions {
  /** The project directory (or where to look upward for project.conf). */
  directory: string;
  config: UserConfig;
  builders?: number;
  onError?: 'quit' | 'continue';
  debug: boolean;
}
