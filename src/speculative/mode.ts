// The speculative-actions modes, cheapest first: what each generates after a
// build and whether it primes before one.
import { SpecbuildError } from '../core/index.js';

export const MODES = ['none', 'prime-only', 'source-artifact', 'intra-element', 'full'] as const;
export type Mode = (typeof MODES)[number];

/** Parses a mode (`true`/`false` mean `full`/`none`, as in BuildStream). */
export function parseMode(text: string, where: string): Mode {
  if (text === 'true' || text === 'True') return 'full';
  if (text === 'false' || text === 'False') return 'none';
  if ((MODES as readonly string[]).includes(text)) return text as Mode;
  throw new SpecbuildError(
    'load/invalid-value',
    `${where}: "${text}" is not a speculative-actions mode`,
    {
      hint: `use one of ${MODES.join(', ')} (or true = full, false = none)`,
    },
  );
}

export const primes = (m: Mode): boolean => m !== 'none';
export const generates = (m: Mode): boolean =>
  m === 'source-artifact' || m === 'intra-element' || m === 'full';
/** ACTION overlays within an element (they read the action cache). */
export const intraElement = (m: Mode): boolean => m === 'intra-element' || m === 'full';
/** ACTION overlays across elements, with the dependency actions copied in. */
export const crossElement = (m: Mode): boolean => m === 'full';
