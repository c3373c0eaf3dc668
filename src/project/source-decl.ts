// A source as an element declares it, checked and expanded but not yet
// fetched: its kind, where it goes under the build root, and its settings.
import type { Location } from '../core/index.js';

export type SourceKind = 'local' | 'tar' | 'git';

/** The settings each source kind takes (besides `kind` and `directory`). */
export const SOURCE_KEYS: Readonly<Record<SourceKind, readonly string[]>> = {
  local: ['path'],
  tar: ['url', 'ref', 'base-dir'],
  git: ['url', 'ref', 'track', 'checkout-submodules'],
};

export interface SourceDecl {
  kind: SourceKind;
  /** Where it is staged, relative to the build root ('' for the root). */
  directory: string;
  /** Settings, variables expanded. */
  config: Readonly<Record<string, string>>;
  at: Location;
  /** Where each setting is written (a wrong ref is reported there). */
  keyAt: Readonly<Record<string, Location>>;
  /** Its position in the element's sources list. */
  index: number;
}
