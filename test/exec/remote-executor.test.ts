// The executor contract through `specbuild server` and the remote client,
// plus what only the Execution service promises: fire-and-forget submission,
// PreconditionFailure for missing blobs, WaitExecution and GetOperation.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { status as Status } from '@grpc/grpc-js';
import { LocalActionCache, LocalCas } from '../../src/cas/index.js';
import { LocalExecutor } from '../../src/exec/index.js';
import { anyUnpack } from '@bufbuild/protobuf/wkt';
import {
  ExecuteOperationMetadataSchema,
  ExecuteResponseSchema,
  Execution,
  ExecutionStage_Value,
  digestOf,
  fromPb,
  longrunning,
  toPb,
  type Digest,
} from '../../src/reapi/index.js';
import { missingBlobs, RemoteEndpoint } from '../../src/remote/index.js';
import { startServer } from '../../src/server/index.js';
import { uploadAction } from '../helpers/actions.js';
import { tempDir } from '../helpers/tmp.js';
import { executorContract, specbuildExecutorContract, type ExecRig } from './executor-contract.js';

async function execServer(transport: 'tcp' | 'unix') {
  const dir = await tempDir();
  const cas = await LocalCas.open({ dir: dir.path });
  const ac = await LocalActionCache.open(dir.path, cas);
  const executor = new LocalExecutor({ cas, ac, workDir: join(dir.path, 'exec'), jobs: 2 });
  const server = await startServer({
    listen: transport === 'tcp' ? '127.0.0.1:0' : `unix:${join(dir.path, 's.sock')}`,
    instances: new Map([['', { cas, ac, executor }]]),
  });
  const ep = await RemoteEndpoint.connect({ target: server.address });
  return {
    cas,
    ep,
    executor,
    server,
    async [Symbol.asyncDispose]() {
      ep.close();
      for (let i = 0; i < 500 && server.runningExecutions > 0; i++)
        await new Promise((r) => setTimeout(r, 10));
      await server.close();
      await dir[Symbol.asyncDispose]();
    },
  };
}

for (const transport of ['tcp', 'unix'] as const) {
  const rig = async (): Promise<ExecRig> => {
    const s = await execServer(transport);
    return {
      cas: s.ep.cas,
      ac: s.ep.actionCache,
      executor: s.ep.executor,
      runs: () => s.executor.runs,
      evict: (d: Digest) => unlink(s.cas.pathOf(d)),
      [Symbol.asyncDispose]: () => s[Symbol.asyncDispose](),
    };
  };
  executorContract(`remote executor, specbuild server over ${transport}`, rig);
  specbuildExecutorContract(`remote executor, specbuild server over ${transport}`, rig);
}

