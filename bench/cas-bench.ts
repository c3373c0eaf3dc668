// Measures `specbuild server`'s CAS throughput and memory against the issue's targets.

// `npm run bench:cas` starts the server as a separate process on a temporary
// cache directory, drives it over loopback with the real client library and
// prints one JSON line of figures on stdout (progress goes to stderr). Set
// BENCH_SERVER_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") to pass
// extra node flags to the server process when profiling.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RemoteEndpoint } from '../src/remote/index.js';
import {
  ContentAddressableStorage,
  DigestBuilder,
  digestOf,
  parseDigest,
  toPb,
  type Digest,
  type PbDigest,
} from '../src/reapi/index.js';
import { startCliServer, type CliServer } from '../test/helpers/cli-server.js';
import { logger } from './common.js';

const MIB = 1024 * 1024;
/** How long each timed phase runs. */
const PHASE_MS = 2500;
/** FindMissingBlobs: digests per call and calls in flight. */
const FIND_MISSING_DIGESTS = 1000;
const FIND_MISSING_CONCURRENCY = 8;
/** Batch calls in flight. */
const BATCH_CONCURRENCY = 4;
const STREAM_BYTES = 256 * MIB;
const RSS_BYTES = 1024 * MIB;
/** Size of each generated chunk of the streamed blobs. */
const GEN_CHUNK = MIB;
const RSS_POLL_MS = 50;

const log = logger('cas-bench');

function mbPerS(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000);
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

// ---------------------------------------------------------------- server process

type ServerProcess = CliServer;

function startServerProcess(cacheDir: string): Promise<ServerProcess> {
  // BENCH_SERVER_NODE_ARGS: e.g. --trace-gc, to see the server's collector at work.
  const nodeArgs = (process.env['BENCH_SERVER_NODE_ARGS'] ?? '')
    .split(/\s+/)
    .filter((a) => a !== '');
  return startCliServer(cacheDir, { nodeArgs });
}

async function stopServerProcess(s: ServerProcess): Promise<void> {
  const exit = await s.stop();
  if (exit.code !== 0) log(`server exited with ${JSON.stringify(exit)}:\n${s.output()}`);
  else if (process.env['BENCH_SERVER_NODE_ARGS'] !== undefined) log(s.output());
}

async function procStatusKb(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return m?.[1] === undefined ? 0 : Number(m[1]);
}

/** Polls a process's RSS until stopped; the peak is the larger of the polls and VmHWM. */
async function watchRss(pid: number): Promise<{ stop: () => Promise<number> }> {
  // Writing 5 to clear_refs resets VmHWM (Linux ≥ 4.0), so it covers only this phase.
  const hwmReset = await writeFile(`/proc/${pid}/clear_refs`, '5').then(
    () => true,
    () => false,
  );
  if (!hwmReset) log('cannot reset VmHWM; using the polled VmRSS only');
  let peakKb = 0;
  const poll = async (): Promise<void> => {
    peakKb = Math.max(peakKb, await procStatusKb(pid, 'VmRSS').catch(() => 0));
  };
  await poll();
  log(`  server RSS before: ${round1((peakKb * 1024) / 1e6)} MB`);
  const timer = setInterval(() => void poll(), RSS_POLL_MS);
  return {
    stop: async () => {
      clearInterval(timer);
      await poll();
      if (hwmReset) peakKb = Math.max(peakKb, await procStatusKb(pid, 'VmHWM').catch(() => 0));
      return (peakKb * 1024) / 1e6;
    },
  };
}

// ---------------------------------------------------------------- helpers

/** Runs `task` on `concurrency` workers until it returns false; returns elapsed ms. */
async function runWorkers(concurrency: number, task: () => Promise<boolean>): Promise<number> {
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (await task());
    }),
  );
  return performance.now() - start;
}

interface Blob {
  digest: Digest;
  data: Uint8Array;
}

/** `count` fresh random blobs of `size` bytes (one random buffer cut into views). */
function freshBlobs(count: number, size: number): Blob[] {
  const all = randomBytes(count * size);
  return Array.from({ length: count }, (_, i) => {
    const data = all.subarray(i * size, (i + 1) * size);
    return { data, digest: digestOf(data) };
  });
}

function randomDigest(size: number): Digest {
  return parseDigest(randomBytes(32).toString('hex'), size);
}

/**
 * A deterministic stream of `total` bytes, generated on the fly: four random
 * 1 MiB buffers in turn, each copy stamped with its chunk number so that no
 * two chunks are equal. Fresh copies are yielded because gRPC may serialise a
 * message some time after write() accepted it.
 */
