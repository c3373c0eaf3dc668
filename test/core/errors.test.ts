// The error base and results: SpecbuildError.from keeps codes and causes,
// Diagnostics collects every problem, and every entry point maps errors to
// exit codes the same way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs } from 'node:util';
import { Diagnostics, fail, ok, SpecbuildError, isSpecbuildError } from '../../src/core/index.js';
import { EXIT, exitCodeOf } from '../../src/cli/exit-codes.js';

test('SpecbuildError.from keeps a SpecbuildError and wraps anything else with its cause', () => {
  const own = new SpecbuildError('cas/not-found', 'gone');
  assert.equal(SpecbuildError.from(own), own);
  const io = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
  const wrapped = SpecbuildError.from(io, 'cas/io');
  assert.equal(wrapped.code, 'cas/io');
  assert.equal(wrapped.message, 'EACCES: permission denied');
  assert.equal(wrapped.cause, io);
  assert.equal(SpecbuildError.from('a string').code, 'internal');
  assert.equal(SpecbuildError.from('a string').message, 'a string');
  assert.ok(isSpecbuildError(wrapped, 'cas/io'));
  assert.ok(!isSpecbuildError(wrapped, 'cas/not-found'));
  assert.ok(!isSpecbuildError(io));
});

test('Diagnostics returns the value when clean, every error otherwise', () => {
  const clean = new Diagnostics();
  assert.equal(clean.take(ok(3)), 3);
  assert.deepEqual(clean.result('v'), { ok: true, value: 'v' });
  const d = new Diagnostics();
  const a = new SpecbuildError('cli/usage', 'first');
  const b = new SpecbuildError('cli/usage', 'second');
  const taken = d.take<number>(fail(a));
  assert.equal(taken, undefined);
  d.add(b);
  const r = d.result('unused');
  assert.ok(!r.ok);
  assert.deepEqual(
    r.errors.map((e) => e.message),
    ['first', 'second'],
  );
  assert.throws(() => fail());
});

test('exit codes: usage-like errors give 2 whichever layer raised them, the rest 1', () => {
  for (const code of [
    'cli/usage',
    'wrap/usage',
    'remote/invalid-target',
    'remote/token-file',
  ] as const)
    assert.equal(exitCodeOf(new SpecbuildError(code, 'x')), EXIT.usage, code);
  for (const code of ['cas/io', 'remote/unavailable', 'exec/timeout', 'internal'] as const)
    assert.equal(exitCodeOf(new SpecbuildError(code, 'x')), EXIT.failure, code);
  assert.equal(exitCodeOf(new Error('plain')), EXIT.failure);
  let parseError: unknown;
  try {
    parseArgs({ args: ['--nope'], options: {} });
  } catch (e) {
    parseError = e;
  }
  assert.equal(exitCodeOf(parseError), EXIT.usage);
});
