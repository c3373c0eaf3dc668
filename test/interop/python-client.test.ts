// Proves an independent REAPI client (Python, published protos) works against `specbuild server`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { repoRoot, cliMain } from '../helpers/paths.js';
import { tempDir } from '../helpers/tmp.js';

const python = '/usr/bin/python3';
const protoRoot = '/usr/src/bazel-bootstrap/third_party';
const clientScript = join(repoRoot, 'test', 'interop', 'reapi_client.py');
const installHint =
  'run .ci/run, or: apt-get install bazel-bootstrap-source protobuf-compiler python3-grpcio python3-protobuf';

const START_TIMEOUT_MS = 20_000;
const CLIENT_TIMEOUT_MS = 240_000;
const STOP_TIMEOUT_MS = 15_000;

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .some((dir) => dir !== '' && existsSync(join(dir, command)));
}

/** Fails (never skips) when the independent client's toolchain is not installed. */
async function assertPrerequisites(): Promise<void> {
  const missing: string[] = [];
  if (!existsSync(python)) missing.push(python);
  if (!onPath('protoc')) missing.push('protoc on PATH');
  for (const p of [
    'remoteapis/build/bazel/remote/execution/v2/remote_execution.proto',
    'remoteapis/build/bazel/semver/semver.proto',
    'googleapis/google/bytestream/bytestream.proto',
  ]) {
    if (!existsSync(join(protoRoot, p))) missing.push(join(protoRoot, p));
  }
  if (missing.length === 0 && !existsSync(clientScript)) missing.push(clientScript);
  if (missing.length === 0) {
    const r = await runProcess(python, ['-c', 'import grpc, google.protobuf'], 30_000);
    if (r.code !== 0) missing.push(`python modules grpc/google.protobuf (${r.stderr.trim()})`);
  }
  assert.deepEqual(
    missing,
    [],
    `interop prerequisites missing: ${missing.join(', ')}; ${installHint}`,
  );
}

interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runProcess(cmd: string, args: string[], timeoutMs: number): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      resolve({ code, signal, stdout, stderr });
    });
  });
}

interface ServerProcess {
  address: string;
  /** Sends SIGTERM and resolves with the exit code (null if it had to be killed). */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

function exited(
  child: ChildProcess,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    child.once('exit', (code, signal) => {
      resolve({ code, signal });
    });
  });
}

async function startServer(cacheDir: string, instance?: string): Promise<ServerProcess> {
  const args = [cliMain, 'server', '--listen', '127.0.0.1:0', '--cache-dir', cacheDir];
  if (instance !== undefined) args.push('--instance', instance);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const done = exited(child);
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const [address, served] = await new Promise<[string, string]>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`server did not report its address in ${START_TIMEOUT_MS} ms: ${stderr}`));
    }, START_TIMEOUT_MS);
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      stdout += s;
      const m = /^specbuild server listening on (\S+) \(instance "(.*)", cache .*\)$/m.exec(stdout);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        resolve([m[1], m[2] ?? '']);
      }
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    void done.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`server exited early (code ${code}, signal ${signal}): ${stderr}`));
    });
  }).catch((e: unknown) => {
    child.kill('SIGKILL');
    throw e;
  });
  if (served !== (instance ?? '')) {
    child.kill('SIGKILL');
    assert.fail(`server serves instance "${served}", not "${instance ?? ''}"`);
  }
  return {
    address,
    stderr: () => stderr,
    async stop() {
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => {
          resolve('timeout');
        }, STOP_TIMEOUT_MS);
      });
      const r = await Promise.race([done, timedOut]);
      clearTimeout(timer);
      if (r === 'timeout') {
        child.kill('SIGKILL');
        await done;
        return { code: null, signal: 'SIGKILL' };
      }
      return r;
    },
  };
}

async function runClientAgainst(instance: string | undefined): Promise<void> {
  await assertPrerequisites();
  await using dir = await tempDir();
  const server = await startServer(join(dir.path, 'cache'), instance);
  let stopped = false;
  try {
    const args = [clientScript, server.address];
    if (instance !== undefined) args.push(instance);
    const r = await runProcess(python, args, CLIENT_TIMEOUT_MS);
    assert.equal(
      r.code,
      0,
      `reapi_client.py exited with code ${r.code} (signal ${r.signal}): ${r.stderr}`,
    );
    let checks: Check[];
    try {
      checks = (JSON.parse(r.stdout) as { checks: Check[] }).checks;
    } catch (e) {
      assert.fail(`reapi_client.py printed no JSON (${String(e)}): ${r.stdout}\n${r.stderr}`);
    }
    const failed = checks.filter((c) => !c.ok);
    assert.deepEqual(
      failed.map((c) => c.name),
      [],
      `failing interop checks:\n${failed.map((c) => `  ${c.name}: ${c.detail}`).join('\n')}\n` +
        `server stderr: ${server.stderr()}`,
    );
    assert.ok(
      checks.length >= 15,
      `expected at least 15 checks, got ${checks.length}: ${checks.map((c) => c.name).join(', ')}`,
    );
    stopped = true;
    const exit = await server.stop();
    assert.deepEqual(
      exit,
      { code: 0, signal: null },
      `server did not stop cleanly on SIGTERM: ${server.stderr()}`,
    );
  } finally {
    if (!stopped) await server.stop();
  }
}

test(
  'python REAPI client interoperates with specbuild server (empty instance)',
  {
    timeout: 300_000,
  },
  async () => {
    await runClientAgainst(undefined);
  },
);

test(
  'python REAPI client interoperates with specbuild server (instance "team/ci")',
  {
    timeout: 300_000,
  },
  async () => {
    await runClientAgainst('team/ci');
  },
);
