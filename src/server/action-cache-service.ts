// ActionCache service: GetActionResult (a miss is NOT_FOUND, with optional
// inlined stdout/stderr/output files) and UpdateActionResult.
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { SpecbuildError } from '../core/index.js';
import type { Cas } from '../cas/index.js';
import {
  checkActionResult,
  digestKey,
  fromPb,
  type ActionResult,
  type GetActionResultRequest,
  type UpdateActionResultRequest,
} from '../reapi/index.js';
import type { ServerContext } from './context.js';

/** Largest blob inlined into a GetActionResult response. */
const INLINE_LIMIT = 64 * 1024;

export function actionCacheService(ctx: ServerContext): UntypedServiceImplementation {
  return {
    getActionResult: ctx.unary(async (req: GetActionResultRequest) => {
      ctx.checkDigestFunction(req.digestFunction);
      const { cas, ac } = ctx.instance(req.instanceName);
      const digest = fromPb(req.actionDigest, 'action_digest');
      const result = await ac.getActionResult(digest);
      if (result === undefined) {
        throw new SpecbuildError(
          'cas/not-found',
          `no cached result for action ${digestKey(digest)}`,
        );
      }
      await inlineOutputs(cas, result, req);
      return result;
    }),

    updateActionResult: ctx.unary(async (req: UpdateActionResultRequest) => {
      ctx.checkDigestFunction(req.digestFunction);
      const { ac } = ctx.instance(req.instanceName);
      const digest = fromPb(req.actionDigest, 'action_digest');
      const result = req.actionResult;
      if (result === undefined)
        throw new SpecbuildError('reapi/invalid-message', 'action_result is missing');
      checkActionResult(result, 'action_result');
      await ac.updateActionResult(digest, result);
      return result;
    }),
  };
}

/** Fills stdout_raw / stderr_raw / output file contents when asked (small blobs only). */
export async function inlineOutputs(
  cas: Cas,
  result: ActionResult,
  req: { inlineStdout: boolean; inlineStderr: boolean; inlineOutputFiles: string[] },
): Promise<void> {
  const small = async (d: ActionResult['stdoutDigest']): Promise<Uint8Array | undefined> => {
    if (d === undefined || d.sizeBytes > BigInt(INLINE_LIMIT)) return undefined;
    return cas.readBlob(fromPb(d)).catch(() => undefined);
  };
  if (req.inlineStdout) result.stdoutRaw = (await small(result.stdoutDigest)) ?? result.stdoutRaw;
  if (req.inlineStderr) result.stderrRaw = (await small(result.stderrDigest)) ?? result.stderrRaw;
  const wanted = new Set(req.inlineOutputFiles);
  for (const f of result.outputFiles) {
    if (wanted.has(f.path)) f.contents = (await small(f.digest)) ?? f.contents;
  }
}
