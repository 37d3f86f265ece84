import { randomUUID } from "node:crypto";
import { callConnector, type DecodedRecord, decodeRecord, sourceStream } from "@tandem/connector-sdk/runtime";
import { Clock, Effect, Either, Stream } from "effect";
import { itemError } from "./itemErrors.ts";
import { type PullSettlementDeps, toIncoming, upsertPulled } from "./PullSettlement.ts";
import { invalidPage, type ResolvedEntity, unsupported } from "./ResolvedEntity.ts";
import type { SyncItemError } from "./SyncJob.ts";
import type { Quarantine, SyncRunOptions } from "./SyncRun.ts";

const iso = (ms: number) => new Date(ms).toISOString();

/** Reconciliation refreshes planner statistics before comparing a stage of this many ids or more. */
const analyzeStageFrom = 10_000;

/** Fetches records by id with `get`, decodes and upserts them in one batch. */
const fetchAndStore = (deps: PullSettlementDeps, r: ResolvedEntity, ids: ReadonlyArray<string>, concurrency: number) =>
  Effect.gen(function* () {
    const get = r.entity.get;
    if (get === undefined) return yield* unsupported(r, "the entity has no get(id)");
    const errors: Array<SyncItemError> = [];
    const found: Array<DecodedRecord> = [];
    yield* Effect.forEach(
      ids,
      (id) =>
        callConnector(() => get(r.ctx, id)).pipe(
          Effect.flatMap((raw) =>
            Effect.sync(() => {
              if (raw === null || raw === undefined) return;
              const decoded = decodeRecord(r.entity, raw);
              if (Either.isLeft(decoded)) errors.push(itemError(decoded.left, id));
              else found.push(decoded.right);
            }),
          ),
          Effect.catchTags({
            NotFound: () => Effect.void,
            InvalidRecord: (e) => Effect.sync(() => errors.push(itemError(e, id))),
          }),
        ),
      { concurrency, discard: true },
    );
    const unique = [...new Map(found.map((f) => [f.externalId, f])).values()].map(toIncoming);
    const result = yield* upsertPulled(deps, r.scope, r.entity.conflictPolicy, unique);
    return { result, errors };
  });

/**
 * Reconciliation: streams the remote ids into a stage in Postgres, soft-deletes stored records
 * whose ids vanished (unless that is more than `maxDeleteShare`: then the mass-deletion guard
 * queues them for review), and fetches the records the remote has and we lack.
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
      // Ids only, one page at a time, straight into Postgres: never whole objects in memory.
      // The next page is read while this one is staged.
      yield* sourceStream(() => readIds(r.ctx)).pipe(
        Stream.buffer({ capacity: 1 }),
        Stream.runForEach((page) =>
          Effect.gen(function* () {
            if (!Array.isArray(page)) return yield* invalidPage(r, "readIds yielded a page that is not an array");
            const ids = page
              .filter((id) => (typeof id === "string" && id !== "") || typeof id === "number")
              .map(String);
            pages++;
            staged += ids.length;
            yield* store.stageIds(runId, ids);
          }),
        ),
      );
      if (staged >= analyzeStageFrom) yield* store.analyzeStage();
      // The remote lists them: deletions of them waiting for review leave the queue.
      yield* deps.quarantine.releaseStaged(r.scope, runId);
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
      // Records the remote has and we lack (a missed delta, a lost webhook): fetched one by one.
      const counts = { created: 0, updated: 0, unchanged: 0 };
      const errors: Array<SyncItemError> = [];
      const pageSize = Math.max(1, options.batchSize ?? 500);
      let after: string | undefined;
      while (true) {
        const missing = yield* store.missingIds(r.scope, runId, { after, limit: pageSize });
        if (missing.length === 0) break;
        after = missing.at(-1);
        if (r.entity.get === undefined) {
          errors.push({
            externalId: missing[0]!,
            type: "EntityNotSupported",
            message: "records are missing but the entity has no get(id) to fetch them",
          });
          break;
        }
        const fetched = yield* fetchAndStore(deps, r, missing, options.concurrency ?? 4);
        counts.created += fetched.result.created.length;
        counts.updated += fetched.result.updated.length;
        counts.unchanged += fetched.result.unchanged;
        errors.push(...fetched.errors);
        if (missing.length < pageSize) break;
      }
      yield* store.saveCursor(r.scope, {
        lastReconcileAt: new Date(startedMs),
        quarantine: quarantine ?? null,
      });
      return {
        ...counts,
        deleted,
        errors,
        pages,
        resumed: false,
        ...(quarantine !== undefined ? { quarantine } : {}),
        ...(guarded.quarantined > 0 ? { quarantined: guarded.quarantined } : {}),
      };
    }).pipe(Effect.ensuring(store.clearStage(runId)));
  });
