import { randomUUID } from "node:crypto";
import { EgressPolicy } from "@tandem/connector-sdk/runtime";
import { Clock, Context, Effect, Layer, Option } from "effect";
import { Database } from "../db/Database.ts";
import type { PushOperation } from "../db/schema.ts";
import {
  type AlreadyExists,
  type FieldIssue,
  InvalidInput,
  PreconditionFailed,
  ResourceNotFound,
} from "../errors/Errors.ts";
import { JobQueue } from "../queue/JobQueue.ts";
import { JobPriority } from "../queue/jobs/priority.ts";
import { LockHeld, LockLost, Locks, recordLockKey } from "../queue/Locks.ts";
import { RetryPolicy } from "../queue/RetryPolicy.ts";
import { type AppliedChange, type OutboxEntry, PushOutbox } from "../store/PushOutbox.ts";
import { type RecordScope, RecordStore, type StoredRecord } from "../store/RecordStore.ts";
import { type RecordView, toRecordView } from "../store/RecordView.ts";
import { Connections } from "../tenancy/Connections.ts";
import { localChangeRefusal, settledEntity } from "./entitySettings.ts";
import { isWritable, localChangeIssues, touchesCriticalField } from "./push/localChangeFields.ts";
import { PushConfig, pushSettings } from "./push/PushConfig.ts";
import { ensureDrain, PUSH_DRAIN_JOB_KIND, type PushDrainPayload } from "./push/pushDrainJob.ts";

/** A record by either of its ids: the vendor's (`externalId`) or the host application's (`localId`). */
export interface RecordRef {
  readonly externalId?: string | undefined;
  readonly localId?: string | undefined;
}

/** Which entity of which connection. */
export interface EntityRef {
  readonly connectionId: string;
  readonly entity: string;
}

/** A stored local edit, and whether it goes at once (it touched a critical field). */
export interface LocalEdit {
  readonly record: StoredRecord;
  /** Queued to be pushed at once, with high priority; otherwise within the entity's push interval. */
  readonly immediate: boolean;
}

/** A dead push as the API lists it. */
export interface DeadPushView {
  readonly id: string;
  readonly connectionId: string;
  readonly entity: string;
  /** The vendor's id; null for a record whose create never reached it. */
  readonly externalId: string | null;
  readonly operation: PushOperation;
  readonly attempts: number;
  readonly error: string | null;
  readonly failedAt: string | null;
  readonly firstChangeAt: string;
  readonly lastChangeAt: string;
}

type LocalChangeError = ResourceNotFound | InvalidInput | PreconditionFailed;

/** The local changes' operations; see LocalChanges. */
export interface LocalChangesService {
  /**
   * A record the host application creates: pending until the push creates it at the vendor.
   * Without a `localId`, it gets one of Tandem's (`tandem:<uuid>`), to be addressed by until then.
   */
  readonly create: (
    tenantId: string,
    input: EntityRef & { readonly localId?: string | undefined; readonly fields: Record<string, unknown> },
  ) => Effect.Effect<LocalEdit, LocalChangeError | AlreadyExists>;
  /** A local edit of some fields. `path` prefixes the issues of a refused change (default `fields`). */
  readonly update: (
    tenantId: string,
    input: EntityRef & RecordRef & { readonly fields: Record<string, unknown> },
    path?: ReadonlyArray<string>,
  ) => Effect.Effect<LocalEdit, LocalChangeError>;
  /** A local delete: soft-deleted now, pending until the vendor deleted it. */
  readonly delete: (tenantId: string, input: EntityRef & RecordRef) => Effect.Effect<StoredRecord, LocalChangeError>;
  /** A conflict's resolution applied as a local change (the resolved record, pushed like any other). */
  readonly applyResolution: (
    tenantId: string,
    input: EntityRef & {
      readonly externalId: string;
      readonly record: Record<string, unknown>;
      /** The conflict's remote version, which the resolution was made against: the push's `ifVersion` comes from it. */
      readonly remote?: Record<string, unknown> | undefined;
    },
  ) => Effect.Effect<StoredRecord, LocalChangeError>;
  /** One record by either id (deleted or not). */
  readonly find: (
    tenantId: string,
    input: EntityRef & RecordRef,
  ) => Effect.Effect<StoredRecord, ResourceNotFound | InvalidInput>;
  /** Every pending change of the entity, pushed now (`sync.trigger` in mode push): the drain's job. */
  readonly pushNow: (
    tenantId: string,
    input: EntityRef,
  ) => Effect.Effect<{ readonly jobId: string; readonly status: "queued" }, LocalChangeError>;
  /** Queues drains for a connection's pending changes (after it is resumed). */
  readonly wakeDrains: (tenantId: string, connectionId: string) => Effect.Effect<void, ResourceNotFound>;
  /** The tenant's dead pushes, most recently failed first. */
  readonly deadPushes: (
    tenantId: string,
    filter?: {
      readonly connectionId?: string | undefined;
      readonly entity?: string | undefined;
      readonly limit?: number;
    },
  ) => Effect.Effect<ReadonlyArray<DeadPushView>>;
  /** Sends a dead push back to be pushed now, with a fresh set of attempts. */
  readonly retryDeadPush: (tenantId: string, id: string) => Effect.Effect<DeadPushView, ResourceNotFound>;
  /** Drops a dead push; its record goes back to the last state both sides agreed on. */
  readonly discardDeadPush: (
    tenantId: string,
    id: string,
  ) => Effect.Effect<{ readonly id: string; readonly record: RecordView | null }, ResourceNotFound>;
}

