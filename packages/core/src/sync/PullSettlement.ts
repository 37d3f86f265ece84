import { isDeepStrictEqual } from "node:util";
import type { ConflictPolicy } from "@tandem/connector-sdk";
import type { DecodedRecord } from "@tandem/connector-sdk/runtime";
import { Clock, type Context, Data, Effect, Option } from "effect";
import type { Database } from "../db/Database.ts";
import type { Conflicts } from "../store/Conflicts.ts";
import type { DeletionQuarantineService } from "../store/DeletionQuarantine.ts";
import { type DeleteAgainstEditRule, remoteEditsMeetDeletes } from "../store/deletesAgainstEdits.ts";
import type {
  CheckpointUpdate,
  IncomingRecord,
  PulledSettlement,
  RecordScope,
  RecordStoreService,
  UpsertResult,
} from "../store/RecordStore.ts";

/**
 * A pull meets unpushed local edits: the records the upsert held back (`UpsertResult.heldBack`)
 * are settled one by one, three-way against the base both sides started from. Edits to
 * different fields merge; overlapping edits go to the entity's conflict policy, and every
 * conflict is recorded (with `conflict.detected`) by `Conflicts.settle`. A merged record keeps
 * what the remote does not have yet as pending changes, so the next push sends exactly that.
 */
export interface PullSettlementDeps {
  readonly db: Context.Tag.Service<Database>;
  readonly store: RecordStoreService;
  readonly conflicts: Context.Tag.Service<Conflicts>;
  /** The mass-deletion guard every deletion a pull reports goes through. */
  readonly quarantine: DeletionQuarantineService;
}

export interface PullSettlementResult {
  /**
   * Written: merged (cleanly or by the policy, the record holds both sides' edits now), or the
   * remote version stored as is because the local edits were pushed in the meantime.
   */
  readonly updated: ReadonlyArray<string>;
  /** Left open for a person (manual policy, or a resolver that gave up): status `conflict`. */
  readonly conflicts: number;
  /** Pushed in the meantime, and the remote version then matched what was stored. */
  readonly unchanged: number;
}

type Outcome = "updated" | "conflict" | "unchanged";

/** The record changed between our read and our write; read again. */
class Raced extends Data.TaggedError("Raced") {}

/** Fields of `local` the remote does not hold (yet); null when there are none. */
const stillToPush = (local: Record<string, unknown>, remote: Record<string, unknown>) => {
  const pending = Object.fromEntries(
    Object.entries(local).filter(([field, value]) => !isDeepStrictEqual(value ?? null, remote[field] ?? null)),
  );
  return Object.keys(pending).length === 0 ? null : pending;
};

const MAX_ATTEMPTS = 5;

const settleOne = (
  deps: PullSettlementDeps,
  scope: RecordScope,
  policy: ConflictPolicy,
  remote: IncomingRecord,
): Effect.Effect<Outcome> =>
  Effect.gen(function* () {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = yield* deps.store.get(scope, remote.externalId);
      const stored = Option.getOrUndefined(current);
      if (
        stored === undefined ||
        stored.deletedAt !== null ||
        (stored.syncStatus !== "pending" && stored.syncStatus !== "conflict")
      ) {
        // Pushed (or deleted) in between: nothing local is left to protect, an ordinary upsert applies.
        const again = yield* deps.store.upsert(scope, [remote]);
        if (again.heldBack.length > 0) continue;
        return again.created.length + again.updated.length > 0 ? "updated" : "unchanged";
      }
      const remoteUpdatedAt = remote.remoteUpdatedAt ?? new Date(yield* Clock.currentTimeMillis);
      // The conflict row and the record's new state commit together; a race rolls both back.
      const outcome = yield* deps.db
        .transaction(
          Effect.gen(function* () {
            const settled = yield* deps.conflicts.settle(
              {
                tenantId: scope.tenantId,
                connectionId: scope.connectionId,
                entity: scope.entity,
                externalId: remote.externalId,
                base: stored.base,
                local: stored.data,
                remote: remote.data,
                localUpdatedAt: stored.localUpdatedAt ?? stored.changedAt,
                remoteUpdatedAt,
              },
              policy,
            );
            const settlement: PulledSettlement =
              settled.status === "open"
                ? { _tag: "Conflict", remote }
                : {
                    _tag: "Merged",
                    data: settled.record,
                    remote,
                    pendingChanges: stillToPush(settled.record, remote.data),
                  };
            const applied = yield* deps.store.applyPulledSettlement(
              scope,
              remote.externalId,
              stored.version,
              settlement,
            );
            if (!applied) return yield* new Raced();
            return settled.status === "open" ? ("conflict" as const) : ("updated" as const);
          }),
        )
        .pipe(Effect.catchTag("Raced", () => Effect.succeed(undefined)));
      if (outcome !== undefined) return outcome;
    }
    return yield* Effect.dieMessage(`record ${remote.externalId} kept changing while a pulled version was settled`);
  });

