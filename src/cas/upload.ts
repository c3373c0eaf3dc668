// Uploading what a store lacks: one FindMissingBlobs for the lot, then only the
// missing blobs are read (from memory or disk) and written. The one way every
// client uploads an action's blobs.
import { readFile } from 'node:fs/promises';
import { digestKey, type Digest } from '../reapi/index.js';
import type { CallOptions, Cas } from './cas.js';

/** A blob to upload: its bytes in memory, or the file that holds them. */
export interface UploadItem {
  digest: Digest;
  bytes?: Uint8Array;
  path?: string;
}

/** Upload items by digestKey (an action's blobs, each once). */
export type Uploads = Map<string, UploadItem>;

/** Writes the items `cas` does not hold (one FindMissingBlobs for all of them). */
export async function uploadMissing(
  cas: Cas,
  items: Uploads,
  opts: CallOptions = {},
): Promise<void> {
  const lacking = new Set(
    (
      await cas.findMissingBlobs(
        [...items.values()].map((u) => u.digest),
        opts,
      )
    ).map(digestKey),
  );
  const blobs: Uint8Array[] = [];
  for (const [key, u] of items) {
    if (!lacking.has(key)) continue;
    if (u.bytes === undefined && u.path === undefined)
      throw new Error(`bug: upload item ${key} has neither bytes nor a path`);
    blobs.push(u.bytes ?? (await readFile(u.path ?? '')));
  }
  if (blobs.length > 0) await cas.writeBlobs(blobs, opts);
}
