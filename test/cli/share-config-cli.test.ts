// `specbuild artifact push | pull` through the remotes of the user
// configuration (artifacts.servers), between two machines (two cache and two
// configuration directories) and two real `specbuild server`s: one read-only
// mirror that is never written, one that requires an access token.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { artifactUrn } from '../../src/cas/index.js';
import { RemoteEndpoint } from '../../src/remote/index.js';
import { ran, specbuild } from '../helpers/cli-rig.js';
import { assertStopsCleanly, startCliServer, type CliServer } from '../helpers/cli-server.js';
import { PROJECT_CONF, ProjectRig } from '../helpers/project-rig.js';
import { tempDir } from '../helpers/tmp.js';

const TOKEN = 'sesame-0123456789';

const files = {
  'project.conf': PROJECT_CONF,
  'elements/hello.bst': [
    'kind: manual',
    'sources:',
    '- kind: local',
    '  path: hello-src',
    'config:',
    '  build-commands:',
    '  - gcc -o hello hello.c',
    '  install-commands:',
    '  - install -D hello %{install-root}%{bindir}/hello',
    '',
  ].join('\n'),
  'hello-src/hello.c': '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n',
};

/** Writes the rig's user configuration (and its token file beside it). */
async function configure(rig: ProjectRig, yaml: string): Promise<void> {
  const dir = join(rig.scratch, 'xdg-config', 'specbuild');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'token'), `${TOKEN}\n`);
  await writeFile(join(dir, 'specbuild.yaml'), yaml);
}

/** Whether the server's asset index names the artifact. */
async function knows(server: CliServer, key: string, tokenFile?: string): Promise<boolean> {
  const ep = await RemoteEndpoint.connect({ target: server.address, tokenFile });
  try {
    return (await ep.assets.fetchBlob({ uris: [artifactUrn('test', 'hello', key)] })) !== undefined;
  } finally {
    ep.close();
  }
}

describe('specbuild artifact push | pull with artifacts.servers', () => {
  it('pushes to the writable servers only, pulls from the first that has it, needs the token', async () => {
    await using mirrorCache = await tempDir();
    await using cacheCache = await tempDir();
    await using secrets = await tempDir();
    const tokenFile = join(secrets.path, 'token');
    await writeFile(tokenFile, `${TOKEN}\n`);
    const mirror = await startCliServer(mirrorCache.path);
    const cache = await startCliServer(cacheCache.path, { args: ['--token-file', tokenFile] });
    try {
      const servers = [
        'artifacts:',
        '  servers:',
        `  - url: grpc://${mirror.address}`,
        `  - url: grpc://${cache.address}`,
        '    push: true',
        '    auth:',
        '      access-token: token',
        '',
      ].join('\n');
      await using a = await ProjectRig.create(files);
      await using b = await ProjectRig.create(files);
      await configure(a, servers);
      await configure(b, servers);

      const built = await specbuild(a, ['build', 'hello.bst']);
      assert.equal(built.code, 0, ran(built));
      const shown = await specbuild(a, [
        'show',
        '--deps',
        'none',
        '--format',
        '%{full-key}',
        'hello.bst',
      ]);
      const key = shown.stdout.trim();
      // The build itself pushed to the writable server (with the token), not to the mirror.
      assert.match(built.stdout, /^remotes: 0 pulled, 0 pulled for priming, 1 pushed$/m);
      assert.equal(await knows(cache, key, tokenFile), true);
      assert.equal(await knows(mirror, key), false, 'the read-only mirror is never written');

      // Without the token the server refuses the push (--remote: one-off, no auth).
      const refused = await specbuild(a, [
        'artifact',
        'push',
        '--remote',
        cache.address,
        'hello.bst',
      ]);
      assert.equal(refused.code, 1, ran(refused));
      assert.equal(refused.stderr, `error: ${cache.address}: missing or wrong bearer token\n`);

      // With the configuration: the token is sent, the mirror only warned about.
      const pushed = await specbuild(a, ['artifact', 'push', 'hello.bst']);
      assert.equal(pushed.code, 0, ran(pushed));
      assert.equal(
        pushed.stderr,
        `warning: grpc://${mirror.address} is read-only (push: false): nothing is pushed to it\n`,
      );
      assert.match(
        pushed.stdout,
        new RegExp(
          `^pushed hello\\.bst \\(${key.slice(0, 8)}\\) to grpc://${cache.address}: \\d+ of \\d+ blobs sent, \\d+ bytes, 0 action results\\n$`,
        ),
      );
      assert.equal(await knows(cache, key, tokenFile), true);
      assert.equal(await knows(mirror, key), false, 'the read-only mirror is never written');

      // B pulls: the mirror misses, the token server has it.
      const pulled = await specbuild(b, ['artifact', 'pull', 'hello.bst']);
      assert.equal(pulled.code, 0, ran(pulled));
      assert.match(
        pulled.stdout,
        new RegExp(
          `^pulled hello\\.bst \\(${key.slice(0, 8)}\\) from grpc://${cache.address}: \\d+ blobs fetched, \\d+ bytes\\n$`,
        ),
      );
      const state = await specbuild(b, [
        'show',
        '--deps',
        'none',
        '--format',
        '%{state}',
        'hello.bst',
      ]);
      assert.equal(state.stdout.trim(), 'cached');

      // No --remote and no servers: a clear error.
      await using c = await ProjectRig.create(files);
      const none = await specbuild(c, ['artifact', 'pull', 'hello.bst']);
      assert.equal(none.code, 2, ran(none));
      assert.equal(
        none.stderr,
        'error: no artifact remote to pull\n  hint: name one (specbuild artifact pull --remote HOST:PORT ELEMENT) or list them under artifacts: servers: in the user configuration, or under artifacts: in project.conf\n',
      );
    } finally {
      await assertStopsCleanly(mirror);
      await assertStopsCleanly(cache);
    }
  });
});
