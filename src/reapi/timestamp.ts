// google.protobuf.Timestamp from the network, validated at the edge: seconds
// within 0001-01-01..9999-12-31 and nanos within a second, as the type's own
// definition requires. Inside specbuild a moment is milliseconds since 1970.
import { timestampFromMs, type Timestamp } from '@bufbuild/protobuf/wkt';
import { SpecbuildError } from '../core/index.js';

/** 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, in seconds since 1970. */
const MIN_SECONDS = -62_135_596_800n;
const MAX_SECONDS = 253_402_300_799n;

/**
 * Milliseconds since 1970 of a Timestamp received from outside this process
 * (sub-millisecond nanos are dropped); undefined when the field is unset.
 */
export function parseTimestamp(ts: Timestamp | undefined, where: string): number | undefined {
  if (ts === undefined) return undefined;
  if (ts.seconds < MIN_SECONDS || ts.seconds > MAX_SECONDS) {
    throw new SpecbuildError(
      'reapi/invalid-message',
      `${where}: seconds ${ts.seconds} is outside years 1 to 9999`,
    );
  }
  if (!Number.isInteger(ts.nanos) || ts.nanos < 0 || ts.nanos > 999_999_999) {
    throw new SpecbuildError(
      'reapi/invalid-message',
      `${where}: nanos ${ts.nanos} is not within 0..999999999`,
    );
  }
  return Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1_000_000);
}

/** A Timestamp for milliseconds since 1970. */
export function toTimestamp(ms: number): Timestamp {
  return timestampFromMs(ms);
}
