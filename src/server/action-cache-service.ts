// ActionCache service: GetActionResult (a miss is NOT_FOUND, with optional
// inlined stdout/stderr/output files) and UpdateActionResult.
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { clone } from '@bufbuild/protobuf';
import { SpecbuildError } from '../core/index.js';
import type { Cas } from '../cas/index.js';
import {
  ActionResultSchema,
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
      return inlineOutputs(cas, result, req);
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

/** Largest total of blobs inlined into one response (it must stay far below the message limit). */
const INLINE_BUDGET = 1024 * 1024;

/**
 * A copy of `result` with stdout_raw / stderr_raw / output file contents
 * filled where asked: small blobs only, within a total budget; `result`
 * itself when nothing is asked. The result given is never changed (one result
 * may answer several callers).
 */
export async function inlineOutputs(
  cas: Cas,
  result: ActionResult,
  req: { inlineStdout: boolean; inlineStderr: boolean; inlineOutputFiles: string[] },
): Promise<ActionResult> {
  if (!req.inlineStdout && !req.inlineStderr && req.inlineOutputFiles.length === 0) return result;
  const out = clone(ActionResultSchema, result);
  let budget = INLINE_BUDGET;
  const small = async (d: ActionResult['stdoutDigest']): Promise<Uint8Array | undefined> => {
    if (d === undefined || d.sizeBytes > BigInt(Math.min(INLINE_LIMIT, budget))) return undefined;
    const data = await cas.readBlob(fromPb(d)).catch(() => undefined);
    if (data !== undefined) budget -= data.byteLength;
    return data;
  };
  if (req.inlineStdout) out.stdoutRaw = (await small(out.stdoutDigest)) ?? out.stdoutRaw;
  if (req.inlineStderr) out.stderrRaw = (await small(out.stderrDigest)) ?? out.stderrRaw;
  const wanted = new Set(req.inlineOutputFiles);
  for (const f of out.outputFiles) {
    if (wanted.has(f.path)) f.contents = (await small(f.digest)) ?? f.contents;
  }
  return out;
}
