// A server on this machine whose store has no quota says its client may
// write blobs and action results as files itself (DIRECT_STORE_HEADER): a
// miss compiled here then reaches the server with no call at all, and the
// server serves what was written as its own. With a quota, over TCP, or
// through a recording session, every write still goes through the server.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { create, fromBinary } from '@bufbuild/protobuf';
import { actionEntryPath, LocalActionCache, LocalCas } from '../../src/cas/index.js';
import {
  ActionResultSchema,
  ActionSchema,
  digestOf,
  EMPTY_DIGEST,
  fromPb,
  parseDigestString,
  toPb,
  type Digest,
} from '../../src/reapi/index.js';
import { RemoteEndpoint } from '../../src/remote/index.js';
import { RecordingSession, startServer } from '../../src/server/index.js';
import { ObjectsDirCas, storeActionCache, storeCas } from '../../src/wrap/index.js';
import { startCliServer, type CliServer } from '../helpers/cli-server.js';
import { readWrapperLog, specbuildCc } from '../helpers/cproject.js';
import { stopDaemonsUnder } from '../helpers/daemons.js';
import { runProcess } from '../helpers/process.js';
import { startFixture, type ServerFixture } from '../helpers/server-fixture.js';
import { tempDir } from '../helpers/tmp.js';

/** Counts the writes that reach the server's own store (every path a gRPC write takes). */
function countWrites(cas: LocalCas, ac: LocalActionCache): { blobs: number; results: number } {
  const n = { blobs: 0, results: 0 };
  const writeBlob = cas.writeBlob.bind(cas);
  const beginUpload = cas.beginUpload.bind(cas);
  const update = ac.updateActionResult.bind(ac);
  cas.writeBlob = (data, opts) => {
    n.blobs++;
    return writeBlob(data, opts);
  };
  cas.beginUpload = (d) => {
    n.blobs++;
    return beginUpload(d);
  };
  ac.updateActionResult = (d, r, opts) => {
    n.results++;
    return update(d, r, opts);
  };
  return n;
}

/** The hashes of the blob files under `objects` (temporary files not counted), sorted. */
function blobFiles(objects: string): string[] {
  const all: string[] = [];
  for (const shard of readdirSync(objects))
    for (const name of readdirSync(join(objects, shard)))
      if (!name.startsWith('.tmp-')) all.push(name);
  return all.sort();
}

/**
 * Compiles `a.c` in `proj` through specbuild-cc against `f`'s server (a
 * daemon with its socket and caches under `dir`); the log line.
 */
async function compileThrough(f: ServerFixture, proj: string, dir: string) {
  const log = join(dir, 'wrapper.log');
  const r = await runProcess(specbuildCc, ['gcc', '-O2', '-c', 'a.c', '-o', 'a.o'], {
    timeoutMs: 60_000,
    cwd: proj,
    env: {
      ...process.env,
      SPECBUILD_SERVER: f.server.address,
      SPECBUILD_DAEMON_SOCKET: join(dir, 'daemon.sock'),
      XDG_CACHE_HOME: join(dir, 'xdg'),
      SPECBUILD_WRAPPER_LOG: log,
    },
  });
  assert.equal(r.code, 0, r.output);
  const line = readWrapperLog(log).pop();
  assert.ok(line !== undefined);
  return line;
}

