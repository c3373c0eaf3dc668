// `specbuild artifact push | pull` over TLS with a private CA, end to end: a
// throwaway CA signs the certificate of a real `specbuild server --tls-cert`,
// the user configuration names the CA (auth.server-cert), and a second
// machine (another cache) pulls what the first pushed. Without the CA the
// push fails at once, naming the remote and the key to set. With
// --tls-client-ca the server lets in only clients whose certificate
// (auth.client-cert, auth.client-key) that CA signed.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
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
import { makeCa } from '../helpers/tls-certs.js';
import { tempDir } from '../helpers/tmp.js';

describe('specbuild artifact push | pull over TLS', () => {
  it('pushes and pulls through a server whose certificate a private CA signed', async () => {
    await using certs = await tempDir('specbuild-ca-');
    await using serverCache = await tempDir();
    const ca = makeCa(certs.path);
    const serverCert = ca.issue('server', 'server');
    const server = await startCliServer(serverCache.path, {
      jobs: 0,
      args: ['--tls-cert', serverCert.cert, '--tls-key', serverCert.key],
    });
    try {
      const url = `grpcs://localhost:${server.address.split(':').pop() ?? ''}`;
      await using a = await ProjectRig.create(NOTES_PROJECT);
      await using b = await ProjectRig.create(NOTES_PROJECT);
      const built = await specbuild(a, ['build', 'notes.bst']);
      assert.equal(built.code, 0, ran(built));
      const key = await notesKey(a);

      // The system's CAs do not know ours: refused at once, the remote and the key named.
      const trusting = ['artifacts:', '  servers:', `  - url: ${url}`, '    push: true'];
      const file = await configure(a, trusting);
      const refused = await specbuild(a, ['artifact', 'push', 'notes.bst']);
      assert.equal(refused.code, 1, ran(refused));
      assert.equal(refused.stdout, '');
      assert.match(
        refused.stderr,
        new RegExp(
          `^error: ${url}: TLS handshake failed: the server's certificate is not trusted \\([^\\n]+\\)\\n` +
            `  hint: set auth\\.server-cert of artifacts\\.servers\\[0\\] in ${file} to the PEM certificate of the CA that signed the server's certificate\\n$`,
        ),
      );

      // With the CA (a path relative to the configuration file): pushed.
      const withCa = [...trusting, '    auth:', '      server-cert: ca.pem'];
      await configure(a, withCa, [ca.cert]);
      const pushed = await specbuild(a, ['artifact', 'push', 'notes.bst']);
      assert.equal(pushed.code, 0, ran(pushed));
      assert.equal(pushed.stderr, '');
      assert.match(
        pushed.stdout,
        new RegExp(
          `^pushed notes\\.bst \\(${key.slice(0, 8)}\\) to ${url}: \\d+ of \\d+ blobs sent, \\d+ bytes, 0 action results\\n$`,
        ),
      );

      // B, with an empty cache and the same configuration, pulls it.
      await configure(b, withCa, [ca.cert]);
      const pulled = await specbuild(b, ['artifact', 'pull', 'notes.bst']);
      assert.equal(pulled.code, 0, ran(pulled));
      assert.equal(pulled.stderr, '');
      assert.match(
        pulled.stdout,
        new RegExp(
          `^pulled notes\\.bst \\(${key.slice(0, 8)}\\) from ${url}: \\d+ blobs fetched, \\d+ bytes\\n$`,
        ),
      );
      assert.equal(await checkedOutNotes(b), NOTES);
      const again = await specbuild(b, ['artifact', 'pull', 'notes.bst']);
      assert.equal(again.code, 0, ran(again));
      assert.equal(again.stdout, `notes.bst (${key.slice(0, 8)}) is cached already\n`);
    } finally {
      await assertStopsCleanly(server);
    }
  });

  it('with --tls-client-ca, lets in clients whose certificate the CA signed, and only them', async () => {
    await using certs = await tempDir('specbuild-ca-');
    await using serverCache = await tempDir();
    const ca = makeCa(certs.path);
    const serverCert = ca.issue('server', 'server');
    const client = ca.issue('client', 'client');
    const server = await startCliServer(serverCache.path, {
      jobs: 0,
      args: [
        ...['--tls-cert', serverCert.cert, '--tls-key', serverCert.key],
        ...['--tls-client-ca', ca.cert],
      ],
    });
    try {
      const url = `grpcs://localhost:${server.address.split(':').pop() ?? ''}`;
      await using a = await ProjectRig.create(NOTES_PROJECT);
      await using b = await ProjectRig.create(NOTES_PROJECT);
      const built = await specbuild(a, ['build', 'notes.bst']);
      assert.equal(built.code, 0, ran(built));
      const key = await notesKey(a);

      // Trusting the server is not enough: it wants our certificate.
      const serverOnly = [
        ...['artifacts:', '  servers:', `  - url: ${url}`, '    push: true'],
        ...['    auth:', '      server-cert: ca.pem'],
      ];
      const file = await configure(a, serverOnly, [ca.cert]);
      const refused = await specbuild(a, ['artifact', 'push', 'notes.bst']);
      assert.equal(refused.code, 1, ran(refused));
      assert.equal(refused.stdout, '');
      assert.match(
        refused.stderr,
        new RegExp(
          `^error: ${url}: TLS handshake failed: the server requires a client certificate it trusts \\([^\\n]+\\)\\n` +
            `  hint: set auth\\.client-cert and auth\\.client-key of artifacts\\.servers\\[0\\] in ${file} to a certificate and key signed by a CA that the server trusts\\n$`,
        ),
      );

      // A certificate another CA signed is refused as well; grpc-js says no
      // more than "Failed to connect" then, so the error is a plain one.
      const mutual = [
        ...serverOnly,
        '      client-cert: client.pem',
        '      client-key: client.key',
      ];
      await mkdir(join(certs.path, 'other'));
      const stranger = makeCa(join(certs.path, 'other')).issue('client', 'client');
      await configure(a, mutual, [ca.cert, stranger.cert, stranger.key]);
      const strange = await specbuild(a, ['artifact', 'push', 'notes.bst']);
      assert.equal(strange.code, 1, ran(strange));
      assert.equal(strange.stdout, '');
      assert.ok(strange.stderr.startsWith(`error: ${url}: `), strange.stderr);

      // With the client certificate: A pushes, B (an empty cache) pulls.
      const files = [ca.cert, client.cert, client.key];
      await configure(a, mutual, files);
      const pushed = await specbuild(a, ['artifact', 'push', 'notes.bst']);
      assert.equal(pushed.code, 0, ran(pushed));
      assert.equal(pushed.stderr, '');
      assert.match(
        pushed.stdout,
        new RegExp(
          `^pushed notes\\.bst \\(${key.slice(0, 8)}\\) to ${url}: \\d+ of \\d+ blobs sent, \\d+ bytes, 0 action results\\n$`,
        ),
      );
      await configure(b, mutual, files);
      const pulled = await specbuild(b, ['artifact', 'pull', 'notes.bst']);
      assert.equal(pulled.code, 0, ran(pulled));
      assert.equal(pulled.stderr, '');
      assert.match(
        pulled.stdout,
        new RegExp(
          `^pulled notes\\.bst \\(${key.slice(0, 8)}\\) from ${url}: \\d+ blobs fetched, \\d+ bytes\\n$`,
        ),
      );
      assert.equal(await checkedOutNotes(b), NOTES);
    } finally {
      await assertStopsCleanly(server);
    }
  });
});
