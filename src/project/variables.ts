// Variables and their expansion: `%{name}` references resolved recursively
// in any declaration order, as BuildStream does. Every variable is resolved
// when the element loads, so an undefined or circular one is reported even
// if nothing uses it, naming the variable, the chain, and where it was used.
import { SpecbuildError, type Location } from '../core/index.js';
import type { Diag } from './schema.js';

const REF = /%\{([a-zA-Z][a-zA-Z0-9_-]*)\}/g;

export interface VariableDef {
  value: string;
  at: Location;
}

export class Variables {
  private readonly resolved = new Map<string, string>();

  private constructor(private readonly defs: ReadonlyMap<string, VariableDef>) {}

  /** Resolves every variable; problems go to `d` (the failing ones stay unresolved). */
  static resolve(defs: ReadonlyMap<string, VariableDef>, d: Diag): Variables {
    const vars = new Variables(defs);
    const reported = new Set<string>();
    for (const name of defs.keys()) vars.resolveOne(name, [], d, reported);
    return vars;
  }

  private resolveOne(
    name: string,
    chain: string[],
    d: Diag,
    reported: Set<string>,
  ): string | undefined {
    const done = this.resolved.get(name);
    if (done !== undefined) return done;
    const def = this.defs.get(name);
    if (def === undefined) return undefined;
    if (chain.includes(name)) {
      const cycle = [...chain.slice(chain.indexOf(name)), name];
      const key = [...new Set(cycle)].sort().join(',');
      if (!reported.has(key)) {
        reported.add(key);
        d.add(
          new SpecbuildError(
            'load/circular-variable',
            `variable "${name}" refers to itself: ${cycle.map((v) => `%{${v}}`).join(' → ')}`,
            { location: def.at },
          ),
        );
      }
      return undefined;
    }
    const state = { failed: false };
    const value = def.value.replace(REF, (whole, ref: string) => {
      if (!this.defs.has(ref)) {
        const key = `undefined:${ref}:${name}`;
        if (!reported.has(key)) {
          reported.add(key);
          d.add(undefinedVariable(ref, def.at, [...chain, name]));
        }
        state.failed = true;
        return whole;
      }
      const v = this.resolveOne(ref, [...chain, name], d, reported);
      if (v === undefined) {
        state.failed = true;
        return whole;
      }
      return v;
    });
    if (state.failed) return undefined;
    this.resolved.set(name, value);
    return value;
  }

  get(name: string): string | undefined {
    return this.resolved.get(name);
  }

  has(name: string): boolean {
    return this.resolved.has(name);
  }

  /** Every resolved variable, sorted by name. */
  entries(): [string, string][] {
    return [...this.resolved.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** `text` with every `%{name}` replaced; an unknown name is reported at `at`. */
  expand(text: string, at: Location, d: Diag): string {
    return text.replace(REF, (whole, ref: string) => {
      const v = this.resolved.get(ref);
      if (v !== undefined) return v;
      // Defined but failed to resolve: already reported.
      if (!this.defs.has(ref)) d.add(undefinedVariable(ref, at, []));
      return whole;
    });
  }
}

function undefinedVariable(name: string, at: Location, chain: string[]): SpecbuildError {
  const via = chain.length === 0 ? '' : ` (used by ${chain.map((v) => `%{${v}}`).join(' → ')})`;
  return new SpecbuildError('load/undefined-variable', `undefined variable %{${name}}${via}`, {
    location: at,
    hint: `define "${name}" under variables: in the element or in project.conf`,
  });
}
