// grpc-js writes some failures to stderr itself before handing them back as
// errors ("E No address added out of total 1 resolved" before the bind error
// that `specbuild server` reports with a hint). Its log lines go where the
// caller says: to a sink of ours, or nowhere.
import { logVerbosity as LogVerbosity, setLogger, setLogVerbosity } from '@grpc/grpc-js';

/**
 * Sends grpc-js's log lines (errors only) to `sink`, or drops them when it
 * is undefined. GRPC_VERBOSITY / GRPC_NODE_VERBOSITY, set to debug grpc-js
 * itself, win: its logging is then left as they say.
 */
export function routeGrpcLog(sink: ((line: string) => void) | undefined): void {
  if (process.env.GRPC_VERBOSITY !== undefined || process.env.GRPC_NODE_VERBOSITY !== undefined) {
    return;
  }
  if (sink === undefined) {
    setLogVerbosity(LogVerbosity.NONE);
    return;
  }
  const write = (...args: unknown[]): void => {
    sink(args.map(String).join(' '));
  };
  setLogger({ error: write, info: write, debug: write });
  setLogVerbosity(LogVerbosity.ERROR);
}
