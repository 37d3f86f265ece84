import { Effect } from "effect";
import { sql } from "kysely";
import { advisoryTransactionLock } from "../../queue/LockStore.ts";
import * as queueRows from "../QuarantineRows.ts";
import { deleteVanished, vanishedWhere } from "../ReconcileStage.ts";
import { countWhere } from "../RecordReads.ts";
import { softDeleteWhere } from "../RecordRows.ts";
import type { RecordScope } from "../RecordStore.ts";
import { type GuardDeps, guardLockKey, OVERRIDE } from "./GuardDeps.ts";
import { judgeShare } from "./guardRules.ts";

/** What reconciliation run `runId` compared: the live stored records, and those the remote no longer lists. */
export interface VanishedInput {
  readonly stored: number;
  readonly vanished: number;
  /** Overrides the engine's `DeletionGuardConfig` for this run. */
  readonly maxDeleteShare?: number | undefined;
  /** Deletes every vanished record whatever the share (an operator confirmed it). */
  readonly allowMassDeletion?: boolean | undefined;
}

/** What became of the vanished records. */
export interface VanishedOutcome {
  readonly deleted: number;
  /** Vanished records left live, their deletion in the review queue. */
  readonly quarantined: number;
  /** True when the share rule held this run's deletions. */
  readonly held: boolean;
  /** Vanished records (those an operator chose to keep aside) over the stored ones. */
  readonly share: number;
}

/**
 * Reconciliation's guard: the records the remote no longer lists are deleted, unless they are
 * more than `maxDeleteShare` of the stored ones; then all of them go to the review queue (source
 * `reconcile`) and nothing is deleted.
 *
 * Against the queue (only read when the entity has rows in it, nearly never): records whose
 * deletion an operator rejected are kept, and not counted in the share; deletions a delta or a
 * webhook burst queued stay for the operator (a run within its share does not delete them
 * behind their back); and its own earlier queued deletions, it judges again: deleted now (the
 * rows settled as approved by "reconciliation", e.g. a run given a higher share), or queued
 * still. `allowMassDeletion` deletes every vanished record and settles their rows.
 */
export const guardVanished = (
  deps: GuardDeps,
  scope: RecordScope,
  runId: string,
  input: VanishedInput,
): Effect.Effect<VanishedOutcome> =>
  deps.db.transaction(
    Effect.gen(function* () {
      const q = deps.query;
      const iso = (yield* deps.now).toISOString();
      yield* q((k) => advisoryTransactionLock(k, guardLockKey(scope)));
      const open = yield* q((k) => queueRows.hasOpenRows(k, scope));
      const vanished = vanishedWhere(scope, runId);
      if (input.allowMassDeletion === true) {
        const deleted = yield* q((k) => deleteVanished(k, iso, scope, runId));
        if (open) yield* q((k) => queueRows.settleGone(k, iso, scope, { by: OVERRIDE }));
        return { deleted, quarantined: 0, held: false, share: input.stored === 0 ? 0 : input.vanished / input.stored };
      }
      const kept = open ? yield* q((k) => countWhere(k, sql`${vanished} and ${queueRows.keptByRejection}`)) : 0;
      const maxDeleteShare = input.maxDeleteShare ?? deps.limits.maxDeleteShare;
      const judged = judgeShare({ vanished: input.vanished - kept, stored: input.stored, maxDeleteShare });
      if (judged.hold) {
        const queued = yield* q((k) =>
          queueRows.queueRecords(k, iso, {
            where: sql`${vanished} and not ${queueRows.keptByRejection}`,
            source: "reconcile",
            guard: {
              rule: "max-share",
              vanished: input.vanished - kept,
              stored: input.stored,
              share: judged.share,
              maxDeleteShare,
            },
          }),
        );
        if (queued > 0) yield* deps.db.afterCommit(deps.notify(scope.tenantId));
        return { deleted: 0, quarantined: input.vanished - kept, held: true, share: judged.share };
      }
      if (!open) {
        const deleted = yield* q((k) => deleteVanished(k, iso, scope, runId));
        return { deleted, quarantined: 0, held: false, share: judged.share };
      }
      const deleted = yield* q((k) =>
        softDeleteWhere(k, sql`${vanished} and not ${queueRows.heldFromReconciliation}`, iso),
      );
      const settled = yield* q((k) =>
        queueRows.settleGone(k, iso, scope, { by: "reconciliation", source: "reconcile" }),
      );
      if (settled > 0) yield* deps.db.afterCommit(deps.notify(scope.tenantId));
      return {
        deleted,
        quarantined: Math.max(0, input.vanished - kept - deleted),
        held: false,
        share: judged.share,
      };
    }),
  );
