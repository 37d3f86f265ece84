import { randomUUID } from "node:crypto";
import { RateBudget } from "@tandem/connector-sdk/runtime";
import { Clock, Context, Effect, Layer, type Stream } from "effect";
import { ConnectorCredentials } from "../connector/ConnectorCredentials.ts";
import { RateBudgets } from "../connector/RateBudgets.ts";
import { Database } from "../db/Database.ts";
import { refreshPlannerStatistics } from "../db/PlannerStatistics.ts";
import { InvalidInput, type ResourceNotFound } from "../errors/Errors.ts";
import { Locks } from "../queue/Locks.ts";
import { RetryPolicy } from "../queue/RetryPolicy.ts";
import { Conflicts } from "../store/Conflicts.ts";
import { DeletionQuarantine } from "../store/DeletionQuarantine.ts";
import { PushOutbox } from "../store/PushOutbox.ts";
import { type ExportFormat, RecordStore } from "../store/RecordStore.ts";
import { Connections } from "../tenancy/Connections.ts";
import { checkConnection } from "./checkConnection.ts";
import { pullsRun, pushesRun } from "./entitySettings.ts";
import { entitySource } from "./entitySource.ts";
import { readFullOrDelta } from "./fullDeltaRead.ts";
import { importRecords } from "./importRecords.ts";
import { matchBeforeFirstPush, type PlannedMatch, planInitialMatch } from "./matching/initialMatch.ts";
import type { DrainOptions, DrainResult } from "./push/drainOutbox.ts";
import { PushConfig } from "./push/PushConfig.ts";
import { drain, push } from "./push.ts";
import { resolveEntity } from "./ResolvedEntity.ts";
import { reconcile } from "./reconcile.ts";
import type {
  ConnectionCheck,
  ImportOptions,
  ImportResult,
  RecordEvent,
  SyncMode,
  SyncRecordResult,
  SyncRunError,
  SyncRunOptions,
  SyncRunResult,
  SyncTarget,
} from "./SyncRun.ts";
import { syncRecord } from "./syncRecord.ts";

export * from "./SyncRun.ts";

/**
 * The sync engine: each strategy as a plain Effect over one connection entity.
 * No locking or queueing happens here; the job queue serializes runs per
 * connection x entity and calls these.
 */
export class EntitySync extends Context.Tag("@tandem/core/EntitySync")<
  EntitySync,
  {
    /** Runs one strategy. Full and delta resume from the checkpoint of an interrupted run of the same mode. */
    readonly run: (
      input: SyncTarget & { readonly mode: SyncMode; readonly options?: SyncRunOptions },
    ) => Effect.Effect<SyncRunResult, SyncRunError>;
    /**
     * Tests a connection: calls its connector's `check` (credentials, reachability) through the
     * engine's HTTP client. A refusal is an answer (`ok: false` with the reason), not a failure;
     * `checked: false` when the connector has no check.
     */
    readonly check: (target: {
      readonly tenantId: string;
      readonly connectionId: string;
    }) => Effect.Effect<ConnectionCheck, ResourceNotFound>;
    /** Webhook-triggered sync of one record: `get(id)`, then upsert or soft-delete. */
    readonly syncRecord: (target: SyncTarget, event: RecordEvent) => Effect.Effect<SyncRecordResult, SyncRunError>;
    /** Imports records given by the caller: batched, validated concurrently, committed at the end in one transaction. */
    readonly importRecords: (
      target: SyncTarget,
      records: Iterable<unknown> | AsyncIterable<unknown>,
      options?: ImportOptions,
    ) => Effect.Effect<ImportResult, SyncRunError>;
    /**
     * The connector entity's records, decoded, as a Stream: the source of a SyncJob
     * whose sink is the user's own tables (`fetchExternal: () => engine.source(target)`).
     * A record that fails to decode is logged and skipped; a broken page fails the stream.
     */
    readonly source: (target: SyncTarget, options?: { readonly since?: Date }) => Stream.Stream<unknown, SyncRunError>;
    /** The entity's stored records as NDJSON or CSV text chunks. */
    readonly export: (
      target: SyncTarget,
      format: ExportFormat,
      options?: { readonly columns?: ReadonlyArray<string>; readonly includeDeleted?: boolean },
    ) => Stream.Stream<string>;
    /**
     * Drains the entity's push outbox: its due local changes (or all pending ones) written through
     * the connector and settled (see `drainOutbox`). Push jobs call it; it queues nothing itself.
     */
    readonly drain: (target: SyncTarget, options: DrainOptions) => Effect.Effect<DrainResult, SyncRunError>;
    /**
     * What a first two-way sync of the entity would do: its local-only records matched by the
     * match key (`matchKey`: field names overriding the entity's default) with every record the
     * vendor has. A dry run: reads the store and the vendor, writes nothing.
     */
    readonly plan: (
      target: SyncTarget,
      options?: { readonly matchKey?: ReadonlyArray<string> | undefined },
    ) => Effect.Effect<PlannedMatch, SyncRunError | InvalidInput>;
  }
