// Proves an independent Remote Asset client (Python, the published
// remote_asset.proto from Debian's Bazel sources) works against `specbuild server`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { assertStopsCleanly, startCliServer } from '../helpers/cli-server.js';
import { repoRoot } from '../helpers/paths.js';
import { runProcess } from '../helpers/process.js';
import { onPath } from '../helpers/prereq.js';
import { tempDir } from '../helpers/tmp.js';

const python = '/usr/bin/python3';
const protoRoot = '/usr/src/bazel-bootstrap/third_party';
const clientScript = join(repoRoot, 'test', 'interop', 'asset_client.py');
const installHint =
  'run .ci/run, or: apt-get install bazel-bootstrap-source protobuf-compiler python3-grpcio python3-protobuf';

/** Every check the client makes, in its order: all must run, and pass. */
const CHECKS = [
  'generate_python_modules',
  'push_blob',
  'fetch_blob_round_trip',
  'fetch_blob_any_uri_any_qualifier_order',
  'fetch_blob_unknown_not_found',
  'fetch_blob_other_qualifier_value_not_found',
  'fetch_blob_subset_of_qualifiers_not_found',
  'fetch_blob_oldest_content_accepted',
  'push_blob_expired_not_found',
  'push_fetch_directory_round_trip',
  'push_blob_absent_content_invalid_argument',
  'push_directory_absent_tree_invalid_argument',
  'fetch_blob_without_uris_invalid_argument',
  'fetch_directory_duplicate_qualifier_names_invalid_argument',
  'push_blob_malformed_digest_invalid_argument',
  'fetch_blob_unknown_instance_invalid_argument',
  'fetch_blob_unchanged_after_refusals',
];

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
    'remoteapis/build/bazel/remote/asset/v1/remote_asset.proto',
    'remoteapis/build/bazel/remote/execution/v2/remote_execution.proto',
    'googleapis/google/api/annotations.proto',
  ]) {
    if (!existsSync(join(protoRoot, p))) missing.push(join(protoRoot, p));
  }
  if (missing.length === 0) {
    const r = await runProcess(python, ['-c', 'import grpc, google.protobuf'], {
      timeoutMs: 30_000,
    });
    if (r.code !== 0) missing.push(`python modules grpc/google.protobuf (${r.output.trim()})`);
  }
  assert.deepEqual(
    missing,
    [],
    `interop prerequisites missing: ${missing.join(', ')}; ${installHint}`,
  );
}

for (const instance of [undefined, 'team/ci']) {
  test(
    `python Remote Asset client interoperates with specbuild server (instance "${instance ?? ''}")`,
    { timeout: 180_000 },
    async () => {
      await assertPrerequisites();
      await using dir = await tempDir();
      const server = await startCliServer(join(dir.path, 'cache'), { instance, jobs: 0 });
      try {
        const args = [clientScript, server.address, ...(instance === undefined ? [] : [instance])];
        const r = await runProcess(python, args, {
          timeoutMs: 150_000,
          env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
        });
        assert.equal(r.code, 0, `asset_client.py exited with ${r.code} (${r.signal}): ${r.output}`);
        let checks: Check[];
        try {
          checks = (JSON.parse(r.stdout) as { checks: Check[] }).checks;
        } catch (e) {
          assert.fail(`asset_client.py printed no JSON (${String(e)}): ${r.stdout}\n${r.output}`);
        }
        const failed = checks.filter((c) => !c.ok);
        assert.deepEqual(
          failed.map((c) => c.name),
          [],
          `failing checks:\n${failed.map((c) => `  ${c.name}: ${c.detail}`).join('\n')}\n` +
            `server output: ${server.output()}`,
        );
        assert.deepEqual(
          checks.map((c) => c.name),
          CHECKS,
        );
        await assertStopsCleanly(server);
      } finally {
        await server.stop();
      }
    },
  );
}
