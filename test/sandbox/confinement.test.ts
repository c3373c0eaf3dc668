// What a sandboxed command must not be able to do, probed in the real sandbox
// run as root (as CI runs it): it is root only inside a user namespace of its
// own, mapped to an unprivileged host uid, with a small capability set,
// no_new_privs, read-only sysctls and process and memory limits.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { LocalActionCache, LocalCas } from '../../src/cas/index.js';
import { LocalExecutor } from '../../src/exec/index.js';
import { fromPb } from '../../src/reapi/index.js';
import {
  runInSandbox,
  sandboxArgs,
  sandboxHelper,
  type SandboxSpec,
} from '../../src/sandbox/index.js';
import { uploadAction } from '../helpers/actions.js';
import { requireCommand } from '../helpers/prereq.js';
import { tempDir, type TempDir } from '../helpers/tmp.js';

/** The host uids of sandboxes run by root start here (sandbox.c, SANDBOX_ID_BASE). */
const SANDBOX_ID_BASE = 0x70000000;
/** CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID (sandbox.c, KEPT_CAPS). */
const KEPT_CAPS = '00000000000000fb';

function requireRoot(): void {
  assert.equal(
    process.getuid?.(),
    0,
    'these probes check the sandbox run by root, as CI runs it; run the tests as root',
  );
}

function rig(tmp: TempDir) {
  const dirs = ['layer', 'upper', 'scratch'].map((d) => join(tmp.path, d));
  for (const d of dirs) mkdirSync(d, { recursive: true });
  const [layer, upper, scratch] = dirs as [string, string, string];
  mkdirSync(join(layer, 'src'));
  const run = (script: string, extra: Partial<SandboxSpec> = {}) =>
    runInSandbox({
      argv: ['sh', '-c', script],
      env: { PATH: '/usr/bin:/bin' },
      layers: [layer],
      upperDir: upper,
      scratchDir: scratch,
      stdoutFile: join(tmp.path, 'stdout'),
      stderrFile: join(tmp.path, 'stderr'),
      ...extra,
    });
  const stdout = () => readFileSync(join(tmp.path, 'stdout'), 'utf8');
  const stderr = () => readFileSync(join(tmp.path, 'stderr'), 'utf8');
  return { layer, upper, scratch, run, stdout, stderr };
}

/** The lines of /proc/self/status that say what the command may do. */
const STATUS_PROBE = "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/self/status";
const EXPECTED_STATUS = [
  'CapInh:\t0000000000000000',
  `CapPrm:\t${KEPT_CAPS}`,
  `CapEff:\t${KEPT_CAPS}`,
  `CapBnd:\t${KEPT_CAPS}`,
  'CapAmb:\t0000000000000000',
  'NoNewPrivs:\t1',
].join('\n');