>() {
  /** Needs RecordStore, PushOutbox, Connections, Conflicts, DeletionQuarantine, RateBudget, RetryPolicy, Locks and Database. */
  static readonly layerNoDeps = Layer.effect(
    EntitySync,
    Effect.suspend(() => makeEntitySync),
  );

  /** Needs Database and the roots below Connections and Conflicts. */
  static readonly layer = EntitySync.layerNoDeps.pipe(
    Layer.provide(
      Layer.mergeAll(
        RecordStore.layer,
        PushOutbox.layer,
        RetryPolicy.layer,
        Locks.layer,
        Connections.layer,
        Conflicts.layer,
        DeletionQuarantine.layer,
        RateBudgets.layer,
        ConnectorCredentials.layer,
      ),
    ),
  );
}

/** A run the entity's settings stop (disabled, or the other direction only). */
const skippedRun = { created: 0, updated: 0, unchanged: 0, deleted: 0, errors: [], pages: 0, resumed: false };
/** A drain of an entity whose settings stop pushes: its entries wait (drains are woken when settings change). */
const skippedDrain = { created: 0, updated: 0, deleted: 0, unchanged: 0, errors: [], nextDueAt: null };

/** Each operation is a function of explicit dependencies in its own module; this hands them out. */
const makeEntitySync = Effect.gen(function* () {
  const store = yield* RecordStore;
  const budget = yield* RateBudget;
  const credentials = yield* ConnectorCredentials;
  const connections = yield* Connections;
  const db = yield* Database;
  const conflicts = yield* Conflicts;
  const quarantine = yield* DeletionQuarantine;
  const pull = { db, store, conflicts, quarantine };
  const pushDeps = { outbox: yield* PushOutbox, policy: yield* RetryPolicy, config: yield* PushConfig, pull };
  const resolve = { connections, budget, credentials };
  const matchDeps = { store, outbox: pushDeps.outbox, pull, locks: yield* Locks };

  const run = Effect.fn("EntitySync.run")(function* (
    input: SyncTarget & { readonly mode: SyncMode; readonly options?: SyncRunOptions },
  ) {
    const startedMs = yield* Clock.currentTimeMillis;
    const options = input.options ?? {};
    const outcome = yield* Effect.scoped(
      Effect.gen(function* () {
        const r = yield* resolveEntity(resolve, input);
        // The connection's settings stop a direction: nothing read, or nothing pushed (local
        // changes of a disabled or pull-only entity are refused when submitted; any left wait).
        if (input.mode === "push" ? !pushesRun(r) : !pullsRun(r.settings)) return skippedRun;
        switch (input.mode) {
          case "full":
          case "delta":
            // A first import fills the records in bulk: the reads that follow are planned from
            // statistics that know it (see PlannerStatistics).
            return yield* Effect.tap(readFullOrDelta(pull, r, input.mode, options), () => refreshPlannerStatistics(db));
          case "reconcile":
            return yield* reconcile(pull, r, options);
          case "push": {
            const creates = yield* matchBeforeFirstPush(matchDeps, r);
            return yield* push(pushDeps, r, `push-run:${randomUUID()}`, creates);
          }
        }
      }),
    );
    return {
      name: `${input.connectionId}/${input.entity}`,
      mode: input.mode,
      ...outcome,
      durationMs: (yield* Clock.currentTimeMillis) - startedMs,
    } satisfies SyncRunResult;
  });

  return EntitySync.of({
    run,
    check: Effect.fn("EntitySync.check")((target) => checkConnection(resolve, target)),
    source: (target, options = {}) => entitySource(resolve, target, options),
    syncRecord: Effect.fn("EntitySync.syncRecord")((target, event) =>
      Effect.scoped(
        Effect.flatMap(resolveEntity(resolve, target), (r) =>
          pullsRun(r.settings)
            ? syncRecord(pull, r, event)
            : Effect.succeed({ action: "unchanged" as const, externalId: event.externalId }),
        ),
      ),
    ),
    importRecords: Effect.fn("EntitySync.importRecords")((target, records, options = {}) =>
      importRecords({ db, store, connections }, target, records, options).pipe(
        Effect.tap(() => refreshPlannerStatistics(db)),
      ),
    ),
    export: (target, format, options) => store.export(target, format, options),
    drain: Effect.fn("EntitySync.drain")((target, options) =>
      Effect.scoped(
        Effect.flatMap(resolveEntity(resolve, target), (r) =>
          // Records created locally are matched with the vendor's before the first is created.
          pushesRun(r)
            ? Effect.flatMap(matchBeforeFirstPush(matchDeps, r), (creates) =>
                drain(pushDeps, r, { ...options, creates }),
              )
            : Effect.succeed(skippedDrain),
        ),
      ),
    ),
    plan: Effect.fn("EntitySync.plan")((target, options = {}) =>
      Effect.scoped(
        Effect.flatMap(
          resolveEntity(resolve, target).pipe(
            // The caller named an entity the connector does not have: their input, not a fault.
            Effect.catchTag("EntityNotSupported", (e) =>
              Effect.fail(new InvalidInput({ issues: [{ path: "entity", message: e.message }] })),
            ),
          ),
          (r) => planInitialMatch(store, r, options.matchKey),
        ),
      ),
    ),
  });
});
