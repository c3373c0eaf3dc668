// Proves an independent REAPI client (Python, published protos) works against `specbuild server`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { assertStopsCleanly, startCliServer, type CliServer } from '../helpers/cli-server.js';
import { repoRoot } from '../helpers/paths.js';
import { runProcess } from '../helpers/process.js';
import { onPath } from '../helpers/prereq.js';
import { tempDir } from '../helpers/tmp.js';

const python = '/usr/bin/python3';
const protoRoot = '/usr/src/bazel-bootstrap/third_party';
const clientScript = join(repoRoot, 'test', 'interop', 'reapi_client.py');
const installHint =
  'run .ci/run, or: apt-get install bazel-bootstrap-source protobuf-compiler python3-grpcio python3-protobuf';

const CLIENT_TIMEOUT_MS = 240_000;

interface Check {
  name: string;
  ok: boolean;
  detail: string;
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
    const r = await runProcess(python, ['-c', 'import grpc, google.protobuf'], pyOpts(30_000));
    if (r.code !== 0) missing.push(`python modules grpc/google.protobuf (${r.output.trim()})`);
  }
  assert.deepEqual(
    missing,
    [],
    `interop prerequisites missing: ${missing.join(', ')}; ${installHint}`,
  );
}

function pyOpts(timeoutMs: number): { timeoutMs: number; env: NodeJS.ProcessEnv } {
  return { timeoutMs, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } };
}

async function startServer(cacheDir: string, instance?: string): Promise<CliServer> {
  const server = await startCliServer(cacheDir, { instance });
  if (server.instance !== (instance ?? '')) {
    await server.stop();
    assert.fail(`server serves instance "${server.instance}", not "${instance ?? ''}"`);
  }
  return server;
}

async function runClientAgainst(instance: string | undefined): Promise<void> {
  await assertPrerequisites();
  await using dir = await tempDir();
  const server = await startServer(join(dir.path, 'cache'), instance);
  try {
    const args = [clientScript, server.address];
    if (instance !== undefined) args.push(instance);
    const r = await runProcess(python, args, pyOpts(CLIENT_TIMEOUT_MS));
    assert.equal(
      r.code,
      0,
      `reapi_client.py exited with code ${r.code} (signal ${r.signal}): ${r.output}`,
    );
    let checks: Check[];
    try {
      checks = (JSON.parse(r.stdout) as { checks: Check[] }).checks;
    } catch (e) {
      assert.fail(`reapi_client.py printed no JSON (${String(e)}): ${r.stdout}\n${r.output}`);
    }
    const failed = checks.filter((c) => !c.ok);
    assert.deepEqual(
      failed.map((c) => c.name),
      [],
      `failing interop checks:\n${failed.map((c) => `  ${c.name}: ${c.detail}`).join('\n')}\n` +
        `server stderr: ${server.output()}`,
    );
    assert.ok(
      checks.length >= 15,
      `expected at least 15 checks, got ${checks.length}: ${checks.map((c) => c.name).join(', ')}`,
    );
    await assertStopsCleanly(server);
  } finally {
    await server.stop(); // no-op once stopped
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
