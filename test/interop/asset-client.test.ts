// Proves an independent Remote Asset client (Python, the published
// remote_asset.proto from Debian's Bazel sources) works against `specbuild server`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { assertStopsCleanly, startCliServer } from '../helpers/cli-server.js';
import { repoRoot } from '../helpers/paths.js';
import { assertPythonPrerequisites, runPythonChecks } from '../helpers/python-interop.js';
import { tempDir } from '../helpers/tmp.js';

const clientScript = join(repoRoot, 'test', 'interop', 'asset_client.py');
const PROTOS = [
  'remoteapis/build/bazel/remote/asset/v1/remote_asset.proto',
  'remoteapis/build/bazel/remote/execution/v2/remote_execution.proto',
  'googleapis/google/api/annotations.proto',
];

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

for (const instance of [undefined, 'team/ci']) {
  test(
    `python Remote Asset client interoperates with specbuild server (instance "${instance ?? ''}")`,
    { timeout: 180_000 },
    async () => {
      await assertPythonPrerequisites(clientScript, PROTOS);
      await using dir = await tempDir();
      const server = await startCliServer(join(dir.path, 'cache'), { instance, jobs: 0 });
      try {
        const checks = await runPythonChecks(
          clientScript,
          [server.address, ...(instance === undefined ? [] : [instance])],
          150_000,
          () => server.output(),
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
