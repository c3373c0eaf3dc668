// The ActionCache interface over a remote REAPI endpoint; NOT_FOUND is a miss.
import { status as Status } from '@grpc/grpc-js';
import type { ActionCache, CallOptions } from '../cas/index.js';
import {
  ActionCache as ActionCacheDesc,
  checkActionResult,
  toPb,
  type ActionResult,
  type Digest,
} from '../reapi/index.js';
import { RemoteCallError, type Connection } from './connection.js';

export class RemoteActionCache implements ActionCache {
  constructor(
    private readonly conn: Connection,
    private readonly instance: string,
  ) {}

  async getActionResult(
    actionDigest: Digest,
    opts: CallOptions = {},
  ): Promise<ActionResult | undefined> {
    try {
      const result = await this.conn.unary(
        ActionCacheDesc.method.getActionResult,
        { instanceName: this.instance, actionDigest: toPb(actionDigest) },
        opts,
      );
      checkActionResult(result, `ActionResult from ${this.conn.target.text}`);
      return result;
    } catch (e) {
      if (e instanceof RemoteCallError && e.grpcCode === Status.NOT_FOUND) return undefined;
      throw e;
    }
  }

  async updateActionResult(
    actionDigest: Digest,
    result: ActionResult,
    opts: CallOptions = {},
  ): Promise<void> {
    await this.conn.unary(
      ActionCacheDesc.method.updateActionResult,
      { instanceName: this.instance, actionDigest: toPb(actionDigest), actionResult: result },
      opts,
    );
  }
}