describe('Execution service', () => {
  it('advertises execution in Capabilities', async () => {
    await using s = await execServer('tcp');
    assert.equal(s.ep.canExecute, true);
  });

  it('keeps executing after the client drops the stream, and caches the result', async () => {
    await using s = await execServer('tcp');
    const a = await uploadAction(s.ep.cas, {
      argv: ['sh', '-c', 'sleep 0.3; echo primed > o'],
      outputPaths: ['o'],
    });
    const name = await s.ep.execution.submit(a);
    assert.match(name, /operations\//);
    assert.equal(await s.ep.actionCache.getActionResult(a), undefined, 'not finished yet');
    for (let i = 0; i < 300 && (await s.ep.actionCache.getActionResult(a)) === undefined; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const hit = await s.ep.actionCache.getActionResult(a);
    assert.ok(hit, 'the dropped execution finished and landed in the action cache');
    assert.equal(s.executor.runs, 1);
    assert.equal(s.server.context.activeCalls, 0, 'the dropped call is not left running');
  });

  it('reports missing inputs as FAILED_PRECONDITION with MISSING violations', async () => {
    await using s = await execServer('unix');
    const a = await uploadAction(s.ep.cas, { argv: ['cat', 'in'], inputs: { in: 'soon gone' } });
    const gone = digestOf(Buffer.from('soon gone'));
    await unlink(s.cas.pathOf(gone));
    const res = await s.ep.execution.execute(a);
    assert.equal(res.status?.code, Status.FAILED_PRECONDITION);
    assert.deepEqual(missingBlobs(res.status), [`blobs/${gone.hash}/${gone.size}`]);
    const never = digestOf(Buffer.from('no such action'));
    const res2 = await s.ep.execution.execute(never);
    assert.deepEqual(missingBlobs(res2.status), [`blobs/${never.hash}/${never.size}`]);
  });

  it('reports stages and lets another client wait for or look up the operation', async () => {
    await using s = await execServer('tcp');
    const a = await uploadAction(s.ep.cas, { argv: ['sh', '-c', 'sleep 0.2; echo waited'] });
    const name = await s.ep.execution.submit(a);
    const conn = s.ep.connection;
    const stages: ExecutionStage_Value[] = [];
    let done = false;
    for await (const op of conn.serverStream(Execution.method.waitExecution, { name })) {
      done = op.done;
      assert.ok(op.metadata, 'every operation carries ExecuteOperationMetadata');
      const meta = anyUnpack(op.metadata, ExecuteOperationMetadataSchema);
      assert.ok(meta, `metadata is ${op.metadata.typeUrl}`);
      stages.push(meta.stage);
    }
    assert.ok(done);
    // The waiter joins while the action runs (it sleeps 0.2 s) and sees it complete.
    assert.equal(stages.at(-1), ExecutionStage_Value.COMPLETED);
    assert.ok(stages.includes(ExecutionStage_Value.EXECUTING), stages.join(','));
    assert.deepEqual(
      stages,
      [...stages].sort((x, y) => x - y),
      'stages only move forward',
    );
    const op = await conn.unary(longrunning.Operations.method.getOperation, { name });
    assert.equal(op.done, true);
    assert.equal(op.result.case, 'response');
    await assert.rejects(
      conn.unary(longrunning.Operations.method.getOperation, { name: 'operations/nope' }),
      {
        code: 'remote/not-found',
      },
    );
  });

  it('shows every caller of a shared run that it is executing', async () => {
    await using s = await execServer('tcp');
    const a = await uploadAction(s.ep.cas, { argv: ['sh', '-c', 'sleep 0.5; echo once'] });
    const seen: string[][] = [[], []];
    await Promise.all(
      seen.map((stages) => s.ep.execution.execute(a, { events: (e) => stages.push(e.stage) })),
    );
    assert.equal(s.executor.runs, 1, 'run once for both');
    for (const stages of seen) {
      assert.ok(stages.includes('executing'), stages.join(','));
      assert.equal(stages.at(-1), 'completed');
    }
  });

  it('answers a cached Execute with one Operation, done, and finds an evicted output a miss', async () => {
    await using s = await execServer('tcp');
    const a = await uploadAction(s.ep.cas, {
      argv: ['sh', '-c', 'echo 1 > o'],
      outputPaths: ['o'],
    });
    assert.equal((await s.ep.execution.execute(a)).cachedResult, false);
    const ops: longrunning.Operation[] = [];
    for await (const op of s.ep.connection.serverStream(Execution.method.execute, {
      actionDigest: toPb(a),
    })) {
      ops.push(op);
    }
    assert.equal(ops.length, 1, 'no CACHE_CHECK Operation before the answer');
    const [op] = ops as [longrunning.Operation];
    assert.equal(op.done, true);
    assert.equal(op.result.case, 'response');
    const meta = op.metadata && anyUnpack(op.metadata, ExecuteOperationMetadataSchema);
    assert.equal(meta?.stage, ExecutionStage_Value.COMPLETED);
    const res = anyUnpack(op.result.value, ExecuteResponseSchema);
    assert.ok(res?.result);
    assert.equal(res.cachedResult, true);
    // The same action again after its output left the CAS: a miss, so it runs.
    const out = fromPb(res.result.outputFiles[0]?.digest);
    await unlink(s.cas.pathOf(out));
    assert.equal((await s.ep.execution.execute(a)).cachedResult, false);
    assert.equal(s.executor.runs, 2);
  });

  it('answers over a thousand Executes on one connection (finished streams are not reset)', async () => {
    await using s = await execServer('tcp');
    const a = await uploadAction(s.ep.cas, {
      argv: ['sh', '-c', 'echo 1 > o'],
      outputPaths: ['o'],
    });
    assert.equal((await s.ep.execution.execute(a)).cachedResult, false);
    for (let i = 0; i < 1200; i++) {
      const res = await s.ep.execution.execute(a);
      assert.equal(res.cachedResult, true);
    }
    assert.equal(s.executor.runs, 1);
  });
});
