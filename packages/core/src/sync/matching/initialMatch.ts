import { Unavailable } from "@tandem/connector-sdk";
import { Clock, type Context, Effect } from "effect";
import { InvalidInput } from "../../errors/Errors.ts";
import type { LocksService } from "../../queue/Locks.ts";
import type { PushOutbox } from "../../store/PushOutbox.ts";
import type { RecordStoreService } from "../../store/RecordStore.ts";
import { type PullSettlementDeps, upsertPulled } from "../PullSettlement.ts";
import { recordFieldNames } from "../push/localChangeFields.ts";
import type { ResolvedEntity } from "../ResolvedEntity.ts";
import type { SyncRunError } from "../SyncRun.ts";
import { matchKeyFor } from "./matchKey.ts";
import { type MatchPlan, planMatches } from "./planMatches.ts";
import { readVendorRecords } from "./readVendorRecords.ts";

export interface InitialMatchDeps {
  readonly store: RecordStoreService;
  readonly outbox: Context.Tag.Service<PushOutbox>;
  /** The pull's settlement: a linked record meets the vendor's version as a pull would. */
  readonly pull: PullSettlementDeps;
  readonly locks: LocksService;
}

/** Held while an entity's records are matched: drains of it (which may run side by side) wait. */
export const initialMatchLockKey = (connectionId: string, entity: string) => `initial-match:${connectionId}:${entity}`;

/** What a first two-way sync of the entity would do (the plan, written nowhere), with the key used. */
export interface PlannedMatch {
  /** The key's fields; null when the entity has none (nothing is matched). */
  readonly matchKey: ReadonlyArray<string> | null;
  readonly plan: MatchPlan;
}

/** The plan of the entity's first two-way sync: reads the store and the vendor, writes nothing. */
export const planInitialMatch = (
  store: RecordStoreService,
  r: ResolvedEntity,
  matchKey?: ReadonlyArray<string>,
): Effect.Effect<PlannedMatch, SyncRunError | InvalidInput> =>
  Effect.gen(function* () {
    const known = recordFieldNames(r.entity);
    const unknown = (matchKey ?? []).flatMap((field, i) => (known === undefined || known.includes(field) ? [] : [i]));
    if (unknown.length > 0) {
      return yield* new InvalidInput({
        issues: unknown.map((i) => ({
          path: `matchKey.${i}`,
          message: `"${matchKey![i]}" is not a field of ${r.scope.entity}`,
        })),
      });
    }
    // The caller's key (a plan's override), else the connection's setting, else the entity's default.
    const key = matchKeyFor(r.scope.entity, matchKey ?? r.settings.matchKey ?? undefined);
    const state = yield* store.matchingState(r.scope);
    const vendor = yield* readVendorRecords(r);
    if (key === undefined) {
      const plan = planMatches({ ...state, vendor }, { fields: [], keyOf: () => null });
      return { matchKey: null, plan };
    }
    return { matchKey: key.fields, plan: planMatches({ ...state, vendor }, key) };
  });

const describe = (a: MatchPlan["ambiguous"][number]) =>
  a.reason === "vendor"
    ? `ambiguous match: ${a.candidates.length} vendor records have the key ${a.key} (${a.candidates.map((c) => c.externalId).join(", ")}); retry to create it anyway, or discard it`
    : `ambiguous match: other local records have the key ${a.key} of vendor record ${a.candidates[0]!.externalId}; retry to create it anyway, or discard it`;

/**
 * Initial matching, run by a push drain before it writes anything: the first time an entity has
 * records created locally (and once per connection x entity), they are matched by the match key
 * with every record the vendor has. A matched record takes the vendor record's id instead of
 * being created, and the vendor's version is settled against it as a pull meeting local changes
 * (three-way over an empty base: fields only one side set merge; fields both set differently go
 * to the entity's conflict policy, recorded as a conflict). An ambiguous one is held, failed with
 * the candidates named, its push dead (listed for an operator to retry or discard). The rest are
 * created by the drain as usual. Later local creates are not matched again.
 *
 * Answers whether the drain may create records: true once matching is done. False when nothing
 * was created locally yet; a create submitted while this drain runs then waits for the drain its
 * submission queued, which matches first (this one may not write it: the matching could meet the
 * vendor's copy of it while its create is in flight, and take that copy for a match).
 */
export const matchBeforeFirstPush = (
  deps: InitialMatchDeps,
  r: ResolvedEntity,
  matchKey?: ReadonlyArray<string>,
): Effect.Effect<boolean, SyncRunError> =>
  Effect.gen(function* () {
    const cursor = yield* deps.store.cursor(r.scope);
    if (cursor !== undefined && cursor.initialMatchedAt !== null) return true;
    // Nothing created locally yet: the first local create is what a match waits for. Asked of
    // the outbox (pending changes only), not the records, so that drains of edits stay cheap.
    if (!(yield* deps.outbox.hasPendingCreate(r.scope))) return false;
    // Drains of one entity may run side by side: one matches while the others wait here, then
    // find it done, so none creates a record that is being matched.
    const key = initialMatchLockKey(r.scope.connectionId, r.scope.entity);
    return yield* deps.locks
      .withLock(key, { waitMs: 60_000, ttlMs: 60_000 }, () => matchUnderLock(deps, r, matchKey))
      .pipe(
        Effect.catchTags({
          LockHeld: (e) => Effect.fail(new Unavailable({ message: `initial matching is running: ${e.message}` })),
          LockLost: () => Effect.fail(new Unavailable({ message: "initial matching lost its lock; it runs again" })),
        }),
      );
  });

const matchUnderLock = (
  deps: InitialMatchDeps,
  r: ResolvedEntity,
  matchKey: ReadonlyArray<string> | undefined,
): Effect.Effect<boolean, SyncRunError> =>
  Effect.gen(function* () {
    const again = yield* deps.store.cursor(r.scope);
    if (again !== undefined && again.initialMatchedAt !== null) return true;
    const { plan } = yield* planInitialMatch(deps.store, r, matchKey).pipe(
      // A key the caller gave that names no field is refused before a drain ever runs.
      Effect.catchTag("InvalidInput", (e) => Effect.die(e)),
    );
    for (const m of plan.matched) {
      const linked = yield* deps.outbox.link(r.scope, m.local.externalId, m.vendor.externalId);
      if (linked === undefined) continue;
      const { externalId, data, updatedAt } = m.vendor;
      yield* upsertPulled(deps.pull, r.scope, r.entity.conflictPolicy, [
        { externalId, data, remoteUpdatedAt: updatedAt },
      ]);
    }
    for (const a of plan.ambiguous) yield* deps.outbox.hold(r.scope, a.local, describe(a));
    yield* deps.store.saveCursor(r.scope, { initialMatchedAt: new Date(yield* Clock.currentTimeMillis) });
    yield* Effect.logInfo("initial matching", {
      entity: r.scope.entity,
      matched: plan.matched.length,
      ambiguous: plan.ambiguous.length,
      toCreateRemotely: plan.toCreateRemotely.length,
    });
    return true;
  });
