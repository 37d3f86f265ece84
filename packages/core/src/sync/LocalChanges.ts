import { EgressPolicy } from "@tandem/connector-sdk/runtime";
import { Context, Effect, Layer } from "effect";
import { Database } from "../db/Database.ts";
import type { AlreadyExists, InvalidInput, ResourceNotFound } from "../errors/Errors.ts";
import { JobQueue } from "../queue/JobQueue.ts";
import { Locks } from "../queue/Locks.ts";
import { RetryPolicy } from "../queue/RetryPolicy.ts";
import { PushOutbox } from "../store/PushOutbox.ts";
import { RecordStore, type StoredRecord } from "../store/RecordStore.ts";
import type { RecordView } from "../store/RecordView.ts";
import { Connections } from "../tenancy/Connections.ts";
import { applyResolution, type ResolutionInput } from "./local/applyResolution.ts";
import type { EntityRef, LocalChangeError } from "./local/changeTarget.ts";
import { type CreateRecordInput, createRecord } from "./local/createRecord.ts";
import {
  type DeadPushFilter,
  type DeadPushView,
  discardDeadPush,
  listDeadPushes,
  retryDeadPush,
} from "./local/deadPushes.ts";
import { deleteRecord } from "./local/deleteRecord.ts";
import { findRecord, type RecordRef } from "./local/lockedRecord.ts";
import { pushNow, wakeDrains } from "./local/queueDrains.ts";
import type { LocalEdit } from "./local/storeChange.ts";
import { type UpdateRecordInput, updateRecord } from "./local/updateRecord.ts";
import { PushConfig } from "./push/PushConfig.ts";

export type { EntityRef } from "./local/changeTarget.ts";
export type { DeadPushView } from "./local/deadPushes.ts";
export type { RecordRef } from "./local/lockedRecord.ts";
export type { LocalEdit } from "./local/storeChange.ts";

/** The local changes' operations; see LocalChanges. */
export interface LocalChangesService {
  /**
   * A record the host application creates: pending until the push creates it at the vendor.
   * Without a `localId`, it gets one of Tandem's (`tandem:<uuid>`), to be addressed by until then.
   */
  readonly create: (
    tenantId: string,
    input: CreateRecordInput,
  ) => Effect.Effect<LocalEdit, LocalChangeError | AlreadyExists>;
  /** A local edit of some fields. `path` prefixes the issues of a refused change (default `fields`). */
  readonly update: (
    tenantId: string,
    input: UpdateRecordInput,
    path?: ReadonlyArray<string>,
  ) => Effect.Effect<LocalEdit, LocalChangeError>;
  /** A local delete: soft-deleted now, pending until the vendor deleted it. */
  readonly delete: (tenantId: string, input: EntityRef & RecordRef) => Effect.Effect<StoredRecord, LocalChangeError>;
  /** A conflict's resolution applied as a local change (the resolved record, pushed like any other). */
  readonly applyResolution: (tenantId: string, input: ResolutionInput) => Effect.Effect<StoredRecord, LocalChangeError>;
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
  readonly deadPushes: (tenantId: string, filter?: DeadPushFilter) => Effect.Effect<ReadonlyArray<DeadPushView>>;
  /** Sends a dead push back to be pushed now, with a fresh set of attempts. */
  readonly retryDeadPush: (tenantId: string, id: string) => Effect.Effect<DeadPushView, ResourceNotFound>;
  /** Drops a dead push; its record goes back to the last state both sides agreed on. */
  readonly discardDeadPush: (
    tenantId: string,
    id: string,
  ) => Effect.Effect<{ readonly id: string; readonly record: RecordView | null }, ResourceNotFound>;
}

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
  /** Needs Database, Connections, RecordStore, PushOutbox, JobQueue, Locks and RetryPolicy (PushConfig and EgressPolicy are references). */
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

/** Each operation is a function of explicit dependencies in `local/`; this wires them. */
const makeLocalChanges = Effect.gen(function* () {
  const deps = {
    db: yield* Database,
    connections: yield* Connections,
    store: yield* RecordStore,
    outbox: yield* PushOutbox,
    queue: yield* JobQueue,
    locks: yield* Locks,
    policy: yield* RetryPolicy,
    config: yield* PushConfig,
    egress: yield* EgressPolicy,
  };

  return LocalChanges.of({
    create: Effect.fn("LocalChanges.create")((tenantId, input) => createRecord(deps, tenantId, input)),
    update: Effect.fn("LocalChanges.update")((tenantId, input, path) => updateRecord(deps, tenantId, input, path)),
    delete: Effect.fn("LocalChanges.delete")((tenantId, input) => deleteRecord(deps, tenantId, input)),
    applyResolution: Effect.fn("LocalChanges.applyResolution")((tenantId, input) =>
      applyResolution(deps, tenantId, input),
    ),
    find: Effect.fn("LocalChanges.find")(function* (tenantId, input) {
      yield* deps.connections.assertOwned(tenantId, input.connectionId);
      return yield* findRecord(deps.store, { tenantId, connectionId: input.connectionId, entity: input.entity }, input);
    }),
    pushNow: Effect.fn("LocalChanges.pushNow")((tenantId, input) => pushNow(deps, tenantId, input)),
    wakeDrains: Effect.fn("LocalChanges.wakeDrains")((tenantId, connectionId) =>
      wakeDrains(deps, tenantId, connectionId),
    ),
    deadPushes: Effect.fn("LocalChanges.deadPushes")((tenantId, filter) =>
      listDeadPushes(deps.outbox, tenantId, filter),
    ),
    retryDeadPush: Effect.fn("LocalChanges.retryDeadPush")((tenantId, id) => retryDeadPush(deps, tenantId, id)),
    discardDeadPush: Effect.fn("LocalChanges.discardDeadPush")((tenantId, id) =>
      discardDeadPush(deps.outbox, tenantId, id),
    ),
  });
});