describe('sandbox confinement', () => {
  it('is root inside but an unprivileged uid of its own on the host', async () => {
    requireRoot();
    await using tmp = await tempDir();
    const r = rig(tmp);
    let initUid: number | undefined;
    const res = await r.run('id -u; id -g; touch /src/made', {
      capture: async (root) => {
        // root is /proc/PID/root of the sandbox's init, still up while this runs.
        const status = readFileSync(join(root, '..', 'status'), 'utf8');
        initUid = Number(/^Uid:\t(\d+)/m.exec(status)?.[1]);
        await Promise.resolve();
      },
    });
    assert.equal(res.exitCode, 0, r.stderr());
    assert.equal(r.stdout(), '0\n0\n');
    const made = statSync(join(r.upper, 'src', 'made'));
    assert.ok(made.uid >= SANDBOX_ID_BASE, `the file it made is owned by host uid ${made.uid}`);
    assert.ok(made.gid >= SANDBOX_ID_BASE, `the file it made has host gid ${made.gid}`);
    assert.equal(initUid, made.uid, "the sandbox's init runs as the same host uid");

    // Another sandbox, another uid: limits and signals never cross.
    await using tmp2 = await tempDir();
    const r2 = rig(tmp2);
    assert.equal((await r2.run('touch /src/made')).exitCode, 0, r2.stderr());
    assert.notEqual(statSync(join(r2.upper, 'src', 'made')).uid, made.uid);
  });

  it('keeps only a few capabilities, with no_new_privs', async () => {
    requireRoot();
    await using tmp = await tempDir();
    const r = rig(tmp);
    const res = await r.run(STATUS_PROBE);
    assert.equal(res.exitCode, 0, r.stderr());
    assert.equal(r.stdout().trim(), EXPECTED_STATUS);
  });

  it('cannot mount, even over what it owns', async () => {
    requireRoot();
    await using tmp = await tempDir();
    const r = rig(tmp);
    const res = await r.run('mkdir -p /mnt && mount -t tmpfs none /mnt');
    assert.notEqual(res.exitCode, 0, 'mount -t tmpfs succeeded');
    assert.match(r.stderr(), /permission denied/i);
  });

  it('cannot make device nodes', async () => {
    requireRoot();
    await using tmp = await tempDir();
    const r = rig(tmp);
    const res = await r.run('mknod /tmp/sda b 8 0');
    assert.notEqual(res.exitCode, 0, 'mknod of the host disk succeeded');
    assert.match(r.stderr(), /Operation not permitted/);
  });

  it('sees /proc/sys read-only, and cannot make it writable', async () => {
    requireRoot();
    await using tmp = await tempDir();
    const r = rig(tmp);
    for (const sysctl of ['kernel/hostname', 'kernel/domainname']) {
      const res = await r.run(`echo probe > /proc/sys/${sysctl}`);
      assert.notEqual(res.exitCode, 0, `writing /proc/sys/${sysctl} succeeded`);
      assert.match(r.stderr(), /Read-only file system/);
    }
    const remount = await r.run('mount -o remount,rw /proc/sys');
    assert.notEqual(remount.exitCode, 0, 'remounting /proc/sys read-write succeeded');
    const unmount = await r.run('umount /proc/sys');
    assert.notEqual(unmount.exitCode, 0, 'unmounting /proc/sys succeeded');
  });

  it("cannot read the host's /etc/shadow, directly or through a symlink in its input", async () => {
    requireRoot();
    const shadow = statSync('/etc/shadow', { throwIfNoEntry: false });
    assert.ok(shadow, 'this probe needs the host to have an /etc/shadow');
    assert.equal(shadow.mode & 0o004, 0, "the host's /etc/shadow is world-readable");
    await using tmp = await tempDir();
    const r = rig(tmp);
    symlinkSync('/etc/shadow', join(r.layer, 'leak'));
    for (const path of ['/etc/shadow', '/leak']) {
      const res = await r.run(`cat ${path}`);
      assert.notEqual(res.exitCode, 0, `reading ${path} succeeded`);
      assert.equal(r.stdout(), '');
      assert.match(r.stderr(), /Permission denied/);
    }
  });

  it("never resolves an input's top-level symlink on the host", async () => {
    requireRoot();
    await using tmp = await tempDir();
    const r = rig(tmp);
    const secret = join(tmp.path, 'host-only');
    mkdirSync(join(secret, 'lib'), { recursive: true });
    writeFileSync(join(secret, 'secret.txt'), 'host only\n');
    writeFileSync(join(secret, 'lib', 'secret.txt'), 'host only\n');
    for (const name of ['etc', 'usr', 'peek']) symlinkSync(secret, join(r.layer, name));
    // A real lib/: /lib then merges the layers' usr/lib, which must not go through usr.
    mkdirSync(join(r.layer, 'lib'));
    const res = await r.run(
      'cat /etc/secret.txt /usr/secret.txt /peek/secret.txt /lib/secret.txt; test -f /etc/passwd && test -x /usr/bin/env',
    );
    assert.equal(r.stdout(), '', 'a host directory showed through');
    assert.equal(res.exitCode, 0, `the host's /etc and /usr are still there: ${r.stderr()}`);
  });

  it('stops forking at its process limit', async () => {
    requireRoot();
    requireCommand('perl', 'apt-get install perl');
    await using tmp = await tempDir();
    const r = rig(tmp);
    // Children wait until the probe ends (the sandbox's end kills them).
    const res = await r.run(
      'exec perl -e \'my $n = 0; for (1..60) { my $p = fork; if (!defined $p) { print "refused after $n: $!\\n"; exit 0 } if ($p == 0) { sleep 1000; exit } $n++ } print "forked $n\\n"\'',
      { limits: { processes: 20 } },
    );
    assert.equal(res.exitCode, 0, r.stderr());
    // perl itself is one of the 20 (the shell made way for it: exec).
    assert.equal(r.stdout(), 'refused after 19: Resource temporarily unavailable\n');
  });

  it('fails an allocation over its memory limit', async () => {
    requireRoot();
    requireCommand('perl', 'apt-get install perl');
    await using tmp = await tempDir();
    const r = rig(tmp);
    // Sizes from the command line: perl would allocate constants while compiling.
    const res = await r.run(
      `perl -e '$x = "a" x $ARGV[0]; print "small ok\\n"; $y = "b" x $ARGV[1]; print "large ok\\n"' ${16 << 20} ${256 << 20}`,
      { limits: { memoryBytes: 64 << 20 } },
    );
    assert.equal(r.stdout(), 'small ok\n');
    assert.notEqual(res.exitCode, 0, 'a 256 MiB allocation succeeded under a 64 MiB limit');
    assert.match(r.stderr(), /Out of memory/);
  });

  it('confines a command started by another user the same way (no mount, same capabilities)', async () => {
    requireRoot();
    await using tmp = await tempDir();
    const r = rig(tmp);
    chmodSync(tmp.path, 0o777);
    for (const d of [r.layer, r.upper, r.scratch]) chmodSync(d, 0o777);
    const args = sandboxArgs({
      argv: ['sh', '-c', `id -u; ${STATUS_PROBE}; mkdir -p /mnt; mount -t tmpfs none /mnt`],
      env: { PATH: '/usr/bin:/bin' },
      layers: [r.layer],
      upperDir: r.upper,
      scratchDir: r.scratch,
      stdoutFile: '/dev/null',
      stderrFile: '/dev/null',
    });
    const res = spawnSync(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', sandboxHelper(), ...args],
      { encoding: 'utf8' },
    );
    assert.notEqual(res.status, 0, 'mount -t tmpfs succeeded');
    assert.match(res.stderr, /permission denied/i);
    assert.equal(res.stdout.trim(), `0\n${EXPECTED_STATUS}`);
  });
});

