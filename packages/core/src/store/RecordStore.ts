import { Clock, Context, Effect, Layer, Option, type Stream } from "effect";
import type { Kysely } from "kysely";
import { Database } from "../db/Database.ts";
import type { DB, SyncStatus } from "../db/schema.ts";
import { changesAfter } from "./ChangeFeed.ts";
import { editLocalRecord } from "./outbox/localChanges.ts";
import * as stage from "./ReconcileStage.ts";
import { exportRecords, type ReadPage, streamRecords } from "./RecordExport.ts";
import {
  countLive,
  getRecord,
  getRecordByLocalId,
  type MatchingState,
  matchingState,
  pendingRecords,
  recordsById,
  summarize,
} from "./RecordReads.ts";
import type { RunStatement } from "./RecordRows.ts";
import * as rows from "./RecordRows.ts";
import { type CursorPatch, readCursor, saveCursor } from "./SyncCursors.ts";
import { upsertRecords } from "./upsertRecords.ts";

/** Which records: one entity of one connection. */
export interface RecordScope {
  readonly tenantId: string;
  readonly connectionId: string;
  readonly entity: string;
}

/** A record as the store holds it. `data` is the encoded (JSON) form of the entity's record. */
export interface StoredRecord {
  /** The vendor's id; while `provisional`, an id of ours (`local:<uuid>`) the API does not show. */
  readonly externalId: string;
  /** The host application's id (unique per connection x entity), if it gave one. */
  readonly localId: string | null;
  /** Created locally and not yet at the vendor: the push's create replaces `externalId`. */
  readonly provisional: boolean;
  readonly data: Record<string, unknown>;
  readonly remoteUpdatedAt: Date | null;
  readonly localUpdatedAt: Date | null;
  /**
   * The last state both sides agreed on, the base of the next three-way merge: `data` itself
   * while nothing is unpushed (the row stores it only while it differs, see `RecordRows.columns`).
   */
  readonly base: Record<string, unknown>;
  readonly pendingChanges: Record<string, unknown> | null;
  readonly version: number;
  readonly syncStatus: SyncStatus;
  readonly syncError: string | null;
  readonly lastSyncedAt: Date | null;
  readonly deletedAt: Date | null;
  /** The change's sequence value (a decimal string: it is a bigint); orders changes of one transaction. */
  readonly changeSeq: string;
  /**
   * The transaction that made the change (xid8, a decimal string). The feed position is
   * (changeXid, changeSeq): see ChangeFeed.ts.
   */
  readonly changeXid: string;
  /** When this store last changed the record (pull, push, local change, deletion). */
  readonly changedAt: Date;
}

/** One record to store, as read from the remote. */
export interface IncomingRecord {
  readonly externalId: string;
  readonly data: Record<string, unknown>;
  readonly remoteUpdatedAt: Date | null;
}

/** What a batch upsert did. Records absent from both lists were unchanged (or older than what is stored). */
export interface UpsertResult {
  readonly created: ReadonlyArray<string>;
  readonly updated: ReadonlyArray<string>;
  readonly unchanged: number;
  /**
   * Ids left alone because they hold unpushed local changes (pending, or an open conflict) while
   * the remote sent a newer, different version: they wait for conflict settlement
   * (`applyPulledSettlement`). When there are any, the batch's checkpoint was NOT saved: the
   * caller saves it once they are settled, so a crash in between re-reads them.
   */
  readonly heldBack: ReadonlyArray<string>;
}

/** How a pulled version that met unpushed local changes was settled (see `applyPulledSettlement`). */
export type PulledSettlement =
  | {
      /** Merged (cleanly or by the entity's policy): `data` is the new local view. */
      readonly _tag: "Merged";
      readonly data: Record<string, unknown>;
      /** The remote version: the base of the next three-way merge. */
      readonly remote: IncomingRecord;
      /** Fields of `data` the remote does not have yet (still to push); null when none. */
      readonly pendingChanges: Record<string, unknown> | null;
    }
  | {
      /** Left to a person: the record waits in `conflict`, its local data untouched. */
      readonly _tag: "Conflict";
      readonly remote: IncomingRecord;
    };

/** Where an interrupted read resumes (stored per connection x entity). */
export interface Checkpoint {
  readonly mode: "full" | "delta";
  /** The cursor after the last page stored; undefined before the first page. */
  readonly cursor: string | undefined;
  /** The delta lower bound the run started with (ISO), so a resumed run reads the same window. */
  readonly since: string | undefined;
  readonly startedAt: string;
  /** Highest remote `updatedAt` stored so far (ISO). */
  readonly maxUpdatedAt: string | undefined;
  readonly pages: number;
}