const iso = (d: Date | null) => (d === null ? null : d.toISOString());

const toDeadView = (e: OutboxEntry): DeadPushView => ({
  id: e.id,
  connectionId: e.connectionId,
  entity: e.entity,
  // A create that never reached the vendor has no id of the vendor's yet.
  externalId: e.operation === "create" ? null : e.externalId,
  operation: e.operation,
  attempts: e.attempts,
  error: e.lastError,
  failedAt: iso(e.lastAttemptAt),
  firstChangeAt: e.firstChangeAt.toISOString(),
  lastChangeAt: e.lastChangeAt.toISOString(),
});

/**
 * Local changes from the host application, end to end: validated against the entity's record
 * schema when submitted (refused with InvalidInput naming the field), stored with their push
 * outbox entry and, where one is needed, a push drain job, all in one transaction, under the
 * record's lock (a pull of the record never interleaves). Drains run by themselves: a change
 * touching a critical field at once and with high priority, the others within the entity's push
 * interval, changes to one record in that window coalesced into one write. Also the dead pushes:
 * listed, retried, discarded.
 */
export class LocalChanges extends Context.Tag("@tandem/core/LocalChanges")<LocalChanges, LocalChangesService>() {
  /** Needs Database, Connections, RecordStore, PushOutbox, JobQueue, Locks and RetryPolicy. */
  static readonly layerNoDeps = Layer.effect(
    LocalChanges,
    Effect.suspend(() => makeLocalChanges),
  );

  /** Needs Database and the roots below Connections and JobQueue. */
  static readonly layer = LocalChanges.layerNoDeps.pipe(
    Layer.provide(
      Layer.mergeAll(
        Connections.layer,
        RecordStore.layer,
        PushOutbox.layer,
        JobQueue.layer,
        Locks.layer,
        RetryPolicy.layer,
      ),
    ),
  );
}

