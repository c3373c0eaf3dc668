// The scheduler's events: each element's state as it changes. Renderers
// (progress, plain lines, the --report file) are built from these alone.
import type { BuildEvent } from '../build/index.js';
import type { ElementKeys } from '../project/index.js';
import type { ShareEvent, SpeculativeEvent } from '../speculative/index.js';

/**
 * BuildStream's states, plus what happened in this run: built, failed,
 * skipped (not attempted because something it needs failed, or the run was
 * stopped).
 */
export type ElementState =
  | 'no reference'
  | 'pulling'
  | 'waiting'
  | 'fetching'
  | 'buildable'
  | 'building'
  | 'cached'
  | 'built'
  | 'failed'
  | 'skipped';

export interface ElementEvent {
  type: 'element';
  element: string;
  state: ElementState;
  keys?: ElementKeys;
  /** For failed: why. */
  error?: string;
}

export type SchedulerEvent = ElementEvent;

/** Everything a run reports: the scheduler's, the builds' and speculative actions' events. */
export type RunEvent = SchedulerEvent | BuildEvent | SpeculativeEvent | ShareEvent;