describe('sandbox confinement through the local executor', () => {
  it('runs an action as an unprivileged uid, confined', async () => {
    requireRoot();
    await using dir = await tempDir();
    const cas = await LocalCas.open({ dir: dir.path });
    const ac = await LocalActionCache.open(dir.path, cas);
    const ex = new LocalExecutor({ cas, ac, workDir: join(dir.path, 'exec'), jobs: 1 });
    const outside = join(dir.path, 'outside');
    mkdirSync(outside);
    const a = await uploadAction(cas, {
      argv: [
        'sh',
        '-c',
        `id -u; ${STATUS_PROBE}; cat leak; echo shadow=$?; mount -t tmpfs none /tmp; echo mount=$?; touch made`,
      ],
      symlinks: { leak: '/etc/shadow', esc: outside },
      // Its parent is made before the command runs, but never through a symlink on the host.
      outputPaths: ['made', 'esc/sub/out'],
    });
    const { result } = await ex.execute(a);
    const text = async (d: typeof result.stdoutDigest) =>
      Buffer.from(await cas.readBlob(fromPb(d))).toString('utf8');
    assert.equal(result.exitCode, 0, await text(result.stderrDigest));
    assert.equal(await text(result.stdoutDigest), `0\n${EXPECTED_STATUS}\nshadow=1\nmount=32\n`);
    assert.match(await text(result.stderrDigest), /leak: Permission denied/);
    assert.deepEqual(
      result.outputFiles.map((f) => f.path),
      ['made'],
    );
    assert.ok(!existsSync(join(outside, 'sub')), 'the executor made a directory through a symlink');
  });
});
