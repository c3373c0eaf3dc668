// Artifact servers that project.conf recommends (`artifacts:`, as BuildStream
// 2 projects write it, or `artifacts: servers:`), used by `specbuild artifact
// push | pull` without --remote and without user configuration, after the
// user configuration's servers; and a wrong entry reported at
// project.conf:line:col. Real `specbuild server`s over TCP.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ran, specbuild } from '../helpers/cli-rig.js';
import { assertStopsCleanly, startCliServer } from '../helpers/cli-server.js';
import { ProjectRig } from '../helpers/project-rig.js';
import {
  checkedOutNotes,
  configure,
  NOTES,
  NOTES_PROJECT,
  notesKey,
} from '../helpers/share-rig.js';
import { tempDir } from '../helpers/tmp.js';

const TOKEN = 'project-token-0123456789';

/** NOTES_PROJECT with `lines` appended to its project.conf. */
function project(lines: string[]): Record<string, string> {
  return {
    ...NOTES_PROJECT,
    'project.conf': `${NOTES_PROJECT['project.conf']}${lines.join('\n')}\n`,
  };
}

const pushedLine = (key: string, url: string): string =>
  `pushed notes\\.bst \\(${key.slice(0, 8)}\\) to ${url}: \\d+ of \\d+ blobs sent, \\d+ bytes, 0 action results\\n`;
const pulledLine = (key: string, url: string): string =>
  `pulled notes\\.bst \\(${key.slice(0, 8)}\\) from ${url}: \\d+ blobs fetched, \\d+ bytes\\n`;

describe('artifact servers in project.conf', () => {
  it('are used without user configuration, in either shape, paths relative to the project', async () => {
    await using serverCache = await tempDir();
    await using secrets = await tempDir();
    const tokenFile = join(secrets.path, 'token');
    await writeFile(tokenFile, `${TOKEN}\n`);
    const server = await startCliServer(serverCache.path, {
      jobs: 0,
      args: ['--token-file', tokenFile],
    });
    try {
      const url = `grpc://${server.address}`;
      const auth = ['    auth:', '      access-token: secrets/token'];
      // BuildStream 2's shape: a list of servers.
      await using a = await ProjectRig.create({
        ...project(['artifacts:', `  - url: ${url}`, '    push: true', ...auth]),
        'secrets/token': `${TOKEN}\n`,
      });
      // The user configuration's shape, read-only.
      await using b = await ProjectRig.create({
        ...project(['artifacts:', '  servers:', `    - url: ${url}`, ...auth.map((l) => `  ${l}`)]),
        'secrets/token': `${TOKEN}\n`,
      });
      const built = await specbuild(a, ['build', 'notes.bst']);
      assert.equal(built.code, 0, ran(built));
      const key = await notesKey(a);
      assert.equal(await notesKey(b), key, 'servers in project.conf are not part of any key');

      const pushed = await specbuild(a, ['artifact', 'push', 'notes.bst']);
      assert.equal(pushed.code, 0, ran(pushed));
      assert.equal(pushed.stderr, '');
      assert.match(pushed.stdout, new RegExp(`^${pushedLine(key, url)}$`));

      const pulled = await specbuild(b, ['artifact', 'pull', 'notes.bst']);
      assert.equal(pulled.code, 0, ran(pulled));
      assert.equal(pulled.stderr, '');
      assert.match(pulled.stdout, new RegExp(`^${pulledLine(key, url)}$`));
      assert.equal(await checkedOutNotes(b), NOTES);

      // b's server is read-only (push defaults to false), as the user configuration's are.
      const readOnly = await specbuild(b, ['artifact', 'push', 'notes.bst']);
      assert.equal(readOnly.code, 1, ran(readOnly));
      assert.equal(
        readOnly.stderr,
        `warning: ${url} is read-only (push: false): nothing is pushed to it\nerror: no remote to push to: ${url} is read-only\n  hint: set push: true on an artifact server you may write to\n`,
      );
    } finally {
      await assertStopsCleanly(server);
    }
  });

  it("come after the user configuration's, a server in both kept once", async () => {
    await using userCache = await tempDir();
    await using projectCache = await tempDir();
    const userServer = await startCliServer(userCache.path, { jobs: 0 });
    const projectServer = await startCliServer(projectCache.path, { jobs: 0 });
    try {
      const mine = `grpc://${userServer.address}`;
      const theirs = `grpc://${projectServer.address}`;
      // The project lists its server first and the user's second: the user's comes first all the same.
      const files = project([
        'artifacts:',
        `- url: ${theirs}`,
        '  push: true',
        `- url: ${mine}`,
        '  push: true',
      ]);
      const userConfig = ['artifacts:', '  servers:', `  - url: ${mine}`, '    push: true'];
      await using a = await ProjectRig.create(files);
      await using b = await ProjectRig.create(files);
      await using c = await ProjectRig.create(files);
      // The build pushes to every writable server (here the project's two).
      const built = await specbuild(a, ['build', 'notes.bst']);
      assert.equal(built.code, 0, ran(built));
      assert.match(built.stdout, /^remotes: 0 pulled, 0 pulled for priming, 2 pushed$/m);
      const key = await notesKey(a);

      // B, with the user configuration, pulls from the user's server first.
      await configure(b, userConfig);
      const pulled = await specbuild(b, ['artifact', 'pull', 'notes.bst']);
      assert.equal(pulled.code, 0, ran(pulled));
      assert.match(pulled.stdout, new RegExp(`^${pulledLine(key, mine)}$`));

      // Pushing writes to each once, the user's first.
      await configure(a, userConfig);
      const pushed = await specbuild(a, ['artifact', 'push', 'notes.bst']);
      assert.equal(pushed.code, 0, ran(pushed));
      assert.match(
        pushed.stdout,
        new RegExp(`^${pushedLine(key, mine)}${pushedLine(key, theirs)}$`),
      );

      // C, without it, pulls from the project's first server.
      const first = await specbuild(c, ['artifact', 'pull', 'notes.bst']);
      assert.equal(first.code, 0, ran(first));
      assert.match(first.stdout, new RegExp(`^${pulledLine(key, theirs)}$`));
    } finally {
      await assertStopsCleanly(userServer);
      await assertStopsCleanly(projectServer);
    }
  });

  it('report a wrong entry at project.conf:line:col, naming the field', async () => {
    await using a = await ProjectRig.create(
      project([
        'artifacts:',
        '- url: cache.example.com:11001',
        '- url: grpcs://cache.example.com:11002',
        '  pusj: true',
        '  auth:',
        '    server-cert: certs/ca.pem',
      ]),
    );
    const r = await specbuild(a, ['artifact', 'pull', 'notes.bst']);
    assert.equal(r.code, 2, ran(r));
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      [
        'error: project.conf:5:8: artifacts[0].url "cache.example.com:11001" has no known scheme',
        ' 5 | - url: cache.example.com:11001',
        '   |        ^^^^^^^^^^^^^^^^^^^^^^^',
        '  hint: start it with grpc://, grpcs://, http://, https://, unix:',
        '',
        'error: project.conf:7:3: unknown key "pusj" in artifacts[1]',
        ' 7 |   pusj: true',
        '   |   ^^^^',
        '  hint: did you mean "push"?',
        '',
        `error: project.conf:9:18: artifacts[1].auth.server-cert: no file ${join(a.dir, 'certs', 'ca.pem')}`,
        ' 9 |     server-cert: certs/ca.pem',
        '   |                  ^^^^^^^^^^^^',
        `  hint: write the path of an existing file (relative to ${a.dir})`,
        '',
        '3 problems found',
        '',
      ].join('\n'),
    );
  });
});
