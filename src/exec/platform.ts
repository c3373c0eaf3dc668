// The executor's platform policy: an action may require only the properties
// this executor offers (reapi/platform.ts computes them), with their values.
import { SpecbuildError } from '../core/index.js';
import {
  parseDigestString,
  type Digest,
  type Platform,
  type PlatformProperties,
} from '../reapi/index.js';

/**
 * The property that gives an action's root file system: the digest of a tree
 * (HASH/SIZE) to run it in instead of this host's (as BuildStream's and
 * buildbox's `chrootRootDigest`, which recc sets from
 * RECC_REMOTE_PLATFORM_chrootRootDigest). Any value is offered: the tree is
 * the action's to bring.
 */
export const CHROOT_PROPERTY = 'chrootRootDigest';

/** The action's chroot tree, if its platform names one (a malformed value is INVALID_ARGUMENT). */
export function chrootOf(platform: Platform | undefined): Digest | undefined {
  const values = (platform?.properties ?? []).filter((p) => p.name === CHROOT_PROPERTY);
  if (values.length === 0) return undefined;
  if (values.length > 1)
    throw new SpecbuildError('exec/invalid-action', `${CHROOT_PROPERTY} is given more than once`);
  try {
    return parseDigestString(values[0]?.value ?? '', CHROOT_PROPERTY);
  } catch (e) {
    throw new SpecbuildError(
      'exec/invalid-action',
      `${CHROOT_PROPERTY} "${values[0]?.value ?? ''}" is not a digest HASH/SIZE`,
      { cause: e },
    );
  }
}

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
