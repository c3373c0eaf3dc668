// The wire format between the native wrapper client (src/wrap/native/client.c,
// installed as specbuild-cc and specbuild-exec) and the warm wrapper daemon.
// Integers are little-endian; a string is a u32 byte length and UTF-8 bytes.
//
// Request, one per connection:
//   "SBD2"  u32 frame length (the whole frame, these 8 bytes included)
//   string tool ("cc" | "exec")   string cwd (absolute)
//   u32 argc, argc strings (the client's arguments, argv[0] left out)
//   u32 envc, envc strings ("K=V", the client's whole environment)
//   u32 umask (the client's file mode creation mask, at most 0777)
// Responses, until 'X' or 'L': a type byte, a u32 payload length, the payload:
//   'O' stdout bytes   'E' stderr bytes   'X' i32 exit code, last
//   'L' (no payload) the client runs the command itself, last

import { SpecbuildError } from '../core/index.js';

/** SBD1 had no umask: a daemon of it says "bad magic" to a client of this one, never misreads it. */
export const REQUEST_MAGIC = 'SBD2';
/** The largest request frame a daemon accepts. */
export const MAX_REQUEST_BYTES = 16 * 1024 * 1024;
/** The most arguments, and separately environment entries, in a request. */
export const MAX_REQUEST_STRINGS = 1 << 20;
/** The largest payload of one response frame; longer output is split. */
export const MAX_RESPONSE_PAYLOAD = 16 * 1024 * 1024;
export const REQUEST_HEADER_BYTES = 8;
const RESPONSE_HEADER_BYTES = 5;

export type DaemonTool = 'cc' | 'exec';

export interface DaemonRequest {
  tool: DaemonTool;
  /** The client's working directory (absolute). */
  cwd: string;
  /** The client's arguments, without argv[0]. */
  argv: string[];
  /** The client's environment; for a repeated name the first entry wins, as in getenv(). */
  env: Map<string, string>;
  /**
   * The client's umask: the files a command makes for it (outputs of a hit,
   * of a compile run by the daemon) get the modes the command itself would
   * have given them. Encoded as 022 when not given.
   */
  umask?: number;
}

export type DaemonResponse =
  | { type: 'stdout'; data: Uint8Array }
  | { type: 'stderr'; data: Uint8Array }
  | { type: 'exit'; code: number }
  | { type: 'local' };

