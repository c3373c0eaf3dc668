// What an element build reports as it goes: the phase it is in, each
// subaction its REAPI session completed, and where its log is.
import type { SubactionEvent } from '../server/index.js';

export type BuildPhase =
  | 'staging'
  | 'configure-commands'
  | 'build-commands'
  | 'install-commands'
  | 'strip-commands'
  | 'capture';

export type BuildEvent =
  | { type: 'build-phase'; element: string; phase: BuildPhase }
  | { type: 'build-log'; element: string; path: string }
  /** The element's build root on this machine, while its commands run (removed after). */
  | { type: 'build-dir'; element: string; path: string }
  | (SubactionEvent & { element: string });
