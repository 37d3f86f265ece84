import { Effect } from "effect";
import { sql } from "kysely";
import type { QuarantineSource } from "../../db/schema.ts";
import { advisoryTransactionLock } from "../../queue/LockStore.ts";
import * as queueRows from "../QuarantineRows.ts";
import { countDeletedSince, idsWhere } from "../RecordReads.ts";
import { inScope, softDelete } from "../RecordRows.ts";
import type { RecordScope } from "../RecordStore.ts";
import { type GuardDeps, guardLockKey, OVERRIDE } from "./GuardDeps.ts";
import { judgeBurst } from "./guardRules.ts";

/** How deletions reported by a delta page or a webhook are guarded. */
export interface GuardDeletesOptions {
  readonly source: Exclude<QuarantineSource, "reconcile">;
  /** A record whose stored `remote_updated_at` is newer is not deleted (an old delete event). */
  readonly notNewerThan?: Date | undefined;
  /** Override the engine's `DeletionGuardConfig` for this run. */
  readonly maxDeletions?: number | undefined;
  readonly windowMinutes?: number | undefined;
  /** Deletes whatever the guard says (an operator confirmed it); queued deletions it applies are settled. */
  readonly allowMassDeletion?: boolean | undefined;
}

/** What became of reported deletions: applied, or held for review (the records stay live). */
export interface GuardOutcome {
  readonly deleted: ReadonlyArray<string>;
  /** Live records whose deletion waits in the review queue (added now or already there). */
  readonly quarantined: number;
}

const MINUTE_MS = 60_000;

/**
 * Deletions a delta page's tombstones or a webhook reported: applied, or (a burst, or while the
 * entity has deletions waiting for review) queued for review with the records left live. Only
 * live records count: a tombstone read again through a delta's overlap, or of a record never
 * synced, is nothing to delete. A record whose deletion an operator rejected is kept.
 *
 * The decision and the write are one transaction under the connection x entity's advisory lock,
 * so concurrent webhook jobs cannot each see room under the limit and together pass it.
 */
export const guardDeletes = (
  deps: GuardDeps,
  scope: RecordScope,
  externalIds: ReadonlyArray<string>,
  options: GuardDeletesOptions,
): Effect.Effect<GuardOutcome> =>
  Effect.gen(function* () {
    const ids = [...new Set(externalIds)];
    if (ids.length === 0) return { deleted: [], quarantined: 0 };
    const q = deps.query;
    const at = yield* deps.now;
    const iso = at.toISOString();
    const notNewerThan = options.notNewerThan === undefined ? {} : { notNewerThan: options.notNewerThan };
    if (options.allowMassDeletion === true) {
      return yield* deps.db.transaction(
        Effect.gen(function* () {
          const deleted = yield* q((k) => softDelete(k, iso, scope, ids, notNewerThan));
          yield* q((k) => queueRows.settleGone(k, iso, scope, { by: OVERRIDE }));
          return { deleted, quarantined: 0 };
        }),
      );
    }
    const maxDeletions = options.maxDeletions ?? deps.limits.maxDeletions;
    const windowMinutes = options.windowMinutes ?? deps.limits.windowMinutes;
    return yield* deps.db.transaction(
      Effect.gen(function* () {
        yield* q((k) => advisoryTransactionLock(k, guardLockKey(scope)));
        const newer =
          options.notNewerThan === undefined
            ? sql``
            : sql`and (remote_updated_at is null or remote_updated_at <= ${options.notNewerThan.toISOString()}::timestamptz)`;
        const candidates = yield* q((k) =>
          idsWhere(
            k,
            sql`${inScope(scope)} and deleted_at is null and external_id = any(${ids}::text[]) ${newer}
                and not ${queueRows.keptByRejection}`,
          ),
        );
        if (candidates.length === 0) return { deleted: [], quarantined: 0 };
        const pendingReview = yield* q((k) => queueRows.hasPending(k, scope));
        const windowStart = new Date(at.getTime() - windowMinutes * MINUTE_MS);
        let deletedInWindow = 0;
        if (!pendingReview) {
          // An operator's decision starts the window again: the burst they just approved is not counted twice.
          const decided = yield* q((k) => queueRows.lastDecisionAt(k, scope));
          const since = decided !== null && decided > windowStart ? decided : windowStart;
          // Past the limit, how far past does not change the judgement: the count stops there.
          deletedInWindow = yield* q((k) => countDeletedSince(k, scope, since, maxDeletions + 1));
        }
        const judged = judgeBurst({ pendingReview, deletedInWindow, incoming: candidates.length, maxDeletions });
        if (!judged.hold) {
          return { deleted: yield* q((k) => softDelete(k, iso, scope, candidates, notNewerThan)), quarantined: 0 };
        }
        const queued = yield* q((k) =>
          queueRows.queueRecords(k, iso, {
            where: sql`${inScope(scope)} and deleted_at is null and external_id = any(${candidates}::text[])`,
            source: options.source,
            guard: {
              rule: judged.rule,
              deletionsInWindow: deletedInWindow,
              incoming: candidates.length,
              maxDeletions,
              windowMinutes,
            },
          }),
        );
        if (queued > 0) {
          yield* Effect.logWarning("mass-deletion guard: deletions held for review").pipe(
            Effect.annotateLogs({
              connectionId: scope.connectionId,
              entity: scope.entity,
              source: options.source,
              rule: judged.rule,
              queued,
              deletionsInWindow: deletedInWindow,
            }),
          );
          yield* deps.db.afterCommit(deps.notify(scope.tenantId));
        }
        return { deleted: [], quarantined: candidates.length };
      }),
    );
  });
