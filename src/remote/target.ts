// Parsing of remote endpoint targets: `HOST:PORT`, `grpc://HOST:PORT`,
// `grpcs://HOST:PORT` (TLS), `unix:/path` and `unix:///path`.
import { SpecbuildError } from '../core/index.js';

export interface Target {
  /** What grpc-js connects to. */
  address: string;
  tls: boolean;
  /** The target as the user wrote it, for messages. */
  text: string;
}

export function parseTarget(text: string): Target {
  const bad = (why: string): SpecbuildError =>
    new SpecbuildError('remote/invalid-target', `remote target "${text}": ${why}`, {
      hint: 'use HOST:PORT, grpc://HOST:PORT, grpcs://HOST:PORT or unix:/path/to.sock',
    });
  if (text.startsWith('unix:')) {
    const path = text.startsWith('unix://') ? text.slice(7) : text.slice(5);
    if (!path.startsWith('/')) throw bad('a unix socket path must be absolute');
    return { address: `unix:${path}`, tls: false, text };
  }
  let rest = text;
  let tls = false;
  if (text.startsWith('grpcs://')) {
    tls = true;
    rest = text.slice(8);
  } else if (text.startsWith('grpc://')) {
    rest = text.slice(7);
  } else if (text.startsWith('http://') || text.startsWith('https://')) {
    tls = text.startsWith('https://');
    rest = text.slice(tls ? 8 : 7);
  } else if (text.includes('://')) {
    throw bad('unknown scheme');
  }
  rest = rest.replace(/\/+$/, '');
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(rest);
  if (m === null) throw bad('expected HOST:PORT');
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw bad(`port ${port} is out of range`);
  return { address: rest, tls, text };
}