/** Saves (or, with `value: null`, clears) the checkpoint of one mode. */
export interface CheckpointUpdate {
  readonly mode: Checkpoint["mode"];
  readonly value: Checkpoint | null;
}

/** The sync state of one connection x entity. */
export type { MatchingState } from "./RecordReads.ts";

export interface SyncCursor {
  readonly deltaCursor: Date | null;
  readonly lastFullAt: Date | null;
  readonly lastDeltaAt: Date | null;
  readonly lastReconcileAt: Date | null;
  /** Where an interrupted run of each mode resumes (absent when the last run of that mode finished). */
  readonly checkpoints: { readonly full?: Checkpoint; readonly delta?: Checkpoint };
  readonly quarantine: unknown;
  /** When the entity's local-only records were matched with the vendor's before their first push. */
  readonly initialMatchedAt: Date | null;
}

/** A page of the change feed: changes after a cursor in order, deletions included. */
export interface ChangePage {
  readonly records: ReadonlyArray<StoredRecord>;
  /**
   * Pass back as `after` for the next page: `<xid>.<seq>`, the last change's position (see
   * FeedPosition.ts); the input's position when there is nothing new.
   */
  readonly cursor: string;
  readonly hasMore: boolean;
}

/** Filters and paging of the change feed. */
export interface ChangesOptions {
  /** A page's cursor (or a bare `change_seq`, as cursors were before the feed was commit-ordered). */
  readonly after?: string | undefined;
  readonly limit?: number | undefined;
  readonly modifiedAfter?: Date | undefined;
  readonly includeDeleted?: boolean | undefined;
}

/** How an entity's records stand. */
export interface RecordSummary {
  readonly live: number;
  readonly deleted: number;
  readonly pending: number;
  readonly failed: number;
  readonly conflict: number;
  readonly lastSyncedAt: Date | null;
}

/** Export formats. */
export type ExportFormat = "ndjson" | "csv";