/** A frame that breaks the protocol (`wrap/protocol`); the daemon closes such a connection. */
function protocolError(message: string): SpecbuildError {
  return new SpecbuildError('wrap/protocol', message);
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * The length of the request frame starting with `header` (its first 8 bytes
 * at least), after checking the magic and the length's bounds.
 */
export function requestFrameLength(header: Uint8Array): number {
  if (header.length < REQUEST_HEADER_BYTES) throw protocolError('short request header');
  for (let i = 0; i < 4; i++) {
    if (header[i] !== REQUEST_MAGIC.charCodeAt(i))
      throw protocolError('bad magic: not a specbuild daemon request');
  }
  const len = view(header).getUint32(4, true);
  if (len < REQUEST_HEADER_BYTES + 16) throw protocolError(`request length ${len} is too short`);
  if (len > MAX_REQUEST_BYTES)
    throw protocolError(`request length ${len} exceeds ${MAX_REQUEST_BYTES}`);
  return len;
}

/**
 * A stable 32-bit hash (FNV-1a) of a request's tool, cwd and arguments, read
 * from the frame's bytes between the header and the environment count without
 * decoding them: the worker pool routes by it on the daemon's main thread. A
 * malformed frame hashes whatever it has (decodeRequest rejects it later).
 */
export function commandHash(frame: Uint8Array): number {
  const dv = view(frame);
  const skipString = (at: number): number =>
    at + 4 <= frame.length ? at + 4 + dv.getUint32(at, true) : frame.length;
  let end = skipString(skipString(REQUEST_HEADER_BYTES)); // tool, cwd
  const argc = end + 4 <= frame.length ? dv.getUint32(end, true) : 0;
  end += 4;
  for (let i = 0; i < argc && end < frame.length; i++) end = skipString(end);
  end = Math.min(end, frame.length);
  let h = 0x811c9dc5;
  for (let i = REQUEST_HEADER_BYTES; i < end; i++) h = Math.imul(h ^ (frame[i] ?? 0), 0x01000193);
  return mix32(h);
}

/**
 * MurmurHash3's finaliser: FNV-1a's low bits are weak (the lowest is the
 * parity of the bytes' lowest bits, so "a1.c -o a1.o" and "a2.c -o a2.o"
 * agree on it), and the pool takes the hash modulo a small number.
 */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

class Reader {
  private pos = REQUEST_HEADER_BYTES;
  private readonly dv: DataView;
  constructor(private readonly b: Uint8Array) {
    this.dv = view(b);
  }
  u32(what: string): number {
    if (this.pos + 4 > this.b.length) throw protocolError(`truncated at ${what}`);
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  count(what: string): number {
    const n = this.u32(`${what} count`);
    if (n > MAX_REQUEST_STRINGS || n * 4 > this.b.length - this.pos)
      throw protocolError(`${what} count ${n} is out of bounds`);
    return n;
  }
  str(what: string): string {
    const n = this.u32(what);
    if (n > this.b.length - this.pos) throw protocolError(`truncated in ${what}`);
    const bytes = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    if (bytes.includes(0)) throw protocolError(`NUL byte in ${what}`);
    try {
      return utf8.decode(bytes);
    } catch {
      throw protocolError(`${what} is not valid UTF-8`);
    }
  }
  end(): void {
    if (this.pos !== this.b.length)
      throw protocolError(`${this.b.length - this.pos} stray bytes after the request`);
  }
}

/** Decodes and validates one whole request frame (header included). */
export function decodeRequest(frame: Uint8Array): DaemonRequest {
  const len = requestFrameLength(frame);
  if (frame.length !== len)
    throw protocolError(`request frame is ${frame.length} bytes, header says ${len}`);
  const r = new Reader(frame);
  const tool = r.str('tool');
  if (tool !== 'cc' && tool !== 'exec') throw protocolError(`unknown tool "${tool}"`);
  const cwd = r.str('cwd');
  if (!cwd.startsWith('/')) throw protocolError(`cwd "${cwd}" is not absolute`);
  const argv: string[] = [];
  for (let i = 0, n = r.count('argument'); i < n; i++) argv.push(r.str(`argument ${i}`));
  const env = new Map<string, string>();
  for (let i = 0, n = r.count('environment'); i < n; i++) {
    const kv = r.str(`environment entry ${i}`);
    const eq = kv.indexOf('=');
    // An entry without "=" names no variable (getenv() never finds it).
    if (eq > 0 && !env.has(kv.slice(0, eq))) env.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  const umask = r.u32('umask');
  if (umask > 0o777) throw protocolError(`umask ${umask.toString(8)} is not a file mode mask`);
  r.end();
  return { tool, cwd, argv, env, umask };
}

/** Encodes a request as the native client does (for tests and Node clients). */
export function encodeRequest(req: DaemonRequest): Uint8Array {
  const strings = [
    req.tool,
    req.cwd,
    req.argv.length,
    ...req.argv,
    req.env.size,
    ...[...req.env].map(([k, v]) => `${k}=${v}`),
    req.umask ?? 0o022,
  ].map((s) => (typeof s === 'number' ? s : encoder.encode(s)));
  let len = REQUEST_HEADER_BYTES;
  for (const s of strings) len += typeof s === 'number' ? 4 : 4 + s.length;
  const out = new Uint8Array(len);
  const dv = view(out);
  out.set(encoder.encode(REQUEST_MAGIC));
  dv.setUint32(4, len, true);
  let pos = REQUEST_HEADER_BYTES;
  for (const s of strings) {
    if (typeof s !== 'number' && s.includes(0))
      throw protocolError('request strings cannot hold NUL bytes');
    dv.setUint32(pos, typeof s === 'number' ? s : s.length, true);
    pos += 4;
    if (typeof s !== 'number') {
      out.set(s, pos);
      pos += s.length;
    }
  }
  return out;
}

/** Encodes one response frame; output longer than MAX_RESPONSE_PAYLOAD is rejected. */
export function encodeResponse(r: DaemonResponse): Uint8Array {
  const payload =
    r.type === 'stdout' || r.type === 'stderr'
      ? r.data
      : r.type === 'exit'
        ? new Uint8Array(4)
        : new Uint8Array(0);
  if (payload.length > MAX_RESPONSE_PAYLOAD)
    throw new RangeError(`response payload of ${payload.length} bytes: split it`);
  const out = new Uint8Array(RESPONSE_HEADER_BYTES + payload.length);
  const dv = view(out);
  out[0] = { stdout: 0x4f, stderr: 0x45, exit: 0x58, local: 0x4c }[r.type]; // O E X L
  dv.setUint32(1, payload.length, true);
  out.set(payload, RESPONSE_HEADER_BYTES);
  if (r.type === 'exit') {
    if (!Number.isInteger(r.code) || r.code < -(2 ** 31) || r.code >= 2 ** 31)
      throw new RangeError(`exit code ${r.code} is not an i32`);
    dv.setInt32(RESPONSE_HEADER_BYTES, r.code, true);
  }
  return out;
}

/** Stdout or stderr output as response frames, split to MAX_RESPONSE_PAYLOAD. */
export function encodeOutput(type: 'stdout' | 'stderr', data: Uint8Array): Uint8Array[] {
  const frames: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += MAX_RESPONSE_PAYLOAD)
    frames.push(encodeResponse({ type, data: data.subarray(at, at + MAX_RESPONSE_PAYLOAD) }));
  return frames;
}

/**
 * Decodes the whole response frames at the start of `buf` (for tests and Node
 * clients); `rest` is the incomplete tail.
 */
export function decodeResponses(buf: Uint8Array): {
  responses: DaemonResponse[];
  rest: Uint8Array;
} {
  const responses: DaemonResponse[] = [];
  let pos = 0;
  while (buf.length - pos >= RESPONSE_HEADER_BYTES) {
    const dv = view(buf.subarray(pos));
    const type = buf[pos];
    const len = dv.getUint32(1, true);
    if (buf.length - pos - RESPONSE_HEADER_BYTES < len) break;
    const payload = new Uint8Array(
      buf.subarray(pos + RESPONSE_HEADER_BYTES, pos + RESPONSE_HEADER_BYTES + len),
    );
    if (type === 0x4f) responses.push({ type: 'stdout', data: payload });
    else if (type === 0x45) responses.push({ type: 'stderr', data: payload });
    else if (type === 0x58 && len === 4)
      responses.push({ type: 'exit', code: dv.getInt32(RESPONSE_HEADER_BYTES, true) });
    else if (type === 0x4c && len === 0) responses.push({ type: 'local' });
    else throw protocolError(`bad response frame type ${String(type)} length ${len}`);
    pos += RESPONSE_HEADER_BYTES + len;
  }
  return { responses, rest: buf.subarray(pos) };
}
