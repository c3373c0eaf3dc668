// The remotes of the user configuration (artifacts.servers, remote-execution)
// and the artifact servers of project.conf: what a correct file yields, and
// the exact error for each kind of mistake, placed at file:line:col.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseProjectArtifacts } from '../../src/cli/remote-config.js';
import { loadUserConfig, type UserConfig } from '../../src/cli/user-config.js';
import { Diagnostics } from '../../src/core/index.js';
import { parseYaml } from '../../src/project/index.js';
import { tempDir } from '../helpers/tmp.js';

interface Problem {
  code: string;
  message: string;
  at: string;
  hint: string | undefined;
}

async function load(
  dir: string,
  text: string,
): Promise<{ ok: true; value: UserConfig } | { ok: false; problems: Problem[] }> {
  const file = join(dir, 'specbuild', 'specbuild.yaml');
  await mkdir(join(dir, 'specbuild'), { recursive: true });
  await writeFile(file, text);
  const r = await loadUserConfig(undefined, { XDG_CONFIG_HOME: dir });
  if (r.ok) return r;
  return {
    ok: false,
    problems: r.errors.map((e) => ({
      code: e.code,
      message: e.message,
      at: `${e.location?.line}:${e.location?.col}`,
      hint: e.hint,
    })),
  };
}