/** Settles the held-back records of one upsert batch (`incoming` holds their remote versions). */
export const settleHeldBack = (
  deps: PullSettlementDeps,
  scope: RecordScope,
  policy: ConflictPolicy,
  incoming: ReadonlyArray<IncomingRecord>,
  heldBack: ReadonlyArray<string>,
): Effect.Effect<PullSettlementResult> =>
  Effect.gen(function* () {
    const byId = new Map(incoming.map((r) => [r.externalId, r]));
    const updated: Array<string> = [];
    let conflicts = 0;
    let unchanged = 0;
    for (const id of heldBack) {
      const remote = byId.get(id);
      if (remote === undefined) continue;
      const outcome = yield* settleOne(deps, scope, policy, remote);
      if (outcome === "updated") updated.push(id);
      else if (outcome === "conflict") conflicts++;
      else unchanged++;
    }
    return { updated, conflicts, unchanged };
  });

/** A decoded remote record as the store takes it. */
export const toIncoming = (r: DecodedRecord): IncomingRecord => ({
  externalId: r.externalId,
  data: r.data,
  remoteUpdatedAt: r.updatedAt,
});

/**
 * Upserts pulled records; those that meet unpushed local edits are settled three-way
 * (see above) before the batch's checkpoint is saved, so a crash in between
 * re-reads them. Merged ones count as updated; ones left in conflict as unchanged. Records
 * deleted locally that the vendor edited since go by the delete-against-edit rule.
 */
export const upsertPulled = (
  deps: PullSettlementDeps,
  scope: RecordScope,
  policy: ConflictPolicy | undefined,
  batch: ReadonlyArray<IncomingRecord>,
  checkpoint?: CheckpointUpdate,
  deleteRule: DeleteAgainstEditRule = "edit-wins",
): Effect.Effect<UpsertResult> =>
  Effect.gen(function* () {
    const result = yield* deps.store.upsert(scope, batch, checkpoint === undefined ? {} : { checkpoint });
    if (result.heldBack.length === 0) return result;
    // Held back: records with unpushed local changes that the vendor changed too. Those deleted
    // locally (delete not pushed) go by the entity's delete-against-edit rule; the rest merge
    // three-way. Checked only here, so a batch that meets no local change costs no statement.
    const heldBack = new Set(result.heldBack);
    const deletes = yield* remoteEditsMeetDeletes(
      deps.db,
      scope,
      deleteRule,
      batch.filter((r) => heldBack.has(r.externalId)),
    );
    const toMerge = result.heldBack.filter((id) => !deletes.has(id));
    const settled =
      toMerge.length === 0
        ? { updated: [], conflicts: 0, unchanged: 0 }
        : yield* settleHeldBack(deps, scope, policy ?? { kind: "manual" }, batch, toMerge);
    if (checkpoint !== undefined) yield* deps.store.upsert(scope, [], { checkpoint });
    return {
      ...result,
      updated: [...result.updated, ...settled.updated],
      unchanged: result.unchanged + settled.conflicts + settled.unchanged,
    } satisfies UpsertResult;
  });
