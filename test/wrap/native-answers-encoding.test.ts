// The request key, the answer file's name and its bytes, against plain
// reference encodings (the ones this module used before it was made
// faster): the native client computes the same from its side, so a byte
// apart is a hit lost, or another command's answer taken.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { answerName, encodeAnswer, requestKey, VOLATILE_ENV } from '../../src/wrap/index.js';
import { rng } from '../helpers/random-directories.js';

function referenceKey(argv: string[], cwd: string, env: Map<string, string>): Buffer {
  const parts: Buffer[] = [];
  const u32 = (n: number): void => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    parts.push(b);
  };
  const str = (s: string | Buffer): void => {
    const b = typeof s === 'string' ? Buffer.from(s) : s;
    u32(b.length);
    parts.push(b);
  };
  u32(argv.length);
  for (const a of argv) str(a);
  str(cwd);
  const entries = [...env]
    .filter(([k]) => !VOLATILE_ENV.includes(k))
    .map(([k, v]) => Buffer.from(`${k}=${v}`))
    .sort((a, b) => Buffer.compare(a, b));
  u32(entries.length);
  for (const e of entries) str(e);
  return Buffer.concat(parts);
}

function referenceName(key: Uint8Array): string {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (const byte of key) {
    a = Math.imul(a ^ byte, 0x01000193) >>> 0;
    b = Math.imul(b ^ byte, 0x01000193) >>> 0;
  }
  return a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0');
}

// ASCII, Latin-1, the BMP above the surrogates, astral characters, and lone surrogates.
const PIECES = [
  'A',
  'a',
  'Z_',
  '=',
  'é',
  'ÿ',
  '\u{ffef}',
  '😀',
  '\u{10400}',
  '\ud800',
  '\udc00',
  '0',
];

function randomText(next: () => number, max: number): string {
  let s = '';
  const n = Math.floor(next() * max);
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(next() * PIECES.length)] ?? '';
  return s;
}

describe('native answers encoding', () => {
  it('keys and names requests as the reference does, environments in UTF-8 byte order', () => {
    const next = rng(112911);
    for (let i = 0; i < 3000; i++) {
      const env = new Map<string, string>();
      const n = Math.floor(next() * 12);
      for (let j = 0; j < n; j++) env.set(randomText(next, 4) || 'K', randomText(next, 6));
      if (next() < 0.3) env.set(VOLATILE_ENV[0] ?? 'X', 'volatile');
      const argv = ['gcc', randomText(next, 5), '-c'];
      const cwd = `/w/${randomText(next, 4)}`;
      const key = requestKey(argv, cwd, env);
      const want = referenceKey(argv, cwd, env);
      assert.deepEqual(Buffer.from(key), want, `request ${String(i)}`);
      assert.equal(answerName(key), referenceName(want));
    }
  });

  it("writes a signature of a time before 1970 as its two's complement", () => {
    // And one before 1677, below a signed 64-bit number, as C's cast wraps it.
    const sig = {
      dev: 2049n,
      ino: (1n << 63n) + 5n,
      mtimeNs: -1_500_000_000n,
      ctimeNs: -(1n << 63n) - 5n,
    };
    const bytes = encodeAnswer('0000000000000000', Buffer.from('k'), {
      checks: [
        { kind: 'file', path: '/a', hash: 'ab'.repeat(32), size: 1, executable: false, sig },
      ],
      outputs: [],
      stdout: Buffer.alloc(0),
      stderr: Buffer.alloc(0),
      logHead: '',
      logTail: '',
    });
    const want = Buffer.alloc(32);
    [sig.dev, sig.ino, sig.mtimeNs, sig.ctimeNs].forEach((v, i) =>
      want.writeBigUInt64LE(BigInt.asUintN(64, v), i * 8),
    );
    assert.ok(bytes.includes(want), "the four fields, as 64-bit two's complement");
  });
});