describe('the direct store (a server on this machine without a quota)', () => {
  it('is offered through a unix socket by a store without a quota, and only then', async () => {
    await using dir = await tempDir();
    const unix = await startCliServer(join(dir.path, 'cache'), {
      listen: `unix:${join(dir.path, 'reapi.sock')}`,
    });
    const quota = await startCliServer(join(dir.path, 'cache-quota'), {
      listen: `unix:${join(dir.path, 'reapi-quota.sock')}`,
      args: ['--quota', '100M'],
    });
    const tcp = await startCliServer(join(dir.path, 'cache-tcp'));
    try {
      const a = await RemoteEndpoint.connect({ target: unix.address });
      assert.equal(a.localActionCache, realpathSync(join(dir.path, 'cache', 'ac')));
      assert.equal(storeActionCache(a), storeActionCache(a), 'one per endpoint');
      assert.notEqual(storeActionCache(a), a.actionCache);
      a.close();
      // A quota must account every blob: its blob directory is read, never written.
      const b = await RemoteEndpoint.connect({ target: quota.address });
      assert.equal(b.localObjects, realpathSync(join(dir.path, 'cache-quota', 'cas', 'objects')));
      assert.equal(b.localActionCache, undefined);
      assert.equal(storeActionCache(b), b.actionCache);
      b.close();
      const c = await RemoteEndpoint.connect({ target: tcp.address });
      assert.equal(c.localActionCache, undefined);
      c.close();
    } finally {
      await unix.stop();
      await quota.stop();
      await tcp.stop();
    }
  });

  it('is not offered by a recording session: every result an element build stores must pass through it', async () => {
    await using f = await startFixture('unix');
    const session = new RecordingSession({ cas: f.cas, ac: f.ac });
    // A server over the session's stores, as an element build's sandbox reaches it.
    const server = await startServer({
      listen: `unix:${join(f.dir.path, 'session.sock')}`,
      instances: new Map([['', session.stores]]),
    });
    const ep = await RemoteEndpoint.connect({ target: server.address });
    try {
      // Its blob directory is named (readable here) but its action cache, the session's, has none.
      assert.equal(ep.localObjects, realpathSync(join(f.dir.path, 'cache', 'cas', 'objects')));
      assert.equal(ep.localActionCache, undefined);
      assert.equal(storeActionCache(ep), ep.actionCache);
      // The store itself would be written directly: the session is what withholds it.
      assert.equal(f.endpoint.localActionCache, realpathSync(join(f.dir.path, 'cache', 'ac')));
    } finally {
      ep.close();
      await server.close();
    }
  });

  it('is asked for again when the server comes back: a daemon never writes into a directory it left', async () => {
    await using dir = await tempDir();
    const proj = join(dir.path, 'p');
    mkdirSync(proj);
    const sock = join(dir.path, 'reapi.sock');
    const env = {
      ...process.env,
      SPECBUILD_SERVER: `unix:${sock}`,
      SPECBUILD_DAEMON_SOCKET: join(dir.path, 'daemon.sock'),
      XDG_CACHE_HOME: join(dir.path, 'xdg'),
      SPECBUILD_WRAPPER_LOG: join(dir.path, 'wrapper.log'),
      // One worker thread: both compiles reach the same endpoint (each thread has its own).
      SPECBUILD_DAEMON_WORKERS: '1',
    };
    const compile = async (src: string) => {
      writeFileSync(join(proj, `${src}.c`), `int ${src}(void) { return 7; }\n`);
      const r = await runProcess(specbuildCc, ['gcc', '-c', `${src}.c`, '-o', `${src}.o`], {
        timeoutMs: 60_000,
        cwd: proj,
        env,
      });
      assert.equal(r.code, 0, r.output);
      const line = readWrapperLog(join(dir.path, 'wrapper.log')).pop();
      assert.deepEqual([line?.outcome, line?.deps], ['miss', 'compile']);
      return parseDigestString(line?.action ?? '');
    };
    const stored = async (cacheDir: string, action: Digest): Promise<boolean> => {
      const cas = await LocalCas.open({ dir: cacheDir });
      const ac = await LocalActionCache.open(cacheDir, cas);
      return (await ac.getActionResult(action)) !== undefined;
    };
    const first = await startCliServer(join(dir.path, 'cache1'), { listen: `unix:${sock}` });
    let second: CliServer | undefined;
    try {
      const a = await compile('a');
      await first.stop();
      // The same address, another cache directory (with a quota it would be the same story).
      second = await startCliServer(join(dir.path, 'cache2'), { listen: `unix:${sock}` });
      const b = await compile('b');
      assert.deepEqual(
        [
          await stored(join(dir.path, 'cache1'), a),
          await stored(join(dir.path, 'cache2'), b),
          await stored(join(dir.path, 'cache1'), b),
        ],
        [true, true, false],
      );
    } finally {
      await stopDaemonsUnder(dir.path);
      await second?.stop();
      await first.stop();
    }
  });

  it('stores blobs and results as files the server then serves, with no call to it', async () => {
    await using f = await startFixture('unix');
    const writes = countWrites(f.cas, f.ac);
    const ep = f.endpoint;
    assert.equal(ep.localActionCache, realpathSync(join(f.dir.path, 'cache', 'ac')));
    const blobs = [Buffer.from('int x;\n'), Buffer.alloc(0), Buffer.alloc(200_000, 7)];
    const ds = await storeCas(ep).writeBlobs(blobs);
    assert.deepEqual(ds, blobs.map(digestOf));
    const [x, empty, big] = ds as [Digest, Digest, Digest];
    const action = digestOf(Buffer.from('an action'));
    const result = create(ActionResultSchema, { exitCode: 0, stdoutDigest: toPb(x) });
    result.outputFiles.push({
      $typeName: 'build.bazel.remote.execution.v2.OutputFile',
      path: 'big.o',
      digest: toPb(big),
      isExecutable: false,
      contents: new Uint8Array(0),
    });
    await storeActionCache(ep).updateActionResult(action, result);
    assert.deepEqual(writes, { blobs: 0, results: 0 });
    // The server has them, as if it had written them.
    assert.deepEqual(await ep.cas.findMissingBlobs([x, empty, big]), []);
    assert.deepEqual(await ep.cas.readBlob(big), blobs[2]);
    const got = await ep.actionCache.getActionResult(action);
    assert.ok(got !== undefined);
    assert.deepEqual(
      got.outputFiles.map((o) => [o.path, o.digest]),
      [['big.o', toPb(big)]],
    );
    assert.deepEqual(got.stdoutDigest, toPb(x));
    // Where the server keeps them, and no temporary file beside them.
    const acDir = join(f.dir.path, 'cache', 'ac');
    assert.ok(readFileSync(actionEntryPath(acDir, action)).byteLength > 0);
    assert.deepEqual(readdirSync(join(acDir, 'tmp')), []);
    const shard = join(f.dir.path, 'cache', 'cas', 'objects', big.hash.slice(0, 2));
    assert.deepEqual(
      readdirSync(shard).filter((n) => n.startsWith('.tmp-')),
      [],
    );
  });

  it('falls back to the server when a file cannot be written', async () => {
    await using f = await startFixture('unix');
    const writes = countWrites(f.cas, f.ac);
    // A blob directory that is not there: the write fails, the server is asked.
    const cas = new ObjectsDirCas(f.endpoint.cas, join(f.dir.path, 'no-such', 'objects'), true);
    const blob = Buffer.from('int y;\n');
    assert.deepEqual(await cas.writeBlobs([blob]), [digestOf(blob)]);
    assert.equal(writes.blobs, 1);
    assert.deepEqual(await f.cas.findMissingBlobs([digestOf(blob)]), []);
  });

  it('takes no call to the server for a miss compiled here, and stores no inputs; with a quota, the server writes them too', async () => {
    await using dir = await tempDir();
    const proj = join(dir.path, 'p');
    mkdirSync(proj);
    writeFileSync(join(proj, 'a.c'), '#include <stdio.h>\nint f(void) { return puts("a"); }\n');
    const stored: string[][] = [];
    for (const quotaBytes of [undefined, 100 << 20]) {
      await using f = await startFixture('unix', { quotaBytes, executes: true });
      const writes = countWrites(f.cas, f.ac);
      try {
        rmSync(join(proj, 'a.o'), { force: true });
        // A new daemon, with no memory of the other run.
        const daemonDir = join(dir.path, String(stored.length));
        mkdirSync(daemonDir);
        const line = await compileThrough(f, proj, daemonDir);
        assert.deepEqual([line.outcome, line.deps], ['miss', 'compile']);
        const action = parseDigestString(line.action);
        const result = await f.ac.getActionResult(action);
        const object = readFileSync(join(proj, 'a.o'));
        assert.deepEqual(
          result?.outputFiles.map((o) => o.digest),
          [toPb(digestOf(object))],
        );
        const objects = join(f.dir.path, 'cache', 'cas', 'objects');
        const blobs = blobFiles(objects);
        stored.push(blobs);
        const message = fromBinary(
          ActionSchema,
          readFileSync(join(objects, action.hash.slice(0, 2), action.hash)),
        );
        const command = fromPb(message.commandDigest);
        const inputRoot = fromPb(message.inputRootDigest);
        // The action, its command and its object (and the empty blob, which
        // a store makes when it opens, and which is what it printed).
        const kept = [EMPTY_DIGEST, action, command, digestOf(object)].map((d) => d.hash).sort();
        if (quotaBytes === undefined) {
          // Written directly: those and nothing else, with no call to the server.
          assert.deepEqual(blobs, kept);
          assert.deepEqual(writes, { blobs: 0, results: 0 });
        } else {
          // Through the server: the inputs too (the source, the input root, the headers' tree).
          const source = digestOf(readFileSync(join(proj, 'a.c')));
          for (const h of [...kept, source.hash, inputRoot.hash]) assert.ok(blobs.includes(h), h);
          assert.deepEqual(writes, { blobs: blobs.length - 1, results: 1 });
        }
        // No temporary file left behind.
        assert.deepEqual(readdirSync(join(f.dir.path, 'cache', 'ac', 'tmp')), []);
      } finally {
        await stopDaemonsUnder(dir.path);
      }
    }
    // The same action either way; the server's store holds its inputs besides (stdio.h's among them).
    const [direct, served] = stored;
    assert.ok(direct !== undefined && served !== undefined);
    assert.deepEqual(
      direct.filter((h) => !served.includes(h)),
      [],
    );
    assert.ok(served.length >= direct.length + 5, `${String(served.length)} blobs`);
  });
});
