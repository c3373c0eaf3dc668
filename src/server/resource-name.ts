// Parsing of ByteStream resource names: `{instance}/blobs/{hash}/{size}` for
// reads and `{instance}/uploads/{uuid}/blobs/{hash}/{size}{/metadata}` for writes.
import { SpecbuildError } from '../core/index.js';
import { parseDigest, type Digest } from '../reapi/index.js';

export interface ParsedName {
  instance: string;
  digest: Digest;
}

function invalid(name: string, why: string): SpecbuildError {
  return new SpecbuildError('reapi/invalid-name', `resource name "${name.slice(0, 300)}": ${why}`, {
    hint: 'expected INSTANCE/blobs/HASH/SIZE or INSTANCE/uploads/UUID/blobs/HASH/SIZE',
  });
}

/** Reads `blobs/[sha256/]HASH/SIZE` at `parts[i]`; returns the digest and the index after it. */
function blobAt(name: string, parts: string[], i: number): { digest: Digest; end: number } {
  if (parts[i] === 'compressed-blobs') throw invalid(name, 'compressed blobs are not supported');
  if (parts[i] !== 'blobs') throw invalid(name, 'no "blobs" segment');
  let j = i + 1;
  if (parts[j] === 'sha256') j++;
  const hash = parts[j];
  const size = parts[j + 1];
  if (hash === undefined || size === undefined || !/^\d{1,16}$/.test(size)) {
    throw invalid(name, 'expected HASH/SIZE after "blobs"');
  }
  return { digest: parseDigest(hash, size, `resource name "${name.slice(0, 300)}"`), end: j + 2 };
}

function instanceOf(name: string, parts: string[], i: number): string {
  const instance = parts.slice(0, i).join('/');
  if (parts.slice(0, i).some((p) => p === '' || p === '.' || p === '..')) {
    throw invalid(name, 'malformed instance name');
  }
  return instance;
}

export function parseReadName(name: string): ParsedName {
  const parts = name.split('/');
  // The last "blobs" segment followed by exactly HASH/SIZE or sha256/HASH/SIZE.
  for (let i = parts.length - 3; i >= Math.max(0, parts.length - 4); i--) {
    if (parts[i] === 'blobs' || parts[i] === 'compressed-blobs') {
      const { digest, end } = blobAt(name, parts, i);
      if (end !== parts.length) continue;
      return { instance: instanceOf(name, parts, i), digest };
    }
  }
  throw invalid(name, 'not a blob read name');
}

export function parseWriteName(name: string): ParsedName & { uuid: string } {
  const parts = name.split('/');
  for (let i = 0; i < parts.length; i++) {
    if (parts[i] !== 'uploads') continue;
    const uuid = parts[i + 1];
    if (uuid === undefined || uuid === '') throw invalid(name, 'empty upload id');
    const { digest } = blobAt(name, parts, i + 2); // anything after SIZE is optional metadata
    return { instance: instanceOf(name, parts, i), digest, uuid };
  }
  throw invalid(name, 'no "uploads" segment');
}
