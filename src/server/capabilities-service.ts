// Capabilities service: what this server supports (SHA-256, batch limit,
// API version range), per instance.
import { create } from '@bufbuild/protobuf';
import { Metadata, type UntypedServiceImplementation } from '@grpc/grpc-js';
import {
  ActionCacheUpdateCapabilitiesSchema,
  CacheCapabilitiesSchema,
  DigestFunction_Value,
  ExecutionCapabilitiesSchema,
  SemVerSchema,
  ServerCapabilitiesSchema,
  SymlinkAbsolutePathStrategy_Value,
  type GetCapabilitiesRequest,
  type ServerCapabilities,
  CAS_OBJECTS_HEADER,
  DIRECT_STORE_HEADER,
  EXECUTES_HERE_HEADER,
} from '../reapi/index.js';
import type { ServerContext } from './context.js';

/** The REAPI versions this server speaks. */
export const LOW_API_VERSION = { major: 2, minor: 0, patch: 0 };
export const HIGH_API_VERSION = { major: 2, minor: 3, patch: 0 };

/** `major.minor` as a SemVer no higher than this server's own. */
function capped(apiHigh: string | undefined): { major: number; minor: number; patch: number } {
  if (apiHigh === undefined) return HIGH_API_VERSION;
  const [major = 2, minor = 0] = apiHigh.split('.').map(Number);
  const own = HIGH_API_VERSION;
  return major < own.major || (major === own.major && minor < own.minor)
    ? { major, minor, patch: 0 }
    : own;
}

export function serverCapabilities(
  ctx: ServerContext,
  executes: boolean,
  apiHigh?: string,
): ServerCapabilities {
  return create(ServerCapabilitiesSchema, {
    cacheCapabilities: create(CacheCapabilitiesSchema, {
      digestFunctions: [DigestFunction_Value.SHA256],
      actionCacheUpdateCapabilities: create(ActionCacheUpdateCapabilitiesSchema, {
        updateEnabled: true,
      }),
      maxBatchTotalSizeBytes: BigInt(ctx.maxBatchBytes),
      symlinkAbsolutePathStrategy: SymlinkAbsolutePathStrategy_Value.ALLOWED,
    }),
    executionCapabilities: executes
      ? create(ExecutionCapabilitiesSchema, {
          digestFunction: DigestFunction_Value.SHA256,
          digestFunctions: [DigestFunction_Value.SHA256],
          execEnabled: true,
        })
      : undefined,
    lowApiVersion: create(SemVerSchema, LOW_API_VERSION),
    highApiVersion: create(SemVerSchema, capped(apiHigh)),
  });
}

export function capabilitiesService(ctx: ServerContext): UntypedServiceImplementation {
  return {
    getCapabilities: ctx.unary((req: GetCapabilitiesRequest, call) => {
      const stores = ctx.instance(req.instanceName);
      const md = new Metadata();
      if (stores.executor?.local === true) md.set(EXECUTES_HERE_HEADER, '1');
      if (stores.cas.objectsDir !== undefined) {
        md.set(CAS_OBJECTS_HEADER, stores.cas.objectsDir);
        // A recording session's action cache has no directory: every result must pass through it.
        if (stores.cas.directWrites === true && stores.ac.localDir !== undefined)
          md.set(DIRECT_STORE_HEADER, stores.ac.localDir);
      }
      if (Object.keys(md.getMap()).length > 0) call.sendMetadata(md);
      return Promise.resolve(
        serverCapabilities(ctx, stores.executor !== undefined, stores.apiHigh),
      );
    }),
  };
}