/** The record store's operations (see RecordStore). */
export interface RecordStoreService {
  /**
   * Stores a batch in ONE statement. A record whose data equals the stored data (as jsonb:
   * key order does not matter) is not rewritten and produces no change event; a record older than the
   * stored `remote_updated_at` never overwrites it; a record with unpushed local
   * changes (pending/conflict) is left for conflict handling (`heldBack`). Soft-deleted records
   * that come back are restored. `checkpoint`, when given, is saved in the same
   * statement, so a crash never separates the data from its resume point.
   * Ids must be unique within the batch.
   */
  readonly upsert: (
    scope: RecordScope,
    records: ReadonlyArray<IncomingRecord>,
    options?: { readonly checkpoint?: CheckpointUpdate },
  ) => Effect.Effect<UpsertResult>;
  /**
   * Soft-deletes live records. With `notNewerThan`, a record whose stored
   * `remote_updated_at` is newer is kept (an old delete event never removes newer data).
   */
  readonly softDelete: (
    scope: RecordScope,
    externalIds: ReadonlyArray<string>,
    options?: { readonly notNewerThan?: Date },
  ) => Effect.Effect<ReadonlyArray<string>>;
  readonly get: (scope: RecordScope, externalId: string) => Effect.Effect<Option.Option<StoredRecord>>;
  /** One record by the host application's id (deleted or not). */
  readonly getByLocalId: (scope: RecordScope, localId: string) => Effect.Effect<Option.Option<StoredRecord>>;
  /** Live (not deleted) records of the scope. */
  readonly count: (scope: RecordScope) => Effect.Effect<number>;
  /**
   * Records changed after `after` (a change cursor; omit to start at the beginning),
   * deletions included unless `includeDeleted: false`; `modifiedAfter` keeps records
   * the store changed after that time. `limit` defaults to 100 (at most 1,000).
   * Commit-ordered: a change shows once no transaction that could still commit an earlier
   * change is running, so a cursor never passes a change (see ChangeFeed.ts). A cursor that
   * is not one is a defect: validate API input with `decodeFeedPosition` first.
   */
  readonly changes: (scope: RecordScope, options?: ChangesOptions) => Effect.Effect<ChangePage>;
  /** Counts by state, for status pages: live, deleted, pending, failed, conflict; and the last sync. */
  readonly summary: (scope: RecordScope) => Effect.Effect<RecordSummary>;
  /** Every record of the scope by external id, read page by page (bounded memory). */
  readonly stream: (
    scope: RecordScope,
    options?: { readonly includeDeleted?: boolean; readonly pageSize?: number },
  ) => Stream.Stream<StoredRecord>;
  /** The scope's records as NDJSON lines or CSV rows (header first), each ending in a newline. */
  readonly export: (
    scope: RecordScope,
    format: ExportFormat,
    options?: { readonly columns?: ReadonlyArray<string>; readonly includeDeleted?: boolean },
  ) => Stream.Stream<string>;
  readonly cursor: (scope: RecordScope) => Effect.Effect<SyncCursor | undefined>;
  /** The scope's local-only records and the vendor ids it stores, for initial matching. */
  readonly matchingState: (scope: RecordScope) => Effect.Effect<MatchingState>;
  /** Creates or updates the scope's sync state with the fields given (absent fields are kept). */
  readonly saveCursor: (scope: RecordScope, patch: CursorPatch) => Effect.Effect<void>;
  /**
   * Adds remote ids of reconciliation run `runId` to the staging table (one statement per call),
   * each with the modification time the remote listed beside it, when it did.
   */
  readonly stageIds: (runId: string, page: stage.StagedPage) => Effect.Effect<void>;
  /**
   * Refreshes the planner's statistics of the staging table and of the record store before a
   * large stage is compared with the records. Both are often freshly bulk-loaded (a first import,
   * then the ids), and with statistics of near-empty tables the comparison's anti-joins were
   * planned as nested loops over sequential scans: at 1,000,000 ids one ran for over 9 minutes.
   * ANALYZE samples a bounded number of rows, so this costs a fraction of a second at any size.
   */
  readonly analyzeStage: () => Effect.Effect<void>;
  /** Live stored records whose id the run did not stage: how many, and the first few. */
  readonly vanished: (
    scope: RecordScope,
    runId: string,
  ) => Effect.Effect<{ readonly count: number; readonly sample: ReadonlyArray<string> }>;
  /** Soft-deletes every live record the run did not stage; returns how many. */
  readonly deleteVanished: (scope: RecordScope, runId: string) => Effect.Effect<number>;
  /** Staged ids with no live stored record, after `after` in id order. */
  readonly missingIds: (
    scope: RecordScope,
    runId: string,
    options: { readonly after?: string | undefined; readonly limit: number },
  ) => Effect.Effect<ReadonlyArray<string>>;
  /**
   * Staged ids whose live stored record is older than the modification time the remote listed
   * with the id (or has none): records every delta missed an update of. After `after` in id order.
   */
  readonly driftedIds: (
    scope: RecordScope,
    runId: string,
    options: { readonly after?: string | undefined; readonly limit: number },
  ) => Effect.Effect<ReadonlyArray<string>>;
  readonly clearStage: (runId: string) => Effect.Effect<void>;
  /** Removes ids staged before `before` by runs that crashed before cleaning up. */
  readonly clearStaleStages: (before: Date) => Effect.Effect<void>;
  /**
   * A local change from the host application: merged into `data`, accumulated in
   * `pending_changes`, and marked pending until pushed, with its push outbox entry (due now) in
   * the same transaction. None when the record does not exist (or is deleted). It validates
   * nothing and wakes no drain: the API's path is `LocalChanges`, which does both.
   */
  readonly applyLocalChange: (
    scope: RecordScope,
    externalId: string,
    changes: Record<string, unknown>,
  ) => Effect.Effect<Option.Option<StoredRecord>>;
  /** Records with unpushed local changes (pending), oldest change first. */
  readonly pending: (
    scope: RecordScope,
    options?: { readonly limit?: number },
  ) => Effect.Effect<ReadonlyArray<StoredRecord>>;
  /**
   * Marks a push done: stores what the remote answered as data and base, status synced.
   * Only when the record is still at `version` (a newer local change stays pending).
   */
  readonly markPushed: (
    scope: RecordScope,
    externalId: string,
    version: number,
    remote: IncomingRecord,
  ) => Effect.Effect<boolean>;
  /**
   * Settles a record the upsert held back: merged (new data, the remote as base, what is still to
   * push) or left in `conflict`. Either way the remote version is recorded as seen, so the same
   * version is not held again. Only when the record is still at `version`; false otherwise (a
   * local change or a push came in between: read again and settle again).
   */
  readonly applyPulledSettlement: (
    scope: RecordScope,
    externalId: string,
    version: number,
    settlement: PulledSettlement,
  ) => Effect.Effect<boolean>;
  /** Records a failed push: `failed` when permanent, still `pending` (with the error) when transient. */
  readonly markPushFailed: (
    scope: RecordScope,
    externalId: string,
    version: number,
    error: { readonly permanent: boolean; readonly message: string },
  ) => Effect.Effect<void>;
}

