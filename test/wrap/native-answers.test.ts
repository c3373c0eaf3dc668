// Hits the native client answers itself from what the daemon wrote down
// (src/wrap/native-answers.ts): through the real client, daemon, server and
// gcc. Each case changes one thing the answer rests on and checks that the
// client then leaves the command to the daemon, which answers it correctly.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { answerName, encodeAnswer, requestKey } from '../../src/wrap/index.js';
import { readWrapperLog, specbuildCc, type LogLine } from '../helpers/cproject.js';
import { tempDir } from '../helpers/tmp.js';
import { blobHolding, startWrapRig } from '../helpers/wrap-rig.js';

async function rig(dir: string) {
  const base = await startWrapRig(dir);
  const { proj, env, sock, stop } = base;
  /** Runs specbuild-cc with `argv`; its exit status, stderr and log line. */
  const cc = (
    argv: string[],
    more: NodeJS.ProcessEnv = {},
  ): { status: number | null; stderr: string; line: LogLine } => {
    const r = spawnSync(specbuildCc, argv, {
      cwd: proj,
      env: { ...env, ...more },
      encoding: 'utf8',
    });
    return { status: r.status, stderr: r.stderr, line: base.last() };
  };
  /** gcc itself, into `out`: what every answer must give, byte for byte. */
  const plain = (argv: string[]): Buffer => {
    const r = spawnSync(argv[0] ?? 'gcc', argv.slice(1), { cwd: proj, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const o = argv[argv.indexOf('-o') + 1] ?? '';
    return readFileSync(join(proj, o));
  };
  /** The request's bytes of `argv` run with the rig's environment. */
  const keyOf = (argv: string[]): Buffer =>
    requestKey(
      argv,
      proj,
      new Map(
        Object.entries(env).flatMap(([k, v]): [string, string][] =>
          v === undefined ? [] : [[k, v]],
        ),
      ),
    );
  /** Its answer file. */
  const answerFile = (argv: string[]): string => join(`${sock}.answers`, answerName(keyOf(argv)));
  return { proj, env, sock, cc, plain, keyOf, answerFile, stop };
}

/** What the log line says answered: the client, the daemon from its memory, or something else. */
function who(l: LogLine): string {
  if (l.native === true) return `client ${l.outcome}`;
  return `${l.outcome} ${l.deps ?? ''} ${l.direct ?? ''}`.trim();
}

describe('specbuild-cc: hits the native client answers itself', () => {
  it('answers the run after a miss itself, with the same object, warning and mode; a changed input goes to the daemon', async () => {
    await using dir = await tempDir();
    const { proj, cc, plain, answerFile, stop } = await rig(dir.path);
    try {
      writeFileSync(join(proj, 'a.h'), '#define X 3\n');
      writeFileSync(
        join(proj, 'a.c'),
        '#include "a.h"\n#include <stdio.h>\nint f(void) { return X; }\n#warning hello\n',
      );
      const argv = ['gcc', '-O2', '-c', 'a.c', '-o', 'a.o'];
      const want3 = plain(argv);
      rmSync(join(proj, 'a.o'));
      await sleep(1100); // settled: the stat cache vouches only for files a second old
      const first = cc(argv);
      assert.equal(who(first.line), 'miss compile none');
      assert.match(first.stderr, /warning: #warning hello/);
      // Its inputs a second old, the miss compiled here leaves an answer too.
      rmSync(join(proj, 'a.o'));
      const third = cc(argv);
      assert.equal(who(third.line), 'client hit');
      assert.equal(third.status, 0);
      assert.equal(third.stderr, first.stderr);
      assert.equal(third.line.action, first.line.action);
      assert.deepEqual(readFileSync(join(proj, 'a.o')), want3);
      assert.equal(statSync(join(proj, 'a.o')).mode & 0o777, 0o644);
      assert.deepEqual(
        readdirSync(proj).filter((f) => f.includes('specbuild-tmp')),
        [],
        'no temporary file left',
      );

      // The same bytes under a new mtime and ctime: the client hashes a.h
      // and still answers.
      utimesSync(join(proj, 'a.h'), new Date(), new Date(Date.now() - 5000));
      const answer = answerFile(argv);
      const before = readFileSync(answer);
      assert.equal(who(cc(argv).line), 'client hit');
      // Its ctime is new: hashed, not vouched for yet; a second later the
      // client writes its stat into the answer, and the next run only stats it.
      assert.deepEqual(readFileSync(answer), before);
      await sleep(1100);
      assert.equal(who(cc(argv).line), 'client hit');
      const vouched = readFileSync(answer);
      assert.equal(vouched.length, before.length);
      assert.notDeepEqual(vouched, before);
      assert.equal(who(cc(argv).line), 'client hit');
      assert.deepEqual(readFileSync(answer), vouched);

      // New contents: the daemon compiles them.
      writeFileSync(join(proj, 'a.h'), '#define X 4\n');
      const want4 = plain(argv);
      const changed = cc(argv);
      assert.equal(who(changed.line), 'miss compile changed');
      assert.deepEqual(readFileSync(join(proj, 'a.o')), want4);
      // Back to the old contents: the old result, from the daemon, then
      // (once a.h is a second old and vouched for) from the client.
      writeFileSync(join(proj, 'a.h'), '#define X 3\n');
      assert.notEqual(who(cc(argv).line), 'client hit');
      await sleep(1100);
      assert.equal(who(cc(argv).line), 'hit direct fresh');
      const back = cc(argv);
      assert.equal(who(back.line), 'client hit');
      assert.equal(back.line.action, first.line.action);
      assert.deepEqual(readFileSync(join(proj, 'a.o')), want3);

      // The warning's blob gone from the server: not a remembered hit for
      // the daemon, so not an answer for the client either.
      const blob = blobHolding(join(dir.path, 'cache'), Buffer.from(first.stderr));
      assert.ok(blob !== undefined, 'the warning is a blob in the server cache');
      rmSync(blob);
      const gone = cc(argv);
      assert.notEqual(gone.line.native, true);
      assert.equal(gone.stderr, first.stderr);
      // Its checks no longer hold: the client removed it (and the daemon,
      // which had no remembered hit, wrote none), so no later run makes them in vain.
      assert.equal(existsSync(answerFile(argv)), false, 'the stale answer removed');
    } finally {
      await stop();
    }
  });

  it('hashes inputs of every padding length as the daemon does (SHA-256 in C)', async () => {
    await using dir = await tempDir();
    const { proj, cc, stop } = await rig(dir.path);
    try {
      // Sizes around SHA-256's 55/56/64-byte padding edges, and past the client's 64 KiB read.
      const sizes = [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 65_535, 65_536, 200_001];
      // Spaces and newlines: any length is a valid header.
      const includes = sizes.map((n) => {
        const text = Array.from({ length: n }, (_, i) => (i % 80 === 79 ? '\n' : ' ')).join('');
        writeFileSync(join(proj, `h${String(n)}.h`), text);
        return `#include "h${String(n)}.h"\n`;
      });
      for (const n of sizes) assert.equal(statSync(join(proj, `h${String(n)}.h`)).size, n);
      writeFileSync(join(proj, 'b.c'), `${includes.join('')}int b(void) { return 1; }\n`);
      const argv = ['gcc', '-c', 'b.c', '-o', 'b.o'];
      await sleep(1100);
      const first = cc(argv);
      assert.equal(first.status, 0, first.stderr);
      assert.equal(who(first.line), 'miss compile none');
      assert.equal(who(cc(argv).line), 'client hit');
      // Every header's stat changes: only hashes equal to Node's let the client answer.
      const later = new Date(Date.now() - 3000);
      for (const n of sizes) utimesSync(join(proj, `h${String(n)}.h`), later, later);
      assert.equal(who(cc(argv).line), 'client hit');
      // One byte changed in the largest (same size): the client must see it.
      const big = join(proj, 'h200001.h');
      const bytes = readFileSync(big);
      assert.equal(bytes[100_000], 0x20);
      bytes[100_000] = 0x09; // a tab for a space
      writeFileSync(big, bytes);
      utimesSync(big, later, later);
      assert.equal(who(cc(argv).line), 'miss compile changed');
    } finally {
      await stop();
    }
  });

  it('leaves it to the daemon when a header would now shadow one, or a compiler appears earlier on PATH', async () => {
    await using dir = await tempDir();
    const { proj, env, cc, plain, stop } = await rig(dir.path);
    try {
      mkdirSync(join(proj, 'sub'));
      mkdirSync(join(proj, 'inc'));
      mkdirSync(join(proj, 'bin'));
      writeFileSync(join(proj, 'inc', 'b.h'), '#define Y 1\n');
      writeFileSync(join(proj, 'sub', 'b.c'), '#include "b.h"\nint g(void) { return Y; }\n');
      const argv = ['gcc', '-Iinc', '-c', 'sub/b.c', '-o', 'b.o'];
      const path = { PATH: `${join(proj, 'bin')}:${env.PATH ?? '/usr/bin:/bin'}` };
      await sleep(1100);
      assert.equal(who(cc(argv, path).line), 'miss compile none');
      assert.equal(who(cc(argv, path).line), 'client hit');

      // sub/b.h comes before inc/b.h for a quoted include in sub/b.c.
      writeFileSync(join(proj, 'sub', 'b.h'), '#define Y 2\n');
      const want = plain(argv);
      const shadowed = cc(argv, path);
      assert.equal(shadowed.line.direct, 'shadowed');
      assert.equal(shadowed.line.outcome, 'miss');
      assert.notEqual(shadowed.line.native, true);
      assert.deepEqual(readFileSync(join(proj, 'b.o')), want);

      // A gcc in bin/, first on PATH: it is what the command runs (here,
      // as the action PATH does not reach it), not the cached result.
      await sleep(1100);
      assert.equal(who(cc(argv, path).line), 'hit direct fresh');
      assert.equal(who(cc(argv, path).line), 'client hit');
      const fake = join(proj, 'bin', 'gcc');
      writeFileSync(
        fake,
        `#!/bin/sh\necho fake > ${join(proj, 'ran-fake')}\nexec /usr/bin/gcc "$@"\n`,
      );
      chmodSync(fake, 0o755);
      // The daemon trusts its own lookup for a second; the client looks each time.
      assert.notEqual(cc(argv, path).line.native, true);
      await sleep(1100);
      const local = cc(argv, path);
      assert.equal(local.line.outcome, 'local');
      assert.equal(readFileSync(join(proj, 'ran-fake'), 'utf8'), 'fake\n');
    } finally {
      await stop();
    }
  });

  it("keys answers on the environment but make's own variables; SPECBUILD_NATIVE_HITS=0 turns it off", async () => {
    await using dir = await tempDir();
    const { proj, env, cc, stop } = await rig(dir.path);
    try {
      writeFileSync(join(proj, 'c.c'), 'int c(void) { return 2; }\n');
      const argv = ['gcc', '-c', 'c.c', '-o', 'c.o'];
      await sleep(1100);
      assert.equal(who(cc(argv, { MAKEFLAGS: ' -j1', MAKELEVEL: '1' }).line), 'miss compile none');
      assert.equal(who(cc(argv, { MAKEFLAGS: ' -j1', MAKELEVEL: '1' }).line), 'client hit');
      assert.equal(who(cc(argv, { MAKEFLAGS: ' -j2 --jobserver-auth=3,4' }).line), 'client hit');
      // Any other variable makes it another request.
      assert.equal(who(cc(argv, { SOMETHING_ELSE: '1' }).line), 'hit direct fresh');
      assert.equal(who(cc(argv, { SOMETHING_ELSE: '1' }).line), 'client hit');
      assert.equal(who(cc(argv, { SPECBUILD_NATIVE_HITS: '0' }).line), 'hit direct fresh');
      assert.equal(who(cc(argv, { SPECBUILD_NATIVE_HITS: '0' }).line), 'hit direct fresh');
      // A relative log is the command's, whether the daemon or the client writes the line.
      const rel = { SPECBUILD_WRAPPER_LOG: 'rel.log' };
      for (let i = 0; i < 2; i++)
        spawnSync(specbuildCc, argv, { cwd: proj, env: { ...env, ...rel }, stdio: 'ignore' });
      assert.deepEqual(readWrapperLog(join(proj, 'rel.log')).map(who), [
        'hit direct fresh',
        'client hit',
      ]);
    } finally {
      await stop();
    }
  });

  it('ignores a damaged or foreign answer, and one whose output blob is gone', async () => {
    await using dir = await tempDir();
    const { proj, cc, keyOf, answerFile, stop } = await rig(dir.path);
    try {
      writeFileSync(join(proj, 'd.c'), 'int d(void) { return 5; }\n');
      const argv = ['gcc', '-c', 'd.c', '-o', 'd.o'];
      await sleep(1100);
      cc(argv);
      assert.equal(who(cc(argv).line), 'client hit');
      const file = answerFile(argv);
      const key = keyOf(argv);
      const good = readFileSync(file);

      truncateSync(file, good.length - 3);
      assert.equal(who(cc(argv).line), 'hit direct fresh', 'a truncated answer is not used');
      assert.deepEqual(readFileSync(file), good, 'and the daemon wrote it again');
      assert.equal(who(cc(argv).line), 'client hit');

      // Another build's answer (its identity differs), otherwise well formed.
      writeFileSync(
        file,
        encodeAnswer('0000000000000000', key, {
          checks: [],
          outputs: [],
          stdout: new Uint8Array(),
          stderr: Buffer.from('from another build\n'),
          logHead: '',
          logTail: '',
        }),
      );
      const foreign = cc(argv);
      assert.equal(who(foreign.line), 'hit direct fresh');
      assert.equal(foreign.stderr, '');

      // The object's blob gone from the server's blob directory: the daemon answers.
      assert.equal(who(cc(argv).line), 'client hit');
      const object = readFileSync(join(proj, 'd.o'));
      const blob = blobHolding(join(dir.path, 'cache'), object);
      assert.ok(blob !== undefined, 'the object is a blob in the server cache');
      rmSync(blob);
      rmSync(join(proj, 'd.o'));
      const gone = cc(argv);
      assert.notEqual(gone.line.native, true);
      assert.equal(gone.status, 0);
      assert.deepEqual(readFileSync(join(proj, 'd.o')), object);

      // At the name of a command the daemon runs locally (and writes no
      // answer for): another build's answer and a damaged one are removed
      // by the client that read them; an answer of this build for another
      // request whose name collided is left.
      const local = ['gcc', '-E', 'd.c', '-o', 'd.i'];
      const at = answerFile(local);
      const emptyAnswer = {
        checks: [],
        outputs: [],
        stdout: new Uint8Array(),
        stderr: new Uint8Array(),
        logHead: '',
        logTail: '',
      };
      writeFileSync(at, encodeAnswer('0000000000000000', keyOf(local), emptyAnswer));
      assert.equal(cc(local).status, 0);
      assert.equal(existsSync(at), false, "another build's answer removed");
      writeFileSync(at, good.subarray(0, 20));
      assert.equal(cc(local).status, 0);
      assert.equal(existsSync(at), false, 'a damaged answer removed');
      const ours = good
        .subarray(4, 4 + 4 + good.readUInt32LE(4))
        .subarray(4)
        .toString();
      const collided = encodeAnswer(ours, Buffer.from('another request'), emptyAnswer);
      writeFileSync(at, collided);
      assert.equal(cc(local).status, 0);
      assert.deepEqual(readFileSync(at), collided, "another request's answer left");
    } finally {
      await stop();
    }
  });

  it('takes no answer from a directory others may write, nor with another assembler', async () => {
    await using dir = await tempDir();
    const { proj, sock, cc, env, stop } = await rig(dir.path);
    try {
      writeFileSync(join(proj, 'e.c'), 'int e(void) { return 6; }\n');
      const argv = ['gcc', '-c', 'e.c', '-o', 'e.o'];
      await sleep(1100);
      cc(argv);
      assert.equal(who(cc(argv).line), 'client hit');
      chmodSync(`${sock}.answers`, 0o777);
      assert.equal(who(cc(argv).line), 'hit direct fresh', 'a directory others may write');
      chmodSync(`${sock}.answers`, 0o700);
      assert.equal(who(cc(argv).line), 'client hit');

      // Another /usr/bin/as, seen only by this command (a private mount):
      // the toolchain the action's platform names is not the one answered for.
      // (Through sh, whose environment differs: answered once without it first.)
      const as = join(dir.path, 'as');
      writeFileSync(as, Buffer.concat([readFileSync('/usr/bin/as'), Buffer.from('changed')]));
      chmodSync(as, 0o755);
      const inNamespace = (mount: boolean): LogLine | undefined => {
        const script = `${mount ? `mount --bind "${as}" /usr/bin/as && ` : ''}exec "$0" "$@"`;
        const r = spawnSync('unshare', ['-m', 'sh', '-c', script, specbuildCc, ...argv], {
          cwd: proj,
          env,
          encoding: 'utf8',
        });
        assert.equal(r.status, 0, r.stderr);
        return readWrapperLog(join(dir.path, 'wrapper.log')).pop();
      };
      assert.notEqual(inNamespace(false)?.native, true);
      assert.equal(inNamespace(false)?.native, true);
      const other = inNamespace(true);
      assert.equal(other?.outcome, 'hit');
      assert.notEqual(other.native, true, 'not answered with another assembler');
      assert.equal(inNamespace(false)?.native, true);
      assert.equal(who(cc(argv).line), 'client hit', 'the real one again');
    } finally {
      await stop();
    }
  });

  it('takes no answer from before the server was emptied, though the output blob is back', async () => {
    await using dir = await tempDir();
    const first = await rig(dir.path);
    const argv = ['gcc', '-c', 'f.c', '-o', 'f.o'];
    try {
      writeFileSync(join(first.proj, 'f.c'), 'int f(void) { return 7; }\n');
      await sleep(1100);
      first.cc(argv);
      assert.equal(who(first.cc(argv).line), 'client hit');
    } finally {
      await first.stop();
    }
    // A new, empty server at the same address and blob directory.
    rmSync(join(dir.path, 'cache'), { recursive: true, force: true });
    rmSync(join(dir.path, 'p'), { recursive: true, force: true });
    const second = await rig(dir.path);
    try {
      writeFileSync(join(second.proj, 'f.c'), 'int f(void) { return 7; }\n');
      await sleep(1100);
      // Another command (an unused macro) stores the same object bytes.
      const twin = second.cc(['gcc', '-DUNUSED=1', '-c', 'f.c', '-o', 'f.o']);
      assert.equal(who(twin.line), 'miss compile none');
      const object = readFileSync(join(second.proj, 'f.o'));
      rmSync(join(second.proj, 'f.o'));
      const again = second.cc(argv);
      assert.notEqual(again.line.native, true, 'the server never stored this action');
      assert.deepEqual(readFileSync(join(second.proj, 'f.o')), object);
    } finally {
      await second.stop();
    }
  });

  it('answers after a miss whose inputs were just written (not vouched for: the client hashes them)', async () => {
    await using dir = await tempDir();
    const { proj, cc, stop } = await rig(dir.path);
    try {
      writeFileSync(join(proj, 'g.h'), '#define G 8\n');
      writeFileSync(join(proj, 'g.c'), '#include "g.h"\nint g(void) { return G; }\n');
      const argv = ['gcc', '-c', 'g.c', '-o', 'g.o'];
      assert.equal(who(cc(argv).line), 'miss compile none');
      assert.equal(who(cc(argv).line), 'client hit');
    } finally {
      await stop();
    }
  });
});