function streamSource(total: number): () => Iterable<Uint8Array> {
  const bases = Array.from({ length: 4 }, () => randomBytes(GEN_CHUNK));
  return function* generate() {
    for (let off = 0, i = 0; off < total; off += GEN_CHUNK, i++) {
      const n = Math.min(GEN_CHUNK, total - off);
      const chunk = Buffer.allocUnsafe(n);
      (bases[i % bases.length] as Buffer).copy(chunk, 0, 0, n);
      chunk.writeUInt32BE(i, 0);
      yield chunk;
    }
  };
}

function asAsync<T>(items: Iterable<T>): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      const it = items[Symbol.iterator]();
      return { next: () => Promise.resolve(it.next()) };
    },
  };
}

function digestOfSource(source: () => Iterable<Uint8Array>): Digest {
  const b = new DigestBuilder();
  for (const chunk of source()) b.update(chunk);
  return b.digest();
}

// ---------------------------------------------------------------- phases

function checkStatuses(what: string, responses: { status?: { code: number; message: string } }[]) {
  for (const r of responses) {
    if ((r.status?.code ?? 0) !== 0) {
      throw new Error(`${what}: status ${r.status?.code ?? '?'} ${r.status?.message ?? ''}`);
    }
  }
}

/** BatchUpdateBlobs of fresh blobs for about PHASE_MS; returns MB/s and the stored batches. */
async function batchUpdate(
  ep: RemoteEndpoint,
  blobSize: number,
  perBatch: number,
  batchesPerRound: number,
): Promise<{ mbs: number; stored: Digest[][] }> {
  const stored: Digest[][] = [];
  let bytes = 0;
  let ms = 0;
  while (ms < PHASE_MS) {
    // Generating and hashing the blobs is not timed: only the calls are.
    const queue = Array.from({ length: batchesPerRound }, () => freshBlobs(perBatch, blobSize));
    ms += await runWorkers(BATCH_CONCURRENCY, async () => {
      const batch = queue.pop();
      if (batch === undefined) return false;
      const res = await ep.connection.unary(ContentAddressableStorage.method.batchUpdateBlobs, {
        instanceName: ep.instance,
        requests: batch.map((b) => ({ digest: toPb(b.digest), data: b.data })),
      });
      checkStatuses('BatchUpdateBlobs', res.responses);
      if (res.responses.length !== batch.length) throw new Error('BatchUpdateBlobs: short reply');
      bytes += batch.length * blobSize;
      stored.push(batch.map((b) => b.digest));
      return true;
    });
  }
  return { mbs: mbPerS(bytes, ms), stored };
}

/** BatchReadBlobs of stored batches, cycling over them, for about PHASE_MS. */
async function batchRead(ep: RemoteEndpoint, stored: Digest[][]): Promise<number> {
  const requests = stored.map((batch) => batch.map(toPb));
  let next = 0;
  let bytes = 0;
  const start = performance.now();
  const ms = await runWorkers(BATCH_CONCURRENCY, async () => {
    if (performance.now() - start >= PHASE_MS) return false;
    const digests = requests[next++ % requests.length] as PbDigest[];
    const res = await ep.connection.unary(ContentAddressableStorage.method.batchReadBlobs, {
      instanceName: ep.instance,
      digests,
    });
    checkStatuses('BatchReadBlobs', res.responses);
    if (res.responses.length !== digests.length) throw new Error('BatchReadBlobs: short reply');
    for (const r of res.responses) bytes += r.data.byteLength;
    return true;
  });
  return mbPerS(bytes, ms);
}

async function findMissing(ep: RemoteEndpoint, present: Digest[]): Promise<number> {
  // 16 distinct requests, each half present and half absent digests, shuffled.
  const requests = Array.from({ length: 16 }, (_, r) => {
    const half = FIND_MISSING_DIGESTS / 2;
    const ds: Digest[] = [];
    for (let i = 0; i < half; i++) ds.push(present[(r * half + i) % present.length] as Digest);
    for (let i = 0; i < half; i++) ds.push(randomDigest(4096));
    for (let i = ds.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [ds[i], ds[j]] = [ds[j] as Digest, ds[i] as Digest];
    }
    return ds.map(toPb);
  });
  let calls = 0;
  let next = 0;
  const start = performance.now();
  const ms = await runWorkers(FIND_MISSING_CONCURRENCY, async () => {
    if (performance.now() - start >= PHASE_MS) return false;
    const res = await ep.connection.unary(ContentAddressableStorage.method.findMissingBlobs, {
      instanceName: ep.instance,
      blobDigests: requests[next++ % requests.length] as PbDigest[],
    });
    if (res.missingBlobDigests.length !== FIND_MISSING_DIGESTS / 2) {
      throw new Error(`FindMissingBlobs: ${res.missingBlobDigests.length} missing, expected 500`);
    }
    calls++;
    return true;
  });
  return calls / (ms / 1000);
}

