// Proves an independent REAPI client (Python, published protos) works against `specbuild server`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { assertStopsCleanly, startCliServer, type CliServer } from '../helpers/cli-server.js';
import { repoRoot } from '../helpers/paths.js';
import { assertPythonPrerequisites, runPythonChecks } from '../helpers/python-interop.js';
import { tempDir } from '../helpers/tmp.js';

const clientScript = join(repoRoot, 'test', 'interop', 'reapi_client.py');
const PROTOS = [
  'remoteapis/build/bazel/remote/execution/v2/remote_execution.proto',
  'remoteapis/build/bazel/semver/semver.proto',
  'googleapis/google/bytestream/bytestream.proto',
];

const CLIENT_TIMEOUT_MS = 240_000;

async function startServer(cacheDir: string, instance?: string): Promise<CliServer> {
  const server = await startCliServer(cacheDir, { instance });
  if (server.instance !== (instance ?? '')) {
    await server.stop();
    assert.fail(`server serves instance "${server.instance}", not "${instance ?? ''}"`);
  }
  return server;
}

async function runClientAgainst(instance: string | undefined): Promise<void> {
  await assertPythonPrerequisites(clientScript, PROTOS);
  await using dir = await tempDir();
  const server = await startServer(join(dir.path, 'cache'), instance);
  try {
    const args = instance === undefined ? [server.address] : [server.address, instance];
    const checks = await runPythonChecks(clientScript, args, CLIENT_TIMEOUT_MS, () =>
      server.output(),
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