const makeLocalChanges = Effect.gen(function* () {
  const db = yield* Database;
  const connections = yield* Connections;
  const store = yield* RecordStore;
  const outbox = yield* PushOutbox;
  const queue = yield* JobQueue;
  const locks = yield* Locks;
  const policy = yield* RetryPolicy;
  const config = yield* PushConfig;
  const egress = yield* EgressPolicy;
  const scheduling = { queue, policy };

  /** The connection (the tenant's) and its connector's entity; InvalidInput naming the entity otherwise. */
  const entityOf = (tenantId: string, input: EntityRef) =>
    Effect.gen(function* () {
      const connection = yield* connections.resolve(tenantId, input.connectionId);
      const { connector, row } = connection;
      const settled = settledEntity(connection, input.entity, egress);
      if (settled === undefined) {
        return yield* new InvalidInput({
          issues: [
            {
              path: "entity",
              message: `connector ${connector.name} has no entity "${input.entity}"; it has ${Object.keys(connector.entities).join(", ")}`,
            },
          ],
        });
      }
      const scope: RecordScope = { tenantId, connectionId: input.connectionId, entity: input.entity };
      return { connector, entity: settled.entity, settings: settled.settings, scope, paused: row.paused };
    });

  /** The entity, when its settings accept local changes (enabled, direction push or both). */
  const changeableEntityOf = (tenantId: string, input: EntityRef) =>
    Effect.flatMap(entityOf(tenantId, input), (r) => {
      const refusal = localChangeRefusal(r.settings, input.entity);
      return refusal === undefined ? Effect.succeed(r) : Effect.fail(refusal);
    });
  type Resolved = Effect.Effect.Success<ReturnType<typeof entityOf>>;

  const refuseIf = (issues: ReadonlyArray<FieldIssue>) =>
    issues.length > 0 ? Effect.fail(new InvalidInput({ issues })) : Effect.void;

  const timingOf = (r: Resolved, critical: boolean) => ({
    critical,
    delayMs: pushSettings(config, r.entity).intervalMs,
  });

  /** The record a ref names; ResourceNotFound when there is none, InvalidInput unless exactly one id is given. */
  const findIn = (scope: RecordScope, ref: RecordRef) =>
    Effect.gen(function* () {
      if ((ref.externalId === undefined) === (ref.localId === undefined)) {
        return yield* new InvalidInput({
          issues: [{ path: "externalId", message: "name the record by exactly one of externalId and localId" }],
        });
      }
      const found =
        ref.localId !== undefined
          ? yield* store.getByLocalId(scope, ref.localId)
          : // A provisional id is ours, never shown: a record not yet at the vendor is found by its localId.
            Option.filter(yield* store.get(scope, ref.externalId!), (r) => !r.provisional);
      if (Option.isNone(found)) {
        const id = ref.localId !== undefined ? `localId ${ref.localId}` : ref.externalId!;
        return yield* new ResourceNotFound({ resource: "record", id: `${scope.entity}/${id}` });
      }
      return found.value;
    });

  /** Stored and, when the entry needs one, a drain: in one transaction. */
  const storeChange = <E>(r: Resolved, critical: boolean, apply: Effect.Effect<Option.Option<AppliedChange>, E>) =>
    db.transaction(
      Effect.gen(function* () {
        const applied = yield* apply;
        if (Option.isSome(applied) && applied.value.wakeAt !== undefined) {
          yield* ensureDrain(scheduling, r.scope, r.connector.name, applied.value.wakeAt, critical);
        }
        return applied;
      }),
    );

  /**
   * Runs `change` on the record `ref` names, under its lock. The record's external id can change
   * between lookup and write (a pushed create takes the vendor's id): looked up again then.
   */
  const onRecord = <A, E>(
    r: Resolved,
    ref: RecordRef,
    change: (record: StoredRecord) => Effect.Effect<Option.Option<A>, E>,
  ): Effect.Effect<A, E | LocalChangeError> =>
    Effect.gen(function* () {
      for (let attempt = 0; attempt < 3; attempt++) {
        const record = yield* findIn(r.scope, ref);
        const key = recordLockKey(r.scope.connectionId, r.scope.entity, record.externalId);
        const done = yield* locks
          .withLock(key, { waitMs: 5_000 }, () => change(record))
          .pipe(
            Effect.mapError((e): E | PreconditionFailed =>
              e instanceof LockHeld || e instanceof LockLost
                ? new PreconditionFailed({ message: `record ${record.externalId} is being synced; retry shortly` })
                : (e as E),
            ),
          );
        if (Option.isSome(done)) return done.value;
        if (ref.localId === undefined) break;
      }
      const id = ref.localId !== undefined ? `localId ${ref.localId}` : ref.externalId!;
      return yield* new ResourceNotFound({ resource: "record", id: `${r.scope.entity}/${id}` });
    });

  const update = Effect.fn("LocalChanges.update")(function* (
    tenantId: string,
    input: EntityRef & RecordRef & { readonly fields: Record<string, unknown> },
    path: ReadonlyArray<string> = ["fields"],
  ) {
    const r = yield* changeableEntityOf(tenantId, input);
    yield* refuseIf(
      localChangeIssues(
        {
          connector: r.connector.name,
          entityName: input.entity,
          entity: r.entity,
          operation: "update",
          fields: input.fields,
        },
        path,
      ),
    );
    const immediate = touchesCriticalField(r.entity, input.fields);
    const record = yield* onRecord(r, input, (current) =>
      storeChange(r, immediate, outbox.edit(r.scope, current.externalId, input.fields, timingOf(r, immediate))).pipe(
        Effect.map(Option.map((a) => a.record)),
      ),
    );
    return { record, immediate } satisfies LocalEdit;
  });

  return LocalChanges.of({
    create: Effect.fn("LocalChanges.create")(function* (tenantId, input) {
      const r = yield* changeableEntityOf(tenantId, input);
      yield* refuseIf(
        localChangeIssues({
          connector: r.connector.name,
          entityName: input.entity,
          entity: r.entity,
          operation: "create",
          fields: input.fields,
        }),
      );
      const immediate = touchesCriticalField(r.entity, input.fields);
      const created = yield* storeChange(
        r,
        immediate,
        outbox
          // Without the host's id, one of ours: the record is addressable before the vendor has it.
          .create(
            r.scope,
            { localId: input.localId ?? `tandem:${randomUUID()}`, fields: input.fields },
            timingOf(r, immediate),
          )
          .pipe(Effect.map(Option.some)),
      );
      return { record: Option.getOrThrow(created).record, immediate } satisfies LocalEdit;
    }),
    update,
    delete: Effect.fn("LocalChanges.delete")(function* (tenantId, input) {
      const r = yield* changeableEntityOf(tenantId, input);
      yield* refuseIf(
        localChangeIssues({
          connector: r.connector.name,
          entityName: input.entity,
          entity: r.entity,
          operation: "delete",
        }),
      );
      return yield* onRecord(r, input, (current) =>
        storeChange(r, false, outbox.remove(r.scope, current.externalId, timingOf(r, false))).pipe(
          Effect.map(Option.map((a) => a.record)),
        ),
      );
    }),
    applyResolution: Effect.fn("LocalChanges.applyResolution")(function* (tenantId, input) {
      const r = yield* entityOf(tenantId, input);
      // The resolved record is whole (read-only fields included, as the remote has them): all of
      // it becomes the local data, its writable fields are pushed. It goes at once only when it
      // changes a critical field's value (it names them all).
      return yield* onRecord(r, { externalId: input.externalId }, (current) => {
        const changed = Object.fromEntries(
          Object.entries(input.record).filter(([f, v]) => JSON.stringify(current.data[f]) !== JSON.stringify(v)),
        );
        const immediate = touchesCriticalField(r.entity, changed);
        return storeChange(
          r,
          immediate,
          outbox.edit(
            r.scope,
            current.externalId,
            input.record,
            timingOf(r, immediate),
            (field) => isWritable(r.entity, field),
            input.remote,
          ),
        ).pipe(Effect.map(Option.map((a) => a.record)));
      });
    }),
    find: Effect.fn("LocalChanges.find")(function* (tenantId, input) {
      yield* connections.assertOwned(tenantId, input.connectionId);
      return yield* findIn({ tenantId, connectionId: input.connectionId, entity: input.entity }, input);
    }),
    pushNow: Effect.fn("LocalChanges.pushNow")(function* (tenantId, input) {
      const r = yield* changeableEntityOf(tenantId, input);
      if (r.paused) {
        return yield* new PreconditionFailed({
          message: `connection ${input.connectionId} is paused; resume it first`,
        });
      }
      if (r.entity.write === undefined) {
        return yield* new InvalidInput({
          issues: [{ path: "entity", message: `connector ${r.connector.name} cannot write ${input.entity} records` }],
        });
      }
      const payload: PushDrainPayload = { connectionId: input.connectionId, entity: input.entity, all: true };
      const { id } = yield* queue
        .enqueue({
          kind: PUSH_DRAIN_JOB_KIND,
          payload,
          priority: JobPriority.onDemand,
          tenantId,
          connectionId: input.connectionId,
          maxAttempts: policy.maxAttemptsFor(r.connector.name),
        })
        .pipe(Effect.orDie);
      return { jobId: id, status: "queued" as const };
    }),
    wakeDrains: Effect.fn("LocalChanges.wakeDrains")(function* (tenantId, connectionId) {
      const { connector } = yield* connections.resolve(tenantId, connectionId);
      for (const entity of Object.keys(connector.entities)) {
        const scope = { tenantId, connectionId, entity };
        const due = yield* outbox.nextDue(scope);
        if (due !== null) yield* db.transaction(ensureDrain(scheduling, scope, connector.name, due, false));
      }
    }),
    deadPushes: Effect.fn("LocalChanges.deadPushes")(function* (tenantId, filter = {}) {
      const entries = yield* outbox.dead(tenantId, {
        connectionId: filter.connectionId,
        entity: filter.entity,
        limit: Math.max(1, Math.min(filter.limit ?? 100, 500)),
      });
      return entries.map(toDeadView);
    }),
    retryDeadPush: Effect.fn("LocalChanges.retryDeadPush")(function* (tenantId, id) {
      return yield* db.transaction(
        Effect.gen(function* () {
          const entry = yield* outbox.revive(tenantId, id);
          const scope = { tenantId, connectionId: entry.connectionId, entity: entry.entity };
          const { connector } = yield* connections.resolve(tenantId, entry.connectionId).pipe(Effect.orDie);
          const now = new Date(yield* Clock.currentTimeMillis);
          yield* ensureDrain(scheduling, scope, connector.name, now, entry.critical);
          return { ...toDeadView(entry), attempts: 0 };
        }),
      );
    }),
    discardDeadPush: Effect.fn("LocalChanges.discardDeadPush")(function* (tenantId, id) {
      const { record } = yield* outbox.discard(tenantId, id);
      return { id, record: record === undefined ? null : toRecordView(record) };
    }),
  });
});