/** Writes a generated blob with writeStream and reads it back; returns both MB/s. */
async function streamRoundTrip(
  ep: RemoteEndpoint,
  total: number,
): Promise<{ writeMbs: number; readMbs: number }> {
  const source = streamSource(total);
  log(`  hashing ${total / MIB} MiB (not timed)`);
  const d = digestOfSource(source);
  let start = performance.now();
  await ep.cas.writeStream(d, asAsync(source()));
  const writeMs = performance.now() - start;
  log(`  write: ${round1(mbPerS(total, writeMs))} MB/s`);
  start = performance.now();
  let got = 0;
  for await (const chunk of ep.cas.readStream(d)) got += chunk.byteLength;
  const readMs = performance.now() - start;
  if (got !== total) throw new Error(`ByteStream Read returned ${got} of ${total} bytes`);
  log(`  read: ${round1(mbPerS(total, readMs))} MB/s`);
  return { writeMbs: mbPerS(total, writeMs), readMbs: mbPerS(total, readMs) };
}

// ---------------------------------------------------------------- main

/** Runs `fn` against a fresh server process on `cacheDir`, stopping it afterwards. */
async function withServer<T>(
  cacheDir: string,
  fn: (ep: RemoteEndpoint, server: ServerProcess) => Promise<T>,
): Promise<T> {
  const server = await startServerProcess(cacheDir);
  log(`server pid ${String(server.pid)} at ${server.address}`);
  let ep: RemoteEndpoint | undefined;
  try {
    ep = await RemoteEndpoint.connect({ target: server.address, callTimeoutMs: 120_000 });
    return await fn(ep, server);
  } finally {
    ep?.close();
    await stopServerProcess(server);
  }
}

async function logServerRss(server: ServerProcess): Promise<void> {
  const kb = await procStatusKb(server.pid, 'VmRSS').catch(() => 0);
  log(`  (server RSS now ${round1((kb * 1024) / 1e6)} MB)`);
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'specbuild-cas-bench-'));
  try {
    const figures = await withServer(join(dir, 'cache'), async (ep, server) => {
      log('BatchUpdateBlobs, 4 KiB blobs × 1000 per batch');
      const up4k = await batchUpdate(ep, 4096, 1000, 16);
      log(`  ${round1(up4k.mbs)} MB/s`);
      log('BatchReadBlobs, 4 KiB blobs × 1000 per batch');
      const read4k = await batchRead(ep, up4k.stored);
      log(`  ${round1(read4k)} MB/s`);
      await logServerRss(server);

      log(`FindMissingBlobs, ${FIND_MISSING_DIGESTS} digests per call`);
      const fm = await findMissing(ep, up4k.stored.flat());
      log(`  ${round1(fm)} calls/s`);

      log('BatchUpdateBlobs, 1 MiB blobs × 3 per batch');
      const up1m = await batchUpdate(ep, MIB, 3, 16);
      log(`  ${round1(up1m.mbs)} MB/s`);
      log('BatchReadBlobs, 1 MiB blobs × 3 per batch');
      const read1m = await batchRead(ep, up1m.stored);
      log(`  ${round1(read1m)} MB/s`);
      await logServerRss(server);

      log('ByteStream warm-up, 64 MiB blob (not reported)');
      await streamRoundTrip(ep, 64 * MIB);
      log(`ByteStream, ${STREAM_BYTES / MIB} MiB blob`);
      const bs = await streamRoundTrip(ep, STREAM_BYTES);
      await logServerRss(server);
      return {
        find_missing_calls_s: round1(fm),
        batch_update_4k_mb_s: round1(up4k.mbs),
        batch_read_4k_mb_s: round1(read4k),
        batch_update_1m_mb_s: round1(up1m.mbs),
        batch_read_1m_mb_s: round1(read1m),
        bytestream_write_mb_s: round1(bs.writeMbs),
        bytestream_read_mb_s: round1(bs.readMbs),
      };
    });

    // A fresh server, so that the figure is what streaming costs, not what the
    // batch phases above left on the server's heap.
    log(`ByteStream, ${RSS_BYTES / MIB} MiB blob on a fresh server, watching its RSS`);
    const rssMb = await withServer(join(dir, 'cache-rss'), async (ep, server) => {
      const watch = await watchRss(server.pid);
      try {
        await streamRoundTrip(ep, RSS_BYTES);
      } catch (e) {
        await watch.stop();
        throw e;
      }
      return watch.stop();
    });
    log(`  server peak RSS ${round1(rssMb)} MB`);

    console.log(JSON.stringify({ ...figures, server_rss_mb_1gib: round1(rssMb) }));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
