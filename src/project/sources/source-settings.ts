// Settings of tar and git sources, checked where they are read: a missing
// `url`, a ref of the wrong form (reported at the ref in the element file),
// and the "no ref yet" state that fetching and staging refuse.
import { SpecbuildError } from '../../core/index.js';
import type { SourceDecl } from '../source-decl.js';

/** A setting the kind cannot do without. */
export function requireSetting(decl: SourceDecl, key: string, example: string): string {
  const v = decl.config[key];
  if (v === undefined || v === '')
    throw new SpecbuildError('load/missing-key', `a ${decl.kind} source needs "${key}"`, {
      location: decl.at,
      hint: `e.g. ${example}`,
    });
  return v;
}

/** The ref, when set, after checking its form. */
export function checkRef(decl: SourceDecl, form: RegExp, what: string): string | undefined {
  const ref = decl.config.ref;
  if (ref === undefined || ref === '') return undefined;
  if (!form.test(ref))
    throw new SpecbuildError(
      'load/invalid-value',
      `the ref "${ref}" of a ${decl.kind} source is not ${what}`,
      {
        location: decl.keyAt.ref ?? decl.at,
        hint: 'run specbuild source track on the element to set it',
      },
    );
  return ref;
}

/** The ref, or a `source/no-ref` error saying what could not be done without one. */
export function requireRef(decl: SourceDecl, ref: string | undefined, doing: string): string {
  if (ref !== undefined) return ref;
  throw new SpecbuildError(
    'source/no-ref',
    `the ${decl.kind} source of ${decl.at.file} (sources[${decl.index}]) has no ref, so it cannot be ${doing}`,
    { location: decl.at, hint: 'run specbuild source track on the element to set its ref' },
  );
}
