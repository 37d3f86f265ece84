import { Context, Effect, Layer } from "effect";
import { InvalidInput, type PreconditionFailed, ResourceNotFound } from "../errors/Errors.ts";
import { SyncTriggers } from "../sync/SyncTriggers.ts";
import { Connections } from "../tenancy/Connections.ts";
import { Conflicts, type ConflictView, type ManualResolution } from "./Conflicts.ts";
import { decodeFeedPosition } from "./FeedPosition.ts";
import { RecordStore, type StoredRecord } from "./RecordStore.ts";

/** A stored record as the API shows it. */
export interface RecordView {
  readonly externalId: string;
  readonly data: Record<string, unknown>;
  readonly syncStatus: string;
  readonly syncError: string | null;
  readonly pendingChanges: Record<string, unknown> | null;
  readonly version: number;
  readonly remoteUpdatedAt: string | null;
  readonly localUpdatedAt: string | null;
  readonly lastSyncedAt: string | null;
  readonly deletedAt: string | null;
  readonly changedAt: string;
}

const iso = (d: Date | null) => (d === null ? null : d.toISOString());

export const toRecordView = (r: StoredRecord): RecordView => ({
  externalId: r.externalId,
  data: r.data,
  syncStatus: r.syncStatus,
  syncError: r.syncError,
  pendingChanges: r.pendingChanges,
  version: r.version,
  remoteUpdatedAt: iso(r.remoteUpdatedAt),
  localUpdatedAt: iso(r.localUpdatedAt),
  lastSyncedAt: iso(r.lastSyncedAt),
  deletedAt: iso(r.deletedAt),
  changedAt: r.changedAt.toISOString(),
});

export interface RecordScopeInput {
  readonly connectionId: string;
  readonly entity: string;
}

/**
 * A tenant's synced records: the change feed (records changed after a cursor,
 * deletions included on request), one record, and local edits (pushed through
 * the connector: pending, then synced or failed).
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
    readonly get: (
      tenantId: string,
      input: RecordScopeInput & { readonly externalId: string },
    ) => Effect.Effect<RecordView, ResourceNotFound>;
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
    readonly update: (
      tenantId: string,
      input: RecordScopeInput & { readonly externalId: string; readonly fields: Record<string, unknown> },
    ) => Effect.Effect<RecordView, ResourceNotFound | InvalidInput | PreconditionFailed>;
  }
>() {
  static readonly layer = Layer.effect(
    Records,
    Effect.gen(function* () {
      const connections = yield* Connections;
      const store = yield* RecordStore;
      const triggers = yield* SyncTriggers;
      const conflicts = yield* Conflicts;
      // Ownership first: another tenant's connection is indistinguishable from a missing one.
      const scope = (tenantId: string, input: RecordScopeInput) =>
        Effect.as(connections.assertOwned(tenantId, input.connectionId), { tenantId, ...input });

      const get = Effect.fn("Records.get")(function* (
        tenantId: string,
        input: RecordScopeInput & { readonly externalId: string },
      ) {
        const found = yield* store.get(yield* scope(tenantId, input), input.externalId);
        if (found._tag === "None") {
          return yield* new ResourceNotFound({ resource: "record", id: `${input.entity}/${input.externalId}` });
        }
        return toRecordView(found.value);
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
        get,
        resolveConflict: Effect.fn("Records.resolveConflict")(function* (tenantId, conflictId, resolution, actor) {
          const { conflict, record } = yield* conflicts.resolve(tenantId, conflictId, resolution, actor);
          const target = { connectionId: conflict.connectionId, entity: conflict.entity };
          yield* triggers.push(tenantId, { ...target, changes: [{ externalId: conflict.externalId, fields: record }] });
          return { conflict, record: yield* get(tenantId, { ...target, externalId: conflict.externalId }) };
        }),
        update: Effect.fn("Records.update")(function* (tenantId, input) {
          yield* triggers.push(tenantId, {
            connectionId: input.connectionId,
            entity: input.entity,
            changes: [{ externalId: input.externalId, fields: input.fields }],
          });
          return yield* get(tenantId, input);
        }),
      };
    }),
  );
}