describe('user configuration: remotes', () => {
  it('reads artifacts.servers and remote-execution, paths relative to the file', async () => {
    await using t = await tempDir();
    await mkdir(join(t.path, 'specbuild', 'certs'), { recursive: true });
    for (const f of ['ca.pem', 'client.pem', 'client.key', 'token'])
      await writeFile(join(t.path, 'specbuild', 'certs', f), 'x\n');
    const r = await load(
      t.path,
      [
        'artifacts:',
        '  servers:',
        '  - url: grpcs://cache.example.com:11002',
        '    push: true',
        '    instance-name: main',
        '    auth:',
        '      server-cert: certs/ca.pem',
        '      client-cert: certs/client.pem',
        '      client-key: certs/client.key',
        '      access-token: certs/token',
        '  - url: http://mirror.example.com:8080',
        'remote-execution:',
        '  execution-service:',
        '    url: unix:/run/reapi.sock',
        '    instance-name: cluster',
        '  storage-service:',
        '    url: grpc://cas.example.com:50051',
        '  jobs: 64',
        '  platform:',
        '    OSFamily: linux',
        '    container-image: docker://gcc@sha256:0123',
        '',
      ].join('\n'),
    );
    assert.ok(r.ok, JSON.stringify(r));
    const certs = join(t.path, 'specbuild', 'certs');
    const file = join(t.path, 'specbuild', 'specbuild.yaml');
    assert.deepEqual(r.value.artifactServers, [
      {
        url: 'grpcs://cache.example.com:11002',
        push: true,
        instanceName: 'main',
        auth: {
          serverCert: join(certs, 'ca.pem'),
          clientCert: join(certs, 'client.pem'),
          clientKey: join(certs, 'client.key'),
          accessToken: join(certs, 'token'),
        },
        origin: `artifacts.servers[0] in ${file}`,
      },
      {
        url: 'http://mirror.example.com:8080',
        push: false,
        auth: {},
        origin: `artifacts.servers[1] in ${file}`,
      },
    ]);
    assert.deepEqual(r.value.remoteExecution, {
      jobs: 64,
      platform: [
        ['OSFamily', 'linux'],
        ['container-image', 'docker://gcc@sha256:0123'],
      ],
      executionService: { url: 'unix:/run/reapi.sock', instanceName: 'cluster', auth: {} },
      storageService: { url: 'grpc://cas.example.com:50051', auth: {} },
    });
  });

  it('reports every mistake with its place, the key and what to do', async () => {
    await using t = await tempDir();
    const dir = join(t.path, 'specbuild');
    const r = await load(
      t.path,
      [
        'artifact:',
        '  servers: []',
        'artifacts:',
        '  servers:',
        '  - url: cache.example.com:11001',
        '    push: maybe',
        '  - url: grpcs://cache.example.com:11002',
        '    instance-nam: main',
        '    auth:',
        '      server-cert: ca.pem',
        '      client-cert: client.pem',
        '  - push: true',
        '  - oops',
        '  - url: grpc://no-port',
        'remote-execution:',
        '  execution-service:',
        '    url: ftp://x:1',
        '  storage-service: [1]',
        '  action-cache:',
        '    url: grpc://x:1',
        '  jobs: many',
        '  platform:',
        '    bad key: x86-64',
        '',
      ].join('\n'),
    );
    assert.ok(!r.ok);
    assert.deepEqual(r.problems, [
      {
        code: 'load/unknown-key',
        message: `unknown key "artifact" in ${join(dir, 'specbuild.yaml')}`,
        at: '1:1',
        hint: 'did you mean "artifacts"?',
      },
      {
        code: 'load/invalid-value',
        message: 'artifacts.servers[0].url "cache.example.com:11001" has no known scheme',
        at: '5:10',
        hint: 'start it with grpc://, grpcs://, http://, https://, unix:',
      },
      {
        code: 'load/invalid-value',
        message: 'artifacts.servers[0].push: "maybe" is not a boolean',
        at: '6:11',
        hint: 'write true or false',
      },
      {
        code: 'load/unknown-key',
        message: 'unknown key "instance-nam" in artifacts.servers[1]',
        at: '8:5',
        hint: 'did you mean "instance-name"?',
      },
      {
        code: 'load/missing-file',
        message: `artifacts.servers[1].auth.server-cert: no file ${join(dir, 'ca.pem')}`,
        at: '10:20',
        hint: `write the path of an existing file (relative to ${dir})`,
      },
      {
        code: 'load/missing-file',
        message: `artifacts.servers[1].auth.client-cert: no file ${join(dir, 'client.pem')}`,
        at: '11:20',
        hint: `write the path of an existing file (relative to ${dir})`,
      },
      {
        code: 'load/invalid-value',
        message: 'artifacts.servers[1].auth: client-cert and client-key go together',
        at: '10:7',
        hint: undefined,
      },
      {
        code: 'load/missing-key',
        message: 'artifacts.servers[2]: url is missing',
        at: '12:5',
        hint: 'e.g. url: grpcs://cache.example.com:11002',
      },
      {
        code: 'load/wrong-type',
        message: 'artifacts.servers[3] must be a mapping, not a string',
        at: '13:5',
        hint: undefined,
      },
      {
        code: 'load/invalid-value',
        message: 'artifacts.servers[4].url: remote target "grpc://no-port": expected HOST:PORT',
        at: '14:10',
        hint: 'use HOST:PORT, grpc://HOST:PORT, grpcs://HOST:PORT or unix:/path/to.sock',
      },
      {
        code: 'load/unknown-key',
        message: 'unknown key "action-cache" in remote-execution',
        at: '19:3',
        hint: 'allowed keys: execution-service, storage-service, action-cache-service, jobs, platform',
      },
      {
        code: 'load/invalid-value',
        message:
          'remote-execution.platform.bad key: a property is NAME: VALUE, the name of letters, digits, _ . -, the value without a comma',
        at: '23:14',
        hint: 'e.g. platform: {OSFamily: linux, ISA: x86-64}',
      },
      {
        code: 'load/invalid-value',
        message: 'remote-execution.jobs: "many" is not a whole number from 1 to 100000',
        at: '21:9',
        hint: "the number of actions the cluster's workers run at once, e.g. jobs: 64",
      },
      {
        code: 'load/invalid-value',
        message: 'remote-execution.execution-service.url "ftp://x:1" has no known scheme',
        at: '17:10',
        hint: 'start it with grpc://, grpcs://, http://, https://, unix:',
      },
      {
        code: 'load/wrong-type',
        message: 'remote-execution.storage-service must be a mapping, not a list',
        at: '18:20',
        hint: undefined,
      },
    ]);
  });

  it('wants artifacts a mapping and servers a list', async () => {
    await using t = await tempDir();
    const r = await load(t.path, 'artifacts:\n  servers:\n    url: grpc://x:1\n');
    assert.ok(!r.ok);
    assert.deepEqual(r.problems, [
      {
        code: 'load/wrong-type',
        message: 'artifacts.servers must be a list, not a mapping',
        at: '3:5',
        hint: undefined,
      },
    ]);
    const r2 = await load(t.path, 'artifacts: grpc://x:1\n');
    assert.ok(!r2.ok);
    assert.deepEqual(r2.problems, [
      {
        code: 'load/wrong-type',
        message: 'artifacts must be a mapping, not a string',
        at: '1:12',
        hint: undefined,
      },
    ]);
  });
});