/** The record store: synced copies of remote records, cursors, change feed, export. */
export class RecordStore extends Context.Tag("@tandem/core/RecordStore")<RecordStore, RecordStoreService>() {
  /** The store over the Database: each operation runs one owner's statements (see `make`). */
  static readonly make = Effect.gen(function* () {
    const db = yield* Database;
    const run: RunStatement = (statements) => db.query(statements).pipe(Effect.orDie);
    const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms).toISOString());
    /** An operation that is one call of `statements` at the current time, traced as `name`. */
    const timed = <Args extends ReadonlyArray<unknown>, A>(
      name: string,
      statements: (k: Kysely<DB>, at: string, ...args: Args) => Promise<A>,
    ) =>
      Effect.fn(name)(function* (...args: Args) {
        const at = yield* now;
        return yield* run((k) => statements(k, at, ...args));
      });
    /** An operation that is one call of `statements` (which need no time), traced as `name`. */
    const untimed = <Args extends ReadonlyArray<unknown>, A>(
      name: string,
      statements: (k: Kysely<DB>, ...args: Args) => Promise<A>,
    ) => Effect.fn(name)((...args: Args) => run((k) => statements(k, ...args)));
    const readPage =
      (scope: RecordScope): ReadPage =>
      (page) =>
        run((k) => recordsById(k, scope, page));

    return {
      upsert: Effect.fn("RecordStore.upsert")(function* (scope, records, options = {}) {
        return yield* upsertRecords(run, scope, records, yield* now, options.checkpoint);
      }),
      softDelete: timed("RecordStore.softDelete", rows.softDelete),
      get: Effect.fn("RecordStore.get")(function* (scope, externalId) {
        return Option.fromNullable(yield* run((k) => getRecord(k, scope, externalId)));
      }),
      getByLocalId: Effect.fn("RecordStore.getByLocalId")(function* (scope, localId) {
        return Option.fromNullable(yield* run((k) => getRecordByLocalId(k, scope, localId)));
      }),
      count: untimed("RecordStore.count", countLive),
      changes: untimed("RecordStore.changes", changesAfter),
      summary: untimed("RecordStore.summary", summarize),
      stream: (scope, options) => streamRecords(readPage(scope), options),
      export: (scope, format, options) => exportRecords(readPage(scope), format, options),
      cursor: untimed("RecordStore.cursor", readCursor),
      matchingState: untimed("RecordStore.matchingState", matchingState),
      saveCursor: timed("RecordStore.saveCursor", saveCursor),
      stageIds: timed("RecordStore.stageIds", stage.stageIds),
      analyzeStage: untimed("RecordStore.analyzeStage", stage.analyzeStage),
      vanished: untimed("RecordStore.vanished", stage.vanished),
      deleteVanished: timed("RecordStore.deleteVanished", stage.deleteVanished),
      missingIds: untimed("RecordStore.missingIds", stage.missingIds),
      driftedIds: untimed("RecordStore.driftedIds", stage.driftedIds),
      clearStage: untimed("RecordStore.clearStage", stage.clearStage),
      clearStaleStages: untimed("RecordStore.clearStaleStages", stage.clearStaleStages),
      applyLocalChange: Effect.fn("RecordStore.applyLocalChange")(function* (scope, externalId, changes) {
        const at = new Date(yield* Clock.currentTimeMillis);
        const applied = yield* editLocalRecord(db, scope, externalId, changes, { critical: false, delayMs: 0 }, at);
        return Option.map(applied, (a) => a.record);
      }),
      pending: untimed("RecordStore.pending", pendingRecords),
      markPushed: timed("RecordStore.markPushed", rows.markPushed),
      applyPulledSettlement: timed("RecordStore.applyPulledSettlement", rows.applyPulledSettlement),
      markPushFailed: untimed("RecordStore.markPushFailed", rows.markPushFailed),
    } satisfies RecordStoreService;
  });

  /** The record store; needs only the Database. */
  static readonly layerNoDeps = Layer.effect(RecordStore, RecordStore.make);

  /** Same as `layerNoDeps`: its one dependency, the Database, is a root of the engine. */
  static readonly layer = RecordStore.layerNoDeps;
}
