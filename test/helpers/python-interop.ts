// The independent Python clients of the interop tests (generated from the
// published protos in Debian's Bazel sources): their prerequisites, checked
// so that a missing tool fails with an install hint (never a skip), and one
// run of a client, whose JSON list of named checks must all pass.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runProcess } from './process.js';
import { onPath } from './prereq.js';

const python = '/usr/bin/python3';
/** Where Debian's bazel-bootstrap-source puts the published protos. */
export const protoRoot = '/usr/src/bazel-bootstrap/third_party';
const installHint =
  'run .ci/run, or: apt-get install bazel-bootstrap-source protobuf-compiler python3-grpcio python3-protobuf';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** Fails when python, protoc, the client script or a proto (relative to protoRoot) is missing. */
export async function assertPythonPrerequisites(
  clientScript: string,
  protos: readonly string[],
): Promise<void> {
  const missing: string[] = [];
  if (!existsSync(python)) missing.push(python);
  if (!onPath('protoc')) missing.push('protoc on PATH');
  for (const p of protos) if (!existsSync(join(protoRoot, p))) missing.push(join(protoRoot, p));
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

/**
 * Runs `clientScript ARGS...`, which prints `{"checks": [...]}`; asserts that
 * it exited 0 and that no check failed (`serverOutput` is shown if one did),
 * and returns the checks in the client's order.
 */
export async function runPythonChecks(
  clientScript: string,
  args: readonly string[],
  timeoutMs: number,
  serverOutput: () => string,
): Promise<Check[]> {
  const name = clientScript.slice(clientScript.lastIndexOf('/') + 1);
  const r = await runProcess(python, [clientScript, ...args], pyOpts(timeoutMs));
  assert.equal(r.code, 0, `${name} exited with code ${r.code} (signal ${r.signal}): ${r.output}`);
  let checks: Check[];
  try {
    checks = (JSON.parse(r.stdout) as { checks: Check[] }).checks;
  } catch (e) {
    assert.fail(`${name} printed no JSON (${String(e)}): ${r.stdout}\n${r.output}`);
  }
  const failed = checks.filter((c) => !c.ok);
  assert.deepEqual(
    failed.map((c) => c.name),
    [],
    `failing checks:\n${failed.map((c) => `  ${c.name}: ${c.detail}`).join('\n')}\n` +
      `server output: ${serverOutput()}`,
  );
  return checks;
}
