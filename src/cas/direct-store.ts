// Writing into a local store's files from another process of the same user,
// as the store itself writes them: a blob into `cas/objects` (a temporary
// file in its shard, then a rename), an action result into `ac/entries`
// (a temporary file in `ac/tmp`, then a rename). Each file appears whole or
// not at all, as the store's own writes do, and nothing else of the store
// changes: a store without a quota keeps no other record of its blobs
// (local-cas.ts fills its index as blobs are used), and its action cache is
// those files. The wrapper daemon stores a miss it compiled here this way,
// when the server says it may (DIRECT_STORE_HEADER): no gRPC call, and none
// of the server's CPU (a zlib build's 34 misses cost the server 0.8-0.9 s of
// CPU through BatchUpdateBlobs and UpdateActionResult, 2-core VM).
import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { errnoCode } from '../core/index.js';
import {
  ActionResultSchema,
  checkActionResult,
  digestKey,
  digestOf,
  encodeCanonical,
  type ActionResult,
  type Digest,
} from '../reapi/index.js';
import { writeError } from './disk-error.js';
import { writeBlobFile } from './fs-tasks.js';

/** Where an action cache under `acDir` (`DIR/ac`) keeps the entry of `action`. */
export function actionEntryPath(acDir: string, action: Digest): string {
  return join(acDir, 'entries', action.hash.slice(0, 2), `${action.hash}-${String(action.size)}`);
}

/** A new temporary file's path in an action cache under `acDir` (the pid lets a crash's leftovers be told). */
export function actionTempPath(acDir: string): string {
  return join(acDir, 'tmp', `${String(process.pid)}-${randomBytes(8).toString('hex')}`);
}

/**
 * Stores `data` as a blob of the store whose blob directory is `objects`
 * (`DIR/cas/objects`), under the digest of the bytes themselves (as a
 * server stores what it is sent: bytes that changed since they were hashed
 * land under their own hash, never under another's). Returns that digest.
 */
export function putBlobFile(objects: string, data: Uint8Array): Digest {
  const d = digestOf(data);
  if (d.size > 0) writeBlobFile({ objects, tmp: join(dirname(objects), 'tmp') }, data, d.hash);
  return d;
}

/** Stores `result` as the action cache entry of `action` in the action cache under `acDir`. */
export function putActionResultFile(acDir: string, action: Digest, result: ActionResult): void {
  checkActionResult(result);
  const dest = actionEntryPath(acDir, action);
  const tmp = actionTempPath(acDir);
  try {
    writeFileSync(tmp, encodeCanonical(ActionResultSchema, result), { flag: 'wx' });
    try {
      renameSync(tmp, dest);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw e;
      mkdirSync(dirname(dest), { recursive: true });
      renameSync(tmp, dest);
    }
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // not written, or already gone
    }
    throw writeError(e, `the action cache entry of ${digestKey(action)}`);
  }
}