describe('project.conf: artifacts', () => {
  /** parseProjectArtifacts on `text` as project.conf of a project in `dir`. */
  function parse(dir: string, text: string): { servers: unknown[]; problems: Problem[] } {
    const root = parseYaml(text, 'project.conf');
    assert.ok(root.ok && root.value.kind === 'map');
    const node = root.value.entries.get('artifacts');
    assert.ok(node !== undefined);
    const d = new Diagnostics();
    const servers = parseProjectArtifacts(node, dir, d);
    const problems = d.errors.map((e) => ({
      code: e.code,
      message: e.message,
      at: `${e.location?.file}:${e.location?.line}:${e.location?.col}`,
      hint: e.hint,
    }));
    return { servers, problems };
  }

  it('reads a list of servers or servers:, paths relative to the project directory', async () => {
    await using t = await tempDir();
    await writeFile(join(t.path, 'ca.pem'), 'x\n');
    const conf = join(t.path, 'project.conf');
    const entry = (what: string): unknown => ({
      url: 'grpcs://cache.example.com:11002',
      push: false,
      auth: { serverCert: join(t.path, 'ca.pem') },
      origin: `${what} in ${conf}`,
    });
    const list =
      'artifacts:\n- url: grpcs://cache.example.com:11002\n  auth:\n    server-cert: ca.pem\n';
    assert.deepEqual(parse(t.path, list), { servers: [entry('artifacts[0]')], problems: [] });
    const servers =
      'artifacts:\n  servers:\n  - url: grpcs://cache.example.com:11002\n    auth:\n      server-cert: ca.pem\n';
    assert.deepEqual(parse(t.path, servers), {
      servers: [entry('artifacts.servers[0]')],
      problems: [],
    });
    assert.deepEqual(parse(t.path, 'artifacts:\n'), { servers: [], problems: [] });
  });

  it('wants a list of servers, or servers: holding one', async () => {
    await using t = await tempDir();
    assert.deepEqual(parse(t.path, 'artifacts: grpc://x:1\n').problems, [
      {
        code: 'load/wrong-type',
        message: 'artifacts must be a list of artifact servers',
        at: 'project.conf:1:12',
        hint: 'write each server as an entry: - url: grpcs://cache.example.com:11002',
      },
    ]);
    assert.deepEqual(parse(t.path, 'artifacts:\n  url: grpc://x:1\n').problems, [
      {
        code: 'load/wrong-type',
        message: 'artifacts must be a list of artifact servers',
        at: 'project.conf:2:3',
        hint: 'write each server as an entry: - url: grpcs://cache.example.com:11002',
      },
    ]);
  });
});

describe('user configuration: scheduler.speculative-actions-order', () => {
  it('reads cost or recorded (default recorded), and places a wrong value', async () => {
    await using dir = await tempDir();
    const none = await load(dir.path, 'scheduler:\n  builders: 1\n');
    assert.ok(none.ok);
    assert.equal(none.value.primingOrder, 'recorded');
    const cost = await load(dir.path, 'scheduler:\n  speculative-actions-order: cost\n');
    assert.ok(cost.ok);
    assert.equal(cost.value.primingOrder, 'cost');
    const wrong = await load(
      dir.path,
      'scheduler:\n  builders: 1\n  speculative-actions-order: fast\n',
    );
    assert.ok(!wrong.ok);
    assert.deepEqual(
      wrong.problems.map((p) => [p.code, p.message, p.at]),
      [
        [
          'load/invalid-value',
          'scheduler.speculative-actions-order "fast" is not cost or recorded',
          '3:30',
        ],
      ],
    );
    assert.match(wrong.problems[0]?.hint ?? '', /longest recorded actions first/);
    // scheduler.on-error goes through the same check.
    const onError = await load(dir.path, 'scheduler:\n  on-error: stop\n');
    assert.ok(!onError.ok);
    assert.deepEqual(
      onError.problems.map((p) => [p.code, p.message, p.at, p.hint]),
      [
        [
          'load/invalid-value',
          'scheduler.on-error "stop" is not quit or continue',
          '2:13',
          undefined,
        ],
      ],
    );
  });
});

describe('user configuration: scheduler.speculative-actions-budget', () => {
  it('reads seconds (default: no budget), and places a wrong value', async () => {
    await using dir = await tempDir();
    const none = await load(dir.path, 'scheduler:\n  builders: 1\n');
    assert.ok(none.ok);
    assert.equal(none.value.primingBudget, undefined);
    const set = await load(dir.path, 'scheduler:\n  speculative-actions-budget: 2.5\n');
    assert.ok(set.ok);
    assert.equal(set.value.primingBudget, 2.5);
    const wrong = await load(dir.path, 'scheduler:\n  speculative-actions-budget: lots\n');
    assert.ok(!wrong.ok);
    assert.deepEqual(
      wrong.problems.map((p) => [p.code, p.message, p.at]),
      [
        [
          'load/invalid-value',
          'scheduler.speculative-actions-budget "lots" is not a number of seconds',
          '2:31',
        ],
      ],
    );
    assert.match(wrong.problems[0]?.hint ?? '', /recorded execution seconds/);
  });
});
