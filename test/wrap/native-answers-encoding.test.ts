// The request key, the answer file's name and its bytes, against plain
// reference encodings (the ones this module used before it was made
// faster): the native client computes the same from its side, so a byte
// apart is a hit lost, or another command's answer taken.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  answerName,
  encodeAnswer,
  requestKey,
  VOLATILE_ENV,
  type Answer,
  type AnswerCheck,
} from '../../src/wrap/index.js';
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

/** The answer file as plain Buffer calls write it (client.c, answer_here, reads these fields). */
function referenceAnswer(buildId: string, key: Uint8Array, a: Answer): Buffer {
  const parts: Buffer[] = [Buffer.from('SBA2')];
  const u8 = (n: number): void => {
    parts.push(Buffer.from([n]));
  };
  const u32 = (n: number): void => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    parts.push(b);
  };
  const u64 = (n: bigint): void => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt.asUintN(64, n));
    parts.push(b);
  };
  const str = (s: string | Uint8Array): void => {
    const b = Buffer.from(s);
    u32(b.length);
    parts.push(b);
  };
  const tags = { noexec: 0x78, exec: 0x65, real: 0x72, absent: 0x61, present: 0x70, file: 0x66 };
  str(buildId);
  str(key);
  u32(a.checks.length);
  for (const c of a.checks) {
    u8(tags[c.kind]);
    str(c.path);
    if (c.kind === 'real') str(c.real);
    if (c.kind === 'file') {
      parts.push(Buffer.from(c.hash, 'hex'));
      u64(BigInt(c.size));
      u8(c.executable ? 1 : 0);
      u8(c.sig === undefined ? 0 : 1);
      for (const v of [c.sig?.dev, c.sig?.ino, c.sig?.mtimeNs, c.sig?.ctimeNs]) u64(v ?? 0n);
    }
  }
  u32(a.outputs.length);
  for (const o of a.outputs) {
    str(o.path);
    str(o.blob);
    u64(BigInt(o.size));
    u8(o.executable ? 1 : 0);
  }
  str(a.stdout);
  str(a.stderr);
  str(a.logHead);
  str(a.logTail);
  parts.push(Buffer.from('END1'));
  return Buffer.concat(parts);
}

function randomCheck(next: () => number, i: number): AnswerCheck {
  const path = `/usr/include/${randomText(next, 30)}${String(i)}.h`;
  const big = (): bigint =>
    BigInt(Math.floor(next() * 2 ** 32)) * BigInt(Math.floor(next() * 2 ** 32));
  switch (Math.floor(next() * 6)) {
    case 0:
      return { kind: 'noexec', path };
    case 1:
      return { kind: 'exec', path };
    case 2:
      return { kind: 'real', path, real: `/real${path}` };
    case 3:
      return { kind: 'absent', path };
    case 4:
      return { kind: 'present', path };
    default:
      return {
        kind: 'file',
        path,
        hash: Array.from({ length: 32 }, () =>
          Math.floor(next() * 256)
            .toString(16)
            .padStart(2, '0'),
        ).join(''),
        size: Math.floor(next() * 2 ** 40),
        executable: next() < 0.5,
        sig:
          next() < 0.2
            ? undefined
            : { dev: big(), ino: big(), mtimeNs: next() < 0.1 ? -big() : big(), ctimeNs: big() },
      };
  }
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

  it('writes answers of every size byte for byte as the reference, across the buffer growing', () => {
    const next = rng(290611);
    for (let i = 0; i < 200; i++) {
      // Up to ~600 checks: well past the writer's first 4 KB, grown several times.
      const n = Math.floor(next() * next() * 600);
      const answer: Answer = {
        checks: Array.from({ length: n }, (_, j) => randomCheck(next, j)),
        outputs: Array.from({ length: Math.floor(next() * 3) }, (_, j) => ({
          path: `out${String(j)}.o`,
          blob: `/cas/objects/${randomText(next, 8)}`,
          size: Math.floor(next() * 2 ** 33),
          executable: next() < 0.5,
        })),
        stdout: Buffer.from(randomText(next, 50)),
        stderr: Buffer.from(randomText(next, 5000)),
        logHead: randomText(next, 40),
        logTail: randomText(next, 10),
      };
      const key = Buffer.from(randomText(next, 3000));
      const got = encodeAnswer('0123456789abcdef', key, answer);
      assert.deepEqual(
        got,
        referenceAnswer('0123456789abcdef', key, answer),
        `answer ${String(i)}`,
      );
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
