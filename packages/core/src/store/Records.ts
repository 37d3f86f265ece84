import { Context, Effect, Layer } from "effect";
import { type AlreadyExists, InvalidInput, type PreconditionFailed, type ResourceNotFound } from "../errors/Errors.ts";
import { type EntityRef, LocalChanges, type RecordRef } from "../sync/LocalChanges.ts";
import { Connections } from "../tenancy/Connections.ts";
import { Conflicts, type ConflictView, type ManualResolution } from "./Conflicts.ts";
import { decodeFeedPosition } from "./FeedPosition.ts";
import { RecordStore, type StoredRecord } from "./RecordStore.ts";
import { type RecordView, toRecordView } from "./RecordView.ts";

export { type RecordView, toRecordView } from "./RecordView.ts";

export type RecordScopeInput = EntityRef;

/** A local change as the API answers it: the record, and whether it goes at once. */
export interface LocalChangeView extends RecordView {
  /** It touched a critical field: queued to be pushed at once, with high priority. */
  readonly pushImmediately: boolean;
}

/**
 * A tenant's synced records: the change feed (records changed after a cursor, deletions included
 * on request, each with both ids), one record by either id, and local creates, edits and deletes
 * (validated, then pushed by themselves: pending, then synced or failed; see LocalChanges).
 */
export class Records extends Context.Tag("@tandem/core/Records")<
  Records,
  {
    readonly list: (
      tenantId: string,
      input: RecordScopeInput & {
        readonly cursor?: string | undefined;
        readonly limit?: number | undefined;
        readonly modifiedAfter?: Date | undefined;
        readonly includeDeleted?: boolean | undefined;
      },
    ) => Effect.Effect<
      { readonly items: ReadonlyArray<RecordView>; readonly cursor: string; readonly hasMore: boolean },
      ResourceNotFound | InvalidInput
    >;
    /** One record by its `externalId` or its `localId` (exactly one of them). */
    readonly get: (
      tenantId: string,
      input: RecordScopeInput & RecordRef,
    ) => Effect.Effect<RecordView, ResourceNotFound | InvalidInput>;
    /** Settles an open conflict and applies the chosen record as a local change (pushed like any other). */
    readonly resolveConflict: (
      tenantId: string,
      conflictId: string,
      resolution: ManualResolution,
      actor: string,
    ) => Effect.Effect<
      { readonly conflict: ConflictView; readonly record: RecordView },
      ResourceNotFound | InvalidInput | PreconditionFailed
    >;
    /** A record created locally: pending (no external id) until the push creates it at the vendor. */
    readonly create: (
      tenantId: string,
      input: RecordScopeInput & { readonly localId?: string | undefined; readonly fields: Record<string, unknown> },
    ) => Effect.Effect<LocalChangeView, ResourceNotFound | InvalidInput | PreconditionFailed | AlreadyExists>;
    readonly update: (
      tenantId: string,
      input: RecordScopeInput & RecordRef & { readonly fields: Record<string, unknown> },
    ) => Effect.Effect<LocalChangeView, ResourceNotFound | InvalidInput | PreconditionFailed>;
    /** A local delete: the record is deleted now, and pending until the vendor deleted it too. */
    readonly delete: (
      tenantId: string,
      input: RecordScopeInput & RecordRef,
    ) => Effect.Effect<RecordView, ResourceNotFound | InvalidInput | PreconditionFailed>;
  }
>() {
  static readonly layer = Layer.effect(
    Records,
    Effect.gen(function* () {
      const connections = yield* Connections;
      const store = yield* RecordStore;
      const local = yield* LocalChanges;
      const conflicts = yield* Conflicts;
      // Ownership first: another tenant's connection is indistinguishable from a missing one.
      const scope = (tenantId: string, input: RecordScopeInput) =>
        Effect.as(connections.assertOwned(tenantId, input.connectionId), {
          tenantId,
          connectionId: input.connectionId,
          entity: input.entity,
        });
      const changeView = (edit: { readonly record: StoredRecord; readonly immediate: boolean }): LocalChangeView => ({
        ...toRecordView(edit.record),
        pushImmediately: edit.immediate,
      });

      return {
        list: Effect.fn("Records.list")(function* (tenantId, input) {
          if (input.cursor !== undefined && decodeFeedPosition(input.cursor) === undefined) {
            return yield* new InvalidInput({
              issues: [{ path: "cursor", message: "must be a cursor returned by a previous page" }],
            });
          }
          const page = yield* store.changes(yield* scope(tenantId, input), {
            after: input.cursor,
            limit: input.limit,
            modifiedAfter: input.modifiedAfter,
            includeDeleted: input.includeDeleted,
          });
          return { items: page.records.map(toRecordView), cursor: page.cursor, hasMore: page.hasMore };
        }),
        get: Effect.fn("Records.get")(function* (tenantId, input) {
          return toRecordView(yield* local.find(tenantId, input));
        }),
        resolveConflict: Effect.fn("Records.resolveConflict")(function* (tenantId, conflictId, resolution, actor) {
          const { conflict, record } = yield* conflicts.resolve(tenantId, conflictId, resolution, actor);
          const applied = yield* local.applyResolution(tenantId, {
            connectionId: conflict.connectionId,
            entity: conflict.entity,
            externalId: conflict.externalId,
            record,
            remote: conflict.remote,
          });
          return { conflict, record: toRecordView(applied) };
        }),
        create: Effect.fn("Records.create")(function* (tenantId, input) {
          return changeView(yield* local.create(tenantId, input));
        }),
        update: Effect.fn("Records.update")(function* (tenantId, input) {
          return changeView(yield* local.update(tenantId, input));
        }),
        delete: Effect.fn("Records.delete")(function* (tenantId, input) {
          return toRecordView(yield* local.delete(tenantId, input));
        }),
      };
    }),
  );
}
