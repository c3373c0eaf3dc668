// The platform both wrappers put on their actions, from the environment:
// SPECBUILD_REMOTE_PLATFORM (K=V,K=V) and one variable per property
// (SPECBUILD_REMOTE_PLATFORM_<NAME>, recc's RECC_REMOTE_PLATFORM_<NAME>), as
// a digest-environment dependency sets chrootRootDigest; none: the host's.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { platformFromEnv } from '../../src/wrap/env.js';
import { parseExecArgs } from '../../src/wrap/exec-args.js';

describe('platform from the environment', () => {
  it('merges the list and the per-property variables, sorted; nothing set is undefined', () => {
    assert.equal(platformFromEnv([['PATH', '/usr/bin']]), undefined);
    assert.deepEqual(
      platformFromEnv([
        ['SPECBUILD_REMOTE_PLATFORM', 'OSFamily=linux,ISA=x86-64'],
        ['RECC_REMOTE_PLATFORM_chrootRootDigest', 'ab12/345'],
        ['SPECBUILD_REMOTE_PLATFORM_container-image', 'docker://gcc'],
        ['RECC_REMOTE_PLATFORM_', 'ignored: no name'],
        ['SPECBUILD_REMOTE_PLATFORM_empty', ''],
      ]),
      [
        ['ISA', 'x86-64'],
        ['OSFamily', 'linux'],
        ['chrootRootDigest', 'ab12/345'],
        ['container-image', 'docker://gcc'],
      ],
    );
    assert.equal(
      platformFromEnv([['SPECBUILD_REMOTE_PLATFORM', 'linux']]),
      'SPECBUILD_REMOTE_PLATFORM: "linux" is not KEY=VALUE (write e.g. OSFamily=linux,ISA=x86-64)',
    );
  });

  it('specbuild-exec takes it when no --platform is given', () => {
    const env = { RECC_REMOTE_PLATFORM_chrootRootDigest: 'ab12/345' };
    const req = parseExecArgs(['--', 'ar', 'rcs', 'x.a'], env, '/w');
    assert.ok(req !== 'help');
    assert.deepEqual(req.platform, [['chrootRootDigest', 'ab12/345']]);
    const given = parseExecArgs(['--platform', 'OSFamily=linux', '--', 'true'], env, '/w');
    assert.ok(given !== 'help');
    assert.deepEqual(given.platform, [['OSFamily', 'linux']]);
  });
});
