import { randomUUID } from "node:crypto";
import { sourceStream } from "@tandem/connector-sdk/runtime";
import { Clock, Effect, Stream } from "effect";
import { remoteDeletesMeetEdits } from "../store/deletesAgainstEdits.ts";
import { vanishedWithEdits } from "../store/ReconcileStage.ts";
import { canFetchByIds, fetchAndStore } from "./fetchByIds.ts";
import { addItemErrors, itemErrorList, noItemErrors } from "./itemErrors.ts";
import { readListedPage } from "./listedIds.ts";
import type { PullSettlementDeps } from "./PullSettlement.ts";
import { invalidPage, type ResolvedEntity, unsupported } from "./ResolvedEntity.ts";
import type { SyncItemError } from "./SyncJob.ts";
import type { Quarantine, SyncRunOptions } from "./SyncRun.ts";

const iso = (ms: number) => new Date(ms).toISOString();

/** Reconciliation refreshes planner statistics before comparing a stage of this many ids or more. */
const analyzeStageFrom = 10_000;

/** What re-fetching a set of records did. */
interface Refetched {
  readonly ids: number;
  readonly created: number;
  readonly updated: number;
  readonly unchanged: number;
  readonly errors: ReadonlyArray<SyncItemError>;
}

/**
 * Fetches and stores, a page at a time, every id `nextPage` answers (ids in ascending order after
 * `after`, at most `limit`): the records the remote has and we lack, or hold an older copy of.
 */
const refetchPages = (
  deps: PullSettlementDeps,
  r: ResolvedEntity,
  options: SyncRunOptions,
  what: string,
  nextPage: (page: {
    readonly after: string | undefined;
    readonly limit: number;
  }) => Effect.Effect<ReadonlyArray<string>>,
) =>
  Effect.gen(function* () {
    const totals = { ids: 0, created: 0, updated: 0, unchanged: 0 };
    const errors: Array<SyncItemError> = [];
    const limit = Math.max(1, options.batchSize ?? 500);
    let after: string | undefined;
    while (true) {
      const ids = yield* nextPage({ after, limit });
      if (ids.length === 0) break;
      after = ids.at(-1);
      if (!canFetchByIds(r)) {
        errors.push({
          externalId: ids[0]!,
          type: "EntityNotSupported",
          message: `records are ${what} but the entity has no get(id) or getMany(ids) to fetch them`,
        });
        break;
      }
      const fetched = yield* fetchAndStore(deps, r, ids, options.concurrency ?? 4);
      totals.ids += ids.length;
      totals.created += fetched.result.created.length;
      totals.updated += fetched.result.updated.length;
      totals.unchanged += fetched.result.unchanged;
      errors.push(...fetched.errors);
      if (ids.length < limit) break;
    }
    return { ...totals, errors } satisfies Refetched;
  });

/**
 * Reconciliation: streams the remote ids into a stage in Postgres, soft-deletes stored records
 * whose ids vanished (unless that is more than `maxDeleteShare`: then the mass-deletion guard
 * queues them for review), re-fetches the records the remote lists as modified after the stored
 * copy (when `readIds` lists times: updates every delta missed), and fetches the records the
 * remote has and we lack.
 */
export const reconcile = (deps: PullSettlementDeps, r: ResolvedEntity, options: SyncRunOptions) =>
  Effect.gen(function* () {
    const { store } = deps;
    const readIds = r.entity.readIds;
    if (readIds === undefined) return yield* unsupported(r, "the entity has no readIds; it cannot be reconciled");
    const runId = randomUUID();
    const startedMs = yield* Clock.currentTimeMillis;
    yield* store.clearStaleStages(new Date(startedMs - 86_400_000));
    return yield* Effect.gen(function* () {
      let pages = 0;
      let staged = 0;
      let withTimes = 0;
      // Capped like every run's item errors: a listing of a million bad times must not hold a million.
      let errors = noItemErrors(options.maxItemErrors ?? 1_000);
      // Ids (with their modification times, where listed) one page at a time, straight into
      // Postgres: never whole objects in memory. The next page is read while this one is staged.
      yield* sourceStream(() => readIds(r.ctx)).pipe(
        Stream.buffer({ capacity: 1 }),
        Stream.runForEach((page) =>
          Effect.gen(function* () {
            if (!Array.isArray(page)) return yield* invalidPage(r, "readIds yielded a page that is not an array");
            const listed = readListedPage(page);
            pages++;
            staged += listed.staged.externalIds.length;
            withTimes += listed.withTimes;
            errors = addItemErrors(errors, listed.errors);
            yield* store.stageIds(runId, listed.staged);
          }),
        ),
      );
      if (staged >= analyzeStageFrom) yield* store.analyzeStage();
      // The remote lists them: deletions of them waiting for review leave the queue.
      yield* deps.quarantine.releaseStaged(r.scope, runId);
      // Vanished with an unpushed local edit: the delete-against-edit rule first (edit-wins makes
      // them provisional, to be created again, which reconciliation then leaves alone).
      const edited = yield* deps.db.query((k) => vanishedWithEdits(k, r.scope, runId)).pipe(Effect.orDie);
      yield* remoteDeletesMeetEdits(deps.db, r.scope, r.settings.deleteAgainstEdit, edited);
      const stored = yield* store.count(r.scope);
      const vanished = yield* store.vanished(r.scope, runId);
      // Vanished records are deleted, or queued for review by the mass-deletion guard (see guardVanished).
      const guarded = yield* deps.quarantine.guardVanished(r.scope, runId, {
        stored,
        vanished: vanished.count,
        maxDeleteShare: options.maxDeleteShare,
        allowMassDeletion: options.allowMassDeletion,
      });
      const deleted = guarded.deleted;
      let quarantine: Quarantine | undefined;
      if (guarded.held) {
        quarantine = {
          at: iso(startedMs),
          wouldDelete: vanished.count,
          stored,
          share: guarded.share,
          sample: vanished.sample,
        };
        yield* Effect.logWarning("reconciliation quarantined: it would delete too many records", quarantine);
      }
      // Records the remote lists as modified after our copy (an update every delta missed):
      // compared in the database, re-fetched through the pull settlement. Skipped when the
      // listing carried no times (ids-only entities).
      const drift =
        withTimes === 0
          ? undefined
          : yield* refetchPages(deps, r, options, "newer remotely", (page) => store.driftedIds(r.scope, runId, page));
      // Records the remote has and we lack (a missed delta, a lost webhook).
      const missing = yield* refetchPages(deps, r, options, "missing", (page) =>
        store.missingIds(r.scope, runId, page),
      );
      const counts = {
        created: missing.created + (drift?.created ?? 0),
        updated: missing.updated + (drift?.updated ?? 0),
        unchanged: missing.unchanged + (drift?.unchanged ?? 0),
      };
      errors = addItemErrors(addItemErrors(errors, drift?.errors ?? []), missing.errors);
      yield* store.saveCursor(r.scope, {
        lastReconcileAt: new Date(startedMs),
        quarantine: quarantine ?? null,
      });
      return {
        ...counts,
        deleted,
        ...(drift !== undefined ? { drifted: drift.ids } : {}),
        errors: itemErrorList(errors),
        pages,
        resumed: false,
        ...(quarantine !== undefined ? { quarantine } : {}),
        ...(guarded.quarantined > 0 ? { quarantined: guarded.quarantined } : {}),
      };
    }).pipe(Effect.ensuring(store.clearStage(runId)));
  });
