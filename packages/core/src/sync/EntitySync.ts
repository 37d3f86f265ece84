import { randomUUID } from "node:crypto";
import { RateBudget } from "@tandem/connector-sdk/runtime";
import { Clock, Context, Effect, Layer, type Stream } from "effect";
import { ConnectorCredentials } from "../connector/ConnectorCredentials.ts";
import { RateBudgets } from "../connector/RateBudgets.ts";
import { Database } from "../db/Database.ts";
import type { ResourceNotFound } from "../errors/Errors.ts";
import { RetryPolicy } from "../queue/RetryPolicy.ts";
import { Conflicts } from "../store/Conflicts.ts";
import { DeletionQuarantine } from "../store/DeletionQuarantine.ts";
import { PushOutbox } from "../store/PushOutbox.ts";
import { type ExportFormat, RecordStore } from "../store/RecordStore.ts";
import { Connections } from "../tenancy/Connections.ts";
import { checkConnection } from "./checkConnection.ts";
import { entitySource } from "./entitySource.ts";
import { readFullOrDelta } from "./fullDeltaRead.ts";
import { importRecords } from "./importRecords.ts";
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
  }
>() {
  /** Needs RecordStore, PushOutbox, Connections, Conflicts, DeletionQuarantine, RateBudget, RetryPolicy and Database. */
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
        Connections.layer,
        Conflicts.layer,
        DeletionQuarantine.layer,
        RateBudgets.layer,
        ConnectorCredentials.layer,
      ),
    ),
  );
}

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

  const run = Effect.fn("EntitySync.run")(function* (
    input: SyncTarget & { readonly mode: SyncMode; readonly options?: SyncRunOptions },
  ) {
    const startedMs = yield* Clock.currentTimeMillis;
    const options = input.options ?? {};
    const outcome = yield* Effect.scoped(
      Effect.gen(function* () {
        const r = yield* resolveEntity(resolve, input);
        switch (input.mode) {
          case "full":
          case "delta":
            return yield* readFullOrDelta(pull, r, input.mode, options);
          case "reconcile":
            return yield* reconcile(pull, r, options);
          case "push":
            return yield* push(pushDeps, r, `push-run:${randomUUID()}`);
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
      Effect.scoped(Effect.flatMap(resolveEntity(resolve, target), (r) => syncRecord(pull, r, event))),
    ),
    importRecords: Effect.fn("EntitySync.importRecords")((target, records, options = {}) =>
      importRecords({ db, store, connections }, target, records, options),
    ),
    export: (target, format, options) => store.export(target, format, options),
    drain: Effect.fn("EntitySync.drain")((target, options) =>
      Effect.scoped(Effect.flatMap(resolveEntity(resolve, target), (r) => drain(pushDeps, r, options))),
    ),
  });
});
