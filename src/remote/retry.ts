// Retry policy for remote calls: exponential backoff with jitter on
// UNAVAILABLE and RESOURCE_EXHAUSTED, honouring a server's google.rpc.RetryInfo.
import { fromBinary } from '@bufbuild/protobuf';
import { anyUnpack } from '@bufbuild/protobuf/wkt';
import { status as Status, type Metadata } from '@grpc/grpc-js';
import { rpc, rpcDetails } from '../reapi/index.js';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 100, maxDelayMs: 5000 };

export function isRetryable(code: Status | undefined): boolean {
  return code === Status.UNAVAILABLE || code === Status.RESOURCE_EXHAUSTED;
}

/** The delay a server asked for in RetryInfo (in `grpc-status-details-bin`), if any. */
export function retryInfoDelayMs(metadata: Metadata | undefined): number | undefined {
  const raw = metadata?.get('grpc-status-details-bin')[0];
  if (raw === undefined || typeof raw === 'string') return undefined;
  try {
    const st = fromBinary(rpc.StatusSchema, raw);
    for (const any of st.details) {
      const info = anyUnpack(any, rpcDetails.RetryInfoSchema);
      if (info?.retryDelay !== undefined) {
        return Number(info.retryDelay.seconds) * 1000 + Math.floor(info.retryDelay.nanos / 1e6);
      }
    }
  } catch {
    // Malformed details are ignored; the default backoff applies.
  }
  return undefined;
}

/** Backoff before attempt `attempt` (1 = first retry), with ±20% jitter. */
export function backoffMs(policy: RetryPolicy, attempt: number, serverDelayMs?: number): number {
  if (serverDelayMs !== undefined) return Math.min(serverDelayMs, policy.maxDelayMs * 6);
  const base = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason as Error);
      return;
    }
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
