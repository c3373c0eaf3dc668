// The executor's platform policy: an action may require only the properties
// this executor offers (reapi/platform.ts computes them), with their values.
import { SpecbuildError } from '../core/index.js';
import { CHROOT_PROPERTY, type Platform, type PlatformProperties } from '../reapi/index.js';

export { chrootOf, CHROOT_PROPERTY } from '../reapi/index.js';

/**
 * Checks an action's required properties against what this executor offers:
 * an unknown name or a different value is FAILED_PRECONDITION.
 */
export function checkPlatform(required: Platform | undefined, offered: PlatformProperties): void {
  for (const p of required?.properties ?? []) {
    if (p.name === CHROOT_PROPERTY) continue;
    const have = offered.get(p.name);
    if (have === undefined) {
      throw new SpecbuildError(
        'exec/platform',
        `platform property "${p.name}" is not offered by this executor`,
        {
          hint: `offered: ${[...offered].map(([k, v]) => `${k}=${v}`).join(', ')}`,
        },
      );
    }
    if (have !== p.value) {
      throw new SpecbuildError(
        'exec/platform',
        `platform property ${p.name}=${p.value} does not match this executor's ${p.name}=${have}`,
      );
    }
  }
}
