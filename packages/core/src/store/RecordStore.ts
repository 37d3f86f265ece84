import { isDeepStrictEqual } from "node:util";
import { Chunk, Clock, Context, Effect, Layer, Option, Stream } from "effect";
import { sql } from "kysely";
import { Database } from "../db/Database.ts";
import type { SyncStatus } from "../db/schema.ts";

/** Which records: one entity of one connection. */
export interface RecordScope {
  readonly tenantId: string;
  readonly connectionId: string;
  readonly entity: string;
}

/** A record as the store holds it. `data` is the encoded (JSON) form of the entity's record. */
export interface StoredRecord {
  readonly externalId: string;
  readonly data: Record<string, unknown>;
  readonly remoteUpdatedAt: Date | null;
  readonly localUpdatedAt: Date | null;
  readonly base: Record<string, unknown> | null;
  readonly pendingChanges: Record<string, unknown> | null;
  readonly version: number;
  readonly syncStatus: SyncStatus;
  readonly syncError: string | null;
  readonly lastSyncedAt: Date | null;
  readonly deletedAt: Date | null;
  /** Position in the change feed (a decimal string: it is a bigint). */
  readonly changeSeq: string;
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
export interface SyncCursor {
  readonly deltaCursor: Date | null;
  readonly lastFullAt: Date | null;
  readonly lastDeltaAt: Date | null;
  readonly lastReconcileAt: Date | null;
  /** Where an interrupted run of each mode resumes (absent when the last run of that mode finished). */
  readonly checkpoints: { readonly full?: Checkpoint; readonly delta?: Checkpoint };
  readonly quarantine: unknown;
}

/** A page of the change feed: changes after a cursor in order, deletions included. */
export interface ChangePage {
  readonly records: ReadonlyArray<StoredRecord>;
  /** Pass back as `after` for the next page; equal to the input when there is nothing new. */
  readonly cursor: string;
  readonly hasMore: boolean;
}

/** Filters and paging of the change feed. */
export interface ChangesOptions {
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

const asDate = (v: unknown): Date | null =>
  v === null || v === undefined ? null : v instanceof Date ? v : new Date(String(v));
const asObject = (v: unknown): Record<string, unknown> | null =>
  v === null || v === undefined ? null : typeof v === "string" ? JSON.parse(v) : (v as Record<string, unknown>);

/**
 * Whether a pulled version must wait for conflict settlement rather than be skipped: it is
 * strictly newer than the version the local edits were made on (one already settled is not held
 * again), and differs from the base, the state both sides last agreed on (as jsonb compares: the
 * JSON round trip drops undefined fields, as storing would).
 */
const meetsLocalChanges = (remote: IncomingRecord, base: Record<string, unknown> | null, storedAt: Date | null) =>
  (storedAt === null || remote.remoteUpdatedAt === null || remote.remoteUpdatedAt > storedAt) &&
  !isDeepStrictEqual(JSON.parse(JSON.stringify(remote.data)), base);

interface RawRow {
  external_id: string;
  data: unknown;
  remote_updated_at: unknown;
  local_updated_at: unknown;
  base: unknown;
  pending_changes: unknown;
  version: number | string;
  sync_status: SyncStatus;
  sync_error: string | null;
  last_synced_at: unknown;
  deleted_at: unknown;
  change_seq: string | number | bigint;
  changed_at: unknown;
}

const toStored = (row: RawRow): StoredRecord => ({
  externalId: row.external_id,
  data: asObject(row.data) ?? {},
  remoteUpdatedAt: asDate(row.remote_updated_at),
  localUpdatedAt: asDate(row.local_updated_at),
  base: asObject(row.base),
  pendingChanges: asObject(row.pending_changes),
  version: Number(row.version),
  syncStatus: row.sync_status,
  syncError: row.sync_error,
  lastSyncedAt: asDate(row.last_synced_at),
  deletedAt: asDate(row.deleted_at),
  changeSeq: String(row.change_seq),
  changedAt: asDate(row.changed_at) ?? new Date(0),
});

// `base` is stored only while it differs from `data` (see the records_write_path migration).
const columns = sql`external_id, data, remote_updated_at, local_updated_at,
  coalesce(base, data) as base, pending_changes,
  version, sync_status, sync_error, last_synced_at, deleted_at, change_seq::text as change_seq, changed_at`;

const csvCell = (value: unknown): string => {
  if (value === null || value === undefined) return "";
  const text = typeof value === "object" ? JSON.stringify(value) : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
};

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
  /** Live (not deleted) records of the scope. */
  readonly count: (scope: RecordScope) => Effect.Effect<number>;
  /**
   * Records changed after `after` (a change cursor; omit to start at the beginning),
   * deletions included unless `includeDeleted: false`; `modifiedAfter` keeps records
   * the store changed after that time. `limit` defaults to 100 (at most 1,000).
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
  readonly saveCursor: (
    scope: RecordScope,
    patch: {
      readonly deltaCursor?: Date | null;
      readonly lastFullAt?: Date;
      readonly lastDeltaAt?: Date;
      readonly lastReconcileAt?: Date;
      readonly quarantine?: unknown;
    },
  ) => Effect.Effect<void>;
  /** Adds remote ids of reconciliation run `runId` to the staging table (one statement per call). */
  readonly stageIds: (runId: string, externalIds: ReadonlyArray<string>) => Effect.Effect<void>;
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
  readonly clearStage: (runId: string) => Effect.Effect<void>;
  /** Removes ids staged before `before` by runs that crashed before cleaning up. */
  readonly clearStaleStages: (before: Date) => Effect.Effect<void>;
  /**
   * A local change from the host application: merged into `data`, accumulated in
   * `pending_changes`, and marked pending until pushed. Fails with undefined when
   * the record does not exist (or is deleted).
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
  static readonly layer = Layer.effect(
    RecordStore,
    Effect.gen(function* () {
      const db = yield* Database;
      // No constraint can fail on these statements except a missing connection (a caller bug).
      const q = <A>(f: Parameters<typeof db.query<A>>[0]) => db.query(f).pipe(Effect.orDie);
      const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms).toISOString());
      const inScope = (s: RecordScope) =>
        sql`connection_id = ${s.connectionId}::uuid and entity = ${s.entity} and tenant_id = ${s.tenantId}::uuid`;

      // Checkpoints are kept per mode ({ full, delta }), so a delta run between an
      // interrupted full run and its retry does not erase the full run's resume point.
      // `unlessHeld`: skipped when the statement held records back (see UpsertResult.heldBack).
      // `guard`: a condition the save waits on (the batch's connection still exists and nothing
      // was held back, see UpsertResult.heldBack).
      const checkpointCte = (scope: RecordScope, update: CheckpointUpdate, at: string, guard = sql``) =>
        sql`, cp as (
          insert into sync_cursors (connection_id, entity, checkpoint, updated_at)
          select ${scope.connectionId}::uuid, ${scope.entity},
            jsonb_strip_nulls(jsonb_build_object(${update.mode}::text, ${update.value === null ? null : JSON.stringify(update.value)}::jsonb)),
            ${at}::timestamptz
          ${guard}
          on conflict (connection_id, entity) do update set
            checkpoint = (coalesce(sync_cursors.checkpoint, '{}'::jsonb) - ${update.mode}::text) || excluded.checkpoint,
            updated_at = excluded.updated_at
          returning 1
        )`;

      const upsert = Effect.fn("RecordStore.upsert")(function* (
        scope: RecordScope,
        records: ReadonlyArray<IncomingRecord>,
        options: { readonly checkpoint?: CheckpointUpdate } = {},
      ) {
        const at = yield* now;
        if (records.length === 0) {
          if (options.checkpoint !== undefined) {
            yield* q((k) =>
              sql`with x as (select 1) ${checkpointCte(scope, options.checkpoint!, at)} select 1`.execute(k),
            );
          }
          return { created: [], updated: [], unchanged: 0, heldBack: [] } satisfies UpsertResult;
        }
        // Three parallel parameters zipped back into rows by ROWS FROM: the data as one jsonb array
        // (parsed once; jsonb_to_recordset over objects holding the data cost twice as much), the
        // ids and times as plain arrays.
        const ids = new Array<string>(records.length);
        const times = new Array<string | null>(records.length);
        const data = new Array<Record<string, unknown>>(records.length);
        for (let i = 0; i < records.length; i++) {
          const r = records[i]!;
          ids[i] = r.externalId;
          times[i] = r.remoteUpdatedAt?.toISOString() ?? null;
          data[i] = r.data;
        }
        const cp =
          options.checkpoint === undefined
            ? sql``
            : checkpointCte(
                scope,
                options.checkpoint,
                at,
                sql`where exists (select 1 from owner) and not exists (select 1 from unpushed)`,
              );
        const result = yield* q((k) =>
          sql<{
            external_id: string | null;
            outcome: "created" | "updated" | "unpushed" | "orphaned";
            base: unknown;
            remote_updated_at: Date | string | null;
          }>`
            with input as (
              select * from rows from (
                unnest(${ids}::text[]),
                jsonb_array_elements(${JSON.stringify(data)}::jsonb),
                unnest(${times}::timestamptz[])
              ) as i(external_id, data, remote_updated_at)
            ), owner as (
              -- In place of a per-row foreign key: the batch's connection, locked against deletion
              -- until this transaction ends (Connections.delete removes its records after it).
              select 1 from connections where id = ${scope.connectionId}::uuid and tenant_id = ${scope.tenantId}::uuid
              for key share
            ), unpushed as (
              -- The batch's records with unpushed local changes, which a pull never overwrites: the
              -- caller decides which are held back (see below). Found through the index of unsynced
              -- records by id, not by joining the input: a second reader of the input would make the
              -- database keep all of it aside (on disk, for a large batch).
              select r.external_id, coalesce(r.base, r.data) as base, r.remote_updated_at from records r
              where ${inScope(scope)} and r.sync_status in ('pending', 'conflict') and r.deleted_at is null
                and r.external_id = any(${ids}::text[])
            ), upserted as (
              insert into records as r (tenant_id, connection_id, entity, external_id, data,
                remote_updated_at, base, version, sync_status, last_synced_at, changed_at)
              select ${scope.tenantId}::uuid, ${scope.connectionId}::uuid, ${scope.entity}, i.external_id, i.data,
                i.remote_updated_at, null, 1, 'synced', ${at}::timestamptz, ${at}::timestamptz
              from input i where exists (select 1 from owner)
              on conflict (connection_id, entity, external_id) do update set
                data = excluded.data,
                remote_updated_at = excluded.remote_updated_at,
                base = null,
                version = r.version + 1,
                sync_status = 'synced',
                sync_error = null,
                last_synced_at = excluded.last_synced_at,
                deleted_at = null,
                change_seq = nextval('records_change_seq'),
                changed_at = excluded.changed_at
              where (r.data <> excluded.data or r.deleted_at is not null)
                and r.sync_status not in ('pending', 'conflict')
                and (r.remote_updated_at is null or excluded.remote_updated_at is null
                     or excluded.remote_updated_at >= r.remote_updated_at)
              returning r.external_id, case when r.xmax = 0 then 'created' else 'updated' end as outcome
            ) ${cp}
            select external_id, outcome, null as base, null as remote_updated_at from upserted
            union all select external_id, 'unpushed', base, remote_updated_at from unpushed
            union all select null, 'orphaned', null, null where not exists (select 1 from owner)`.execute(k),
        );
        const created: Array<string> = [];
        const updated: Array<string> = [];
        const heldBack: Array<string> = [];
        let unpushed = 0;
        const incoming = new Map(records.map((r) => [r.externalId, r]));
        for (const row of result.rows) {
          if (row.outcome === "orphaned") {
            return yield* Effect.dieMessage(
              `connection ${scope.connectionId} of tenant ${scope.tenantId} does not exist (deleted during the sync?)`,
            );
          }
          if (row.outcome === "created") created.push(row.external_id!);
          else if (row.outcome === "updated") updated.push(row.external_id!);
          else {
            unpushed++;
            const remote = incoming.get(row.external_id!)!;
            if (meetsLocalChanges(remote, asObject(row.base), asDate(row.remote_updated_at))) {
              heldBack.push(row.external_id!);
            }
          }
        }
        // Records with local changes were in the batch but none is held back (the remote sent
        // what they already agree on, or an older version): the statement withheld the
        // checkpoint, which is due after all.
        if (unpushed > 0 && heldBack.length === 0 && options.checkpoint !== undefined) {
          yield* q((k) =>
            sql`with x as (select 1) ${checkpointCte(scope, options.checkpoint!, at)} select 1`.execute(k),
          );
        }
        return {
          created,
          updated,
          unchanged: records.length - created.length - updated.length - heldBack.length,
          heldBack,
        } satisfies UpsertResult;
      });

      const softDelete = Effect.fn("RecordStore.softDelete")(function* (
        scope: RecordScope,
        externalIds: ReadonlyArray<string>,
        options: { readonly notNewerThan?: Date } = {},
      ) {
        if (externalIds.length === 0) return [] as ReadonlyArray<string>;
        const at = yield* now;
        const guard =
          options.notNewerThan === undefined
            ? sql``
            : sql`and (remote_updated_at is null or remote_updated_at <= ${options.notNewerThan.toISOString()}::timestamptz)`;
        const result = yield* q((k) =>
          sql<{ external_id: string }>`
            update records set deleted_at = ${at}::timestamptz, changed_at = ${at}::timestamptz,
              change_seq = nextval('records_change_seq')
            where ${inScope(scope)} and deleted_at is null
              and external_id = any(${[...externalIds]}::text[]) ${guard}
            returning external_id`.execute(k),
        );
        return result.rows.map((r) => r.external_id);
      });

      const get = Effect.fn("RecordStore.get")(function* (scope: RecordScope, externalId: string) {
        const result = yield* q((k) =>
          sql<RawRow>`select ${columns} from records where ${inScope(scope)} and external_id = ${externalId}`.execute(
            k,
          ),
        );
        return Option.map(Option.fromNullable(result.rows[0]), toStored);
      });

      const count = Effect.fn("RecordStore.count")(function* (scope: RecordScope) {
        const result = yield* q((k) =>
          sql<{
            n: string;
          }>`select count(*)::text as n from records where ${inScope(scope)} and deleted_at is null`.execute(k),
        );
        return Number(result.rows[0]?.n ?? 0);
      });

      const changes = Effect.fn("RecordStore.changes")(function* (scope: RecordScope, options: ChangesOptions = {}) {
        const limit = Math.max(1, Math.min(options.limit ?? 100, 1000));
        const after = options.after ?? "0";
        const modified =
          options.modifiedAfter === undefined
            ? sql``
            : sql`and changed_at > ${options.modifiedAfter.toISOString()}::timestamptz`;
        const deleted = options.includeDeleted === false ? sql`and deleted_at is null` : sql``;
        const result = yield* q((k) =>
          sql<RawRow>`select ${columns} from records
            where ${inScope(scope)} and change_seq > ${after}::bigint ${modified} ${deleted}
            order by records.change_seq limit ${limit + 1}`.execute(k),
        );
        const rows = result.rows.slice(0, limit).map(toStored);
        return {
          records: rows,
          cursor: rows.at(-1)?.changeSeq ?? after,
          hasMore: result.rows.length > limit,
        } satisfies ChangePage;
      });

      const summary = Effect.fn("RecordStore.summary")(function* (scope: RecordScope) {
        const result = yield* q((k) =>
          sql<{ live: string; deleted: string; pending: string; failed: string; conflict: string; last: unknown }>`
            select
              count(*) filter (where deleted_at is null)::text as live,
              count(*) filter (where deleted_at is not null)::text as deleted,
              count(*) filter (where deleted_at is null and sync_status = 'pending')::text as pending,
              count(*) filter (where deleted_at is null and sync_status = 'failed')::text as failed,
              count(*) filter (where deleted_at is null and sync_status = 'conflict')::text as conflict,
              max(last_synced_at) as last
            from records where ${inScope(scope)}`.execute(k),
        );
        const row = result.rows[0];
        return {
          live: Number(row?.live ?? 0),
          deleted: Number(row?.deleted ?? 0),
          pending: Number(row?.pending ?? 0),
          failed: Number(row?.failed ?? 0),
          conflict: Number(row?.conflict ?? 0),
          lastSyncedAt: asDate(row?.last),
        } satisfies RecordSummary;
      });

      const stream = (
        scope: RecordScope,
        options: { readonly includeDeleted?: boolean; readonly pageSize?: number } = {},
      ) =>
        Stream.paginateChunkEffect(undefined as string | undefined, (after) =>
          q((k) =>
            sql<RawRow>`select ${columns} from records
              where ${inScope(scope)} ${options.includeDeleted ? sql`` : sql`and deleted_at is null`}
                ${after === undefined ? sql`` : sql`and external_id > ${after}`}
              order by external_id limit ${options.pageSize ?? 500}`.execute(k),
          ).pipe(
            Effect.map(({ rows }) => {
              const page = rows.map(toStored);
              const last = page.at(-1)?.externalId;
              return [
                Chunk.fromIterable(page),
                page.length < (options.pageSize ?? 500) || last === undefined ? Option.none() : Option.some(last),
              ] as const;
            }),
          ),
        );

      const exportRecords = (
        scope: RecordScope,
        format: ExportFormat,
        options: { readonly columns?: ReadonlyArray<string>; readonly includeDeleted?: boolean } = {},
      ): Stream.Stream<string> => {
        const records = stream(scope, { includeDeleted: options.includeDeleted ?? false });
        if (format === "ndjson") {
          return Stream.map(
            records,
            (r) =>
              `${JSON.stringify({
                id: r.externalId,
                data: r.data,
                remoteUpdatedAt: r.remoteUpdatedAt?.toISOString() ?? null,
                deletedAt: r.deletedAt?.toISOString() ?? null,
                syncStatus: r.syncStatus,
              })}\n`,
          );
        }
        // CSV needs its columns before the first row: given, or the first record's top-level keys
        // (a streaming export cannot look ahead at every record).
        return Stream.unwrap(
          Effect.gen(function* () {
            let fields = options.columns;
            if (fields === undefined) {
              const first = yield* Stream.runHead(stream(scope, { ...options, pageSize: 1 }));
              // Sorted: jsonb does not keep the vendor's key order.
              fields = Option.match(first, { onNone: () => [], onSome: (r) => Object.keys(r.data).sort() });
            }
            const header = ["externalId", ...fields].map(csvCell).join(",");
            const cols = fields;
            return Stream.concat(
              Stream.make(`${header}\r\n`),
              Stream.map(records, (r) => `${[r.externalId, ...cols.map((c) => r.data[c])].map(csvCell).join(",")}\r\n`),
            );
          }),
        );
      };

      const cursor = Effect.fn("RecordStore.cursor")(function* (scope: RecordScope) {
        const row = yield* q((k) =>
          k
            .selectFrom("sync_cursors")
            .selectAll()
            .where("connection_id", "=", scope.connectionId)
            .where("entity", "=", scope.entity)
            .executeTakeFirst(),
        );
        if (row === undefined) return undefined;
        return {
          deltaCursor: row.delta_cursor,
          lastFullAt: row.last_full_at,
          lastDeltaAt: row.last_delta_at,
          lastReconcileAt: row.last_reconcile_at,
          checkpoints: (asObject(row.checkpoint) ?? {}) as SyncCursor["checkpoints"],
          quarantine: row.quarantine === null ? null : asObject(row.quarantine),
        } satisfies SyncCursor;
      });

      const saveCursor = Effect.fn("RecordStore.saveCursor")(function* (
        scope: RecordScope,
        patch: Parameters<RecordStoreService["saveCursor"]>[1],
      ) {
        const at = yield* now;
        const values = {
          ...(patch.deltaCursor !== undefined ? { delta_cursor: patch.deltaCursor } : {}),
          ...(patch.lastFullAt !== undefined ? { last_full_at: patch.lastFullAt } : {}),
          ...(patch.lastDeltaAt !== undefined ? { last_delta_at: patch.lastDeltaAt } : {}),
          ...(patch.lastReconcileAt !== undefined ? { last_reconcile_at: patch.lastReconcileAt } : {}),
          ...(patch.quarantine !== undefined
            ? { quarantine: patch.quarantine === null ? null : JSON.stringify(patch.quarantine) }
            : {}),
          updated_at: at,
        };
        yield* q((k) =>
          k
            .insertInto("sync_cursors")
            .values({ connection_id: scope.connectionId, entity: scope.entity, ...values })
            .onConflict((oc) => oc.columns(["connection_id", "entity"]).doUpdateSet(values))
            .execute(),
        );
      });

      const stageIds = Effect.fn("RecordStore.stageIds")(function* (runId: string, externalIds: ReadonlyArray<string>) {
        if (externalIds.length === 0) return;
        const at = yield* now;
        yield* q((k) =>
          sql`insert into reconcile_ids (run_id, external_id, staged_at)
            select ${runId}::uuid, id, ${at}::timestamptz from unnest(${[...externalIds]}::text[]) as id
            on conflict do nothing`.execute(k),
        );
      });

      const analyzeStage = Effect.fn("RecordStore.analyzeStage")(function* () {
        yield* q((k) => sql`analyze reconcile_ids`.execute(k));
        yield* q((k) => sql`analyze records`.execute(k));
      });

      const vanishedWhere = (scope: RecordScope, runId: string) => sql`
        ${inScope(scope)} and deleted_at is null
        and not exists (select 1 from reconcile_ids s where s.run_id = ${runId}::uuid and s.external_id = records.external_id)`;

      const vanished = Effect.fn("RecordStore.vanished")(function* (scope: RecordScope, runId: string) {
        const result = yield* q((k) =>
          sql<{ n: string; sample: Array<string> | null }>`
            select count(*)::text as n, (array_agg(external_id order by external_id))[1:10] as sample
            from records where ${vanishedWhere(scope, runId)}`.execute(k),
        );
        return { count: Number(result.rows[0]?.n ?? 0), sample: result.rows[0]?.sample ?? [] };
      });

      const deleteVanished = Effect.fn("RecordStore.deleteVanished")(function* (scope: RecordScope, runId: string) {
        const at = yield* now;
        const result = yield* q((k) =>
          sql`update records set deleted_at = ${at}::timestamptz, changed_at = ${at}::timestamptz,
              change_seq = nextval('records_change_seq')
            where ${vanishedWhere(scope, runId)}`.execute(k),
        );
        return Number(result.numAffectedRows ?? 0);
      });

      const missingIds = Effect.fn("RecordStore.missingIds")(function* (
        scope: RecordScope,
        runId: string,
        options: { readonly after?: string | undefined; readonly limit: number },
      ) {
        const result = yield* q((k) =>
          sql<{ external_id: string }>`
            select s.external_id from reconcile_ids s
            where s.run_id = ${runId}::uuid ${options.after === undefined ? sql`` : sql`and s.external_id > ${options.after}`}
              and not exists (select 1 from records r where r.connection_id = ${scope.connectionId}::uuid
                and r.entity = ${scope.entity} and r.external_id = s.external_id and r.deleted_at is null)
            order by s.external_id limit ${options.limit}`.execute(k),
        );
        return result.rows.map((r) => r.external_id);
      });

      const clearStage = Effect.fn("RecordStore.clearStage")(function* (runId: string) {
        yield* q((k) => k.deleteFrom("reconcile_ids").where("run_id", "=", runId).execute());
      });

      const clearStaleStages = Effect.fn("RecordStore.clearStaleStages")(function* (before: Date) {
        yield* q((k) => k.deleteFrom("reconcile_ids").where("staged_at", "<", before).execute());
      });

      const applyLocalChange = Effect.fn("RecordStore.applyLocalChange")(function* (
        scope: RecordScope,
        externalId: string,
        changes: Record<string, unknown>,
      ) {
        const at = yield* now;
        // Optimistic: merge in JS (pending_changes accumulates, jsonb || would replace), then
        // write only if nobody changed the record in between; retried on a race.
        for (let attempt = 0; attempt < 5; attempt++) {
          const current = yield* get(scope, externalId);
          if (Option.isNone(current) || current.value.deletedAt !== null) return Option.none<StoredRecord>();
          const data = { ...current.value.data, ...changes };
          const pendingChanges = { ...current.value.pendingChanges, ...changes };
          const result = yield* q((k) =>
            sql<RawRow>`
              update records set
                data = ${JSON.stringify(data)}::jsonb,
                -- The data both sides agreed on, kept once the record diverges from it.
                base = coalesce(base, data),
                pending_changes = ${JSON.stringify(pendingChanges)}::jsonb,
                local_updated_at = ${at}::timestamptz,
                version = version + 1,
                sync_status = 'pending',
                sync_error = null,
                change_seq = nextval('records_change_seq'),
                changed_at = ${at}::timestamptz
              where ${inScope(scope)} and external_id = ${externalId} and version = ${current.value.version}
              returning ${columns}`.execute(k),
          );
          const row = result.rows[0];
          if (row !== undefined) return Option.some(toStored(row));
        }
        return yield* Effect.dieMessage(`record ${externalId} kept changing while a local change was applied`);
      });

      const pending = Effect.fn("RecordStore.pending")(function* (
        scope: RecordScope,
        options: { readonly limit?: number } = {},
      ) {
        const result = yield* q((k) =>
          sql<RawRow>`select ${columns} from records
            where ${inScope(scope)} and sync_status = 'pending' and deleted_at is null
            order by local_updated_at, external_id limit ${options.limit ?? 500}`.execute(k),
        );
        return result.rows.map(toStored);
      });

      const markPushed = Effect.fn("RecordStore.markPushed")(function* (
        scope: RecordScope,
        externalId: string,
        version: number,
        remote: IncomingRecord,
      ) {
        const at = yield* now;
        const json = JSON.stringify(remote.data);
        const result = yield* q((k) =>
          sql`update records set
              data = ${json}::jsonb, base = null,
              remote_updated_at = ${remote.remoteUpdatedAt?.toISOString() ?? null}::timestamptz,
              pending_changes = null, sync_status = 'synced', sync_error = null, last_synced_at = ${at}::timestamptz,
              version = version + 1, change_seq = nextval('records_change_seq'), changed_at = ${at}::timestamptz
            where ${inScope(scope)} and external_id = ${externalId} and version = ${version}`.execute(k),
        );
        return Number(result.numAffectedRows ?? 0) === 1;
      });

      const applyPulledSettlement = Effect.fn("RecordStore.applyPulledSettlement")(function* (
        scope: RecordScope,
        externalId: string,
        version: number,
        settlement: PulledSettlement,
      ) {
        const at = yield* now;
        const remoteAt = settlement.remote.remoteUpdatedAt?.toISOString() ?? null;
        const set =
          settlement._tag === "Conflict"
            ? sql`sync_status = 'conflict'`
            : sql`data = ${JSON.stringify(settlement.data)}::jsonb,
                base = nullif(${JSON.stringify(settlement.remote.data)}::jsonb, ${JSON.stringify(settlement.data)}::jsonb),
                pending_changes = ${settlement.pendingChanges === null ? null : JSON.stringify(settlement.pendingChanges)}::jsonb,
                sync_status = ${settlement.pendingChanges === null ? "synced" : "pending"},
                last_synced_at = ${at}::timestamptz`;
        const result = yield* q((k) =>
          sql`update records set ${set}, remote_updated_at = ${remoteAt}::timestamptz, sync_error = null,
              version = version + 1, change_seq = nextval('records_change_seq'), changed_at = ${at}::timestamptz
            where ${inScope(scope)} and external_id = ${externalId} and version = ${version}`.execute(k),
        );
        return Number(result.numAffectedRows ?? 0) === 1;
      });

      const markPushFailed = Effect.fn("RecordStore.markPushFailed")(function* (
        scope: RecordScope,
        externalId: string,
        version: number,
        error: { readonly permanent: boolean; readonly message: string },
      ) {
        yield* q((k) =>
          sql`update records set sync_status = ${error.permanent ? "failed" : "pending"}, sync_error = ${error.message}
            where ${inScope(scope)} and external_id = ${externalId} and version = ${version}`.execute(k),
        );
      });

      return {
        upsert,
        softDelete,
        get,
        count,
        changes,
        summary,
        stream,
        export: exportRecords,
        cursor,
        saveCursor,
        stageIds,
        analyzeStage,
        vanished,
        deleteVanished,
        missingIds,
        clearStage,
        clearStaleStages,
        applyLocalChange,
        pending,
        markPushed,
        applyPulledSettlement,
        markPushFailed,
      } satisfies RecordStoreService;
    }),
  );
}
