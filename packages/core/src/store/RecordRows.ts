import type { Effect } from "effect";
import { type Kysely, type RawBuilder, sql } from "kysely";
import type { DB, SyncStatus } from "../db/schema.ts";
import { asDate, asObject } from "./columnValues.ts";
import type { CheckpointUpdate, IncomingRecord, PulledSettlement, RecordScope, StoredRecord } from "./RecordStore.ts";
import { checkpointCte } from "./SyncCursors.ts";

/**
 * The owner of the `records` table: every statement that writes it is here, as a plain function
 * over Kysely (`at` is the statement's time, an ISO string), with the row shape and the
 * fragments (`columns`, `inScope`) that the store's readers compose. Every write that changes
 * what a reader sees takes a new feed position (`newChange`): see ChangeFeed.ts.
 */

/**
 * The assignments that move a row to a new change-feed position: its transaction's id and a new
 * sequence value (an insert gets both from the column defaults).
 */
const newChange = sql`change_seq = nextval('records_change_seq'), change_xid = pg_current_xact_id()`;

/**
 * Runs statements on the current transaction or the pool, a failure being a defect: no constraint
 * can fail on the store's statements except a missing connection (a caller bug).
 */
export type RunStatement = <A>(statements: (k: Kysely<DB>) => Promise<A>) => Effect.Effect<A>;

/** A row as `columns` selects it. */
export interface RawRow {
  external_id: string;
  local_id: string | null;
  external_id_provisional: boolean;
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
  change_xid: string;
  changed_at: unknown;
}

export const toStored = (row: RawRow): StoredRecord => {
  const data = asObject(row.data) ?? {};
  return {
    externalId: row.external_id,
    localId: row.local_id,
    provisional: row.external_id_provisional,
    data,
    remoteUpdatedAt: asDate(row.remote_updated_at),
    localUpdatedAt: asDate(row.local_updated_at),
    // Stored only while it differs from `data` (see `columns`): otherwise it is `data` itself.
    base: asObject(row.base) ?? data,
    pendingChanges: asObject(row.pending_changes),
    version: Number(row.version),
    syncStatus: row.sync_status,
    syncError: row.sync_error,
    lastSyncedAt: asDate(row.last_synced_at),
    deletedAt: asDate(row.deleted_at),
    changeSeq: String(row.change_seq),
    changeXid: row.change_xid,
    changedAt: asDate(row.changed_at) ?? new Date(0),
  };
};

// `base` is stored only while it differs from `data` (see the records_write_path migration), and
// read as stored: `toStored` takes `data` for a null one, rather than the row carrying (and the
// driver parsing) the whole record twice.
export const columns = sql`external_id, local_id, external_id_provisional, data, remote_updated_at, local_updated_at,
  base, pending_changes,
  version, sync_status, sync_error, last_synced_at, deleted_at, change_seq::text as change_seq,
  change_xid::text as change_xid, changed_at`;

/**
 * A record as a push reads it beside its claimed outbox entry: only what the push plans and
 * settles with. A claim reads a thousand of these at a time, so the row leaves out what a push
 * never looks at (timestamps, the feed position) and carries each record's document once.
 */
export interface PushRecord {
  readonly externalId: string;
  readonly localId: string | null;
  /** Created locally and not yet at the vendor: its push is a create of `data`. */
  readonly provisional: boolean;
  /** The record's data, read only while it is provisional (what its create sends); null otherwise. */
  readonly data: Record<string, unknown> | null;
  /** The last state both sides agreed on: what the vendor holds at the version a write is conditional on. */
  readonly base: Record<string, unknown>;
  readonly pendingChanges: Record<string, unknown> | null;
  readonly version: number;
  readonly syncStatus: SyncStatus;
  /** Deleted locally (a push deletes it at the vendor) or remotely. */
  readonly deleted: boolean;
}

/** `PushRecord`'s columns of the records row aliased `r`, each prefixed `r_` (they sit beside an entry's). */
export const pushRecordColumns = sql`r.external_id as r_external_id, r.local_id as r_local_id,
  r.external_id_provisional as r_provisional,
  case when r.external_id_provisional then r.data end as r_data,
  coalesce(r.base, r.data) as r_base, r.pending_changes as r_pending_changes, r.version as r_version,
  r.sync_status as r_sync_status, r.deleted_at is not null as r_deleted`;

/** A row as `pushRecordColumns` selects it (all null where the record is gone). */
export interface RawPushRecord {
  r_external_id: string | null;
  r_local_id: string | null;
  r_provisional: boolean;
  r_data: unknown;
  r_base: unknown;
  r_pending_changes: unknown;
  r_version: number | string;
  r_sync_status: SyncStatus;
  r_deleted: boolean;
}

/** The record of a `pushRecordColumns` row; undefined where the record is gone. */
export const toPushRecord = (row: RawPushRecord): PushRecord | undefined =>
  row.r_external_id === null
    ? undefined
    : {
        externalId: row.r_external_id,
        localId: row.r_local_id,
        provisional: row.r_provisional,
        data: asObject(row.r_data),
        base: asObject(row.r_base) ?? {},
        pendingChanges: asObject(row.r_pending_changes),
        version: Number(row.r_version),
        syncStatus: row.r_sync_status,
        deleted: row.r_deleted,
      };

/** The records of one entity of one connection. */
export const inScope = (s: RecordScope) =>
  sql`connection_id = ${s.connectionId}::uuid and entity = ${s.entity} and tenant_id = ${s.tenantId}::uuid`;

/** One row of the batch upsert's answer (see `upsertBatch`). */
export interface UpsertRow {
  external_id: string | null;
  outcome: "created" | "updated" | "unpushed" | "orphaned";
  base: unknown;
  remote_updated_at: Date | string | null;
}

/**
 * Stores a batch in ONE statement (see `RecordStoreService.upsert` for what it does to each
 * record). Answers a row per record written (`created`/`updated`), one per record of the batch
 * holding unpushed local changes (`unpushed`, with its base and stored `remote_updated_at`, for
 * the caller to decide whether it is held back), and one `orphaned` row when the connection does
 * not exist. `checkpoint`, when given, is saved by the same statement if the connection exists and
 * the batch met no unpushed record. Ids must be unique within the batch.
 */
export const upsertBatch = async (
  k: Kysely<DB>,
  scope: RecordScope,
  records: ReadonlyArray<IncomingRecord>,
  at: string,
  checkpoint: CheckpointUpdate | undefined,
): Promise<ReadonlyArray<UpsertRow>> => {
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
    checkpoint === undefined
      ? sql``
      : checkpointCte(
          scope,
          checkpoint,
          at,
          sql`where exists (select 1 from owner) and not exists (select 1 from unpushed)`,
        );
  const result = await sql<UpsertRow>`
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
              -- A local delete not pushed yet is one too: the delete-against-edit rule settles it.
              select r.external_id, coalesce(r.base, r.data) as base, r.remote_updated_at from records r
              where ${inScope(scope)} and r.sync_status in ('pending', 'conflict')
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
                ${newChange},
                changed_at = excluded.changed_at
              where (r.data <> excluded.data or r.deleted_at is not null)
                and r.sync_status not in ('pending', 'conflict')
                and (r.remote_updated_at is null or excluded.remote_updated_at is null
                     or excluded.remote_updated_at >= r.remote_updated_at)
              returning r.external_id, case when r.xmax = 0 then 'created' else 'updated' end as outcome
            ) ${cp}
            select external_id, outcome, null as base, null as remote_updated_at from upserted
            union all select external_id, 'unpushed', base, remote_updated_at from unpushed
            union all select null, 'orphaned', null, null where not exists (select 1 from owner)`.execute(k);
  return result.rows;
};

/**
 * Soft-deletes the live records of `externalIds` (no statement for none); with `notNewerThan`,
 * one whose stored `remote_updated_at` is newer is kept. Answers the ids deleted.
 */
export const softDelete = async (
  k: Kysely<DB>,
  at: string,
  scope: RecordScope,
  externalIds: ReadonlyArray<string>,
  options: { readonly notNewerThan?: Date } = {},
): Promise<ReadonlyArray<string>> => {
  if (externalIds.length === 0) return [];
  const guard =
    options.notNewerThan === undefined
      ? sql``
      : sql`and (remote_updated_at is null or remote_updated_at <= ${options.notNewerThan.toISOString()}::timestamptz)`;
  const result = await sql<{ external_id: string }>`
            update records set deleted_at = ${at}::timestamptz, changed_at = ${at}::timestamptz,
              ${newChange}
            where ${inScope(scope)} and deleted_at is null
              and external_id = any(${[...externalIds]}::text[]) ${guard}
            returning external_id`.execute(k);
  return result.rows.map((r) => r.external_id);
};

/**
 * Soft-deletes every record `where` selects (a condition over `records`, composed by the caller,
 * e.g. the reconcile stage's vanished records); answers how many.
 */
export const softDeleteWhere = async (k: Kysely<DB>, where: RawBuilder<unknown>, at: string): Promise<number> => {
  const result = await sql`update records set deleted_at = ${at}::timestamptz, changed_at = ${at}::timestamptz,
              ${newChange}
            where ${where}`.execute(k);
  return Number(result.numAffectedRows ?? 0);
};

/**
 * Writes a local change already merged by the caller (`data`, `pendingChanges`), only if the
 * record is still at `version`: the updated record, or undefined when it changed in between.
 */
export const writeLocalChange = async (
  k: Kysely<DB>,
  scope: RecordScope,
  externalId: string,
  version: number,
  change: {
    readonly data: Record<string, unknown>;
    readonly pendingChanges: Record<string, unknown>;
    /** The vendor's record the change was made against, when it is not the stored base (a conflict's resolution). */
    readonly base?: Record<string, unknown> | undefined;
  },
  at: string,
): Promise<StoredRecord | undefined> => {
  const base = change.base === undefined ? null : JSON.stringify(change.base);
  const result = await sql<RawRow>`
              update records set
                data = ${JSON.stringify(change.data)}::jsonb,
                -- The data both sides agreed on, kept once the record diverges from it.
                base = coalesce(${base}::jsonb, base, data),
                pending_changes = ${JSON.stringify(change.pendingChanges)}::jsonb,
                local_updated_at = ${at}::timestamptz,
                version = version + 1,
                sync_status = 'pending',
                sync_error = null,
                ${newChange},
                changed_at = ${at}::timestamptz
              where ${inScope(scope)} and external_id = ${externalId} and version = ${version}
              returning ${columns}`.execute(k);
  const row = result.rows[0];
  return row === undefined ? undefined : toStored(row);
};

/** A push the vendor took: the record it was read at (`version`), and the vendor's answer. */
export interface PushedRecord {
  readonly externalId: string;
  readonly version: number;
  readonly remote: IncomingRecord;
}

/** `pushed` as rows `v(eid, ver, pushed_data, pushed_at)`, one parameter for the whole batch. */
const pushedRows = (pushed: ReadonlyArray<PushedRecord>) =>
  sql`jsonb_to_recordset(${JSON.stringify(pushed.map(pushedRecordsRow))}::jsonb) as v(${pushedRecordsColumns})`;

/**
 * The records among `pushed` changed locally while their write was in flight (their version moved
 * past the one the push was read at, and they are pending again): rebased on the vendor's answer.
 * The answer becomes the record's `base`, and its data with the unpushed changes laid over it
 * (they win: they are the newer local change), so the next push is conditional on the version we
 * just wrote and a pull merges against what the vendor holds since our write. Left on the older
 * base, our own write would look like a remote edit: the next conditional write would be refused,
 * and the merge would meet the local change with our pushed value as a conflict, where a policy
 * such as last-write-wins could drop the local change. A record a pull has since settled against
 * a newer remote version keeps that one. The version moves, so a settlement computed against the
 * older base no longer applies.
 */
const rebaseMoved = (at: string, scope: RecordScope, v: RawBuilder<unknown>) =>
  sql`update records set data = v.pushed_data || coalesce(pending_changes, '{}'::jsonb), base = v.pushed_data,
              remote_updated_at = v.pushed_at, version = version + 1, ${newChange}, changed_at = ${at}::timestamptz
            from ${v}
            where ${inScope(scope)} and external_id = v.eid and version <> v.ver and sync_status = 'pending'
              and (remote_updated_at is null or v.pushed_at is null or remote_updated_at <= v.pushed_at)`;

/**
 * Stores what the remote answered to a push as data and base, if the record is still at `version`
 * (true); a record changed locally meanwhile keeps its change, rebased on the answer (see
 * `rebaseMoved`; false).
 */
export const markPushed = async (
  k: Kysely<DB>,
  at: string,
  scope: RecordScope,
  externalId: string,
  version: number,
  remote: IncomingRecord,
): Promise<boolean> => {
  const json = JSON.stringify(remote.data);
  const result = await sql`update records set
              data = ${json}::jsonb, base = null,
              remote_updated_at = ${remote.remoteUpdatedAt?.toISOString() ?? null}::timestamptz,
              pending_changes = null, sync_status = 'synced', sync_error = null, last_synced_at = ${at}::timestamptz,
              version = version + 1, ${newChange}, changed_at = ${at}::timestamptz
            where ${inScope(scope)} and external_id = ${externalId} and version = ${version}`.execute(k);
  if (Number(result.numAffectedRows ?? 0) === 1) return true;
  await rebaseMoved(at, scope, pushedRows([{ externalId, version, remote }])).execute(k);
  return false;
};

/**
 * `markPushed` for many records (a batch's answers), as the CTEs `stored` and `rebased` of a
 * statement whose CTE `v` holds one row per record (`pushedRecordsRow`): each record still at its
 * `version` is stored with the answer as data and base; one changed meanwhile keeps its change,
 * rebased on the answer (`rebaseMoved`). The rebase looks only at the rows `stored` did not take
 * (CTEs of one statement do not see each other's writes, only what they return), so in the common
 * case it reads no record at all.
 */
export const markPushedManyCtes = (at: string, scope: RecordScope) =>
  sql`stored as (
              update records set
                data = v.pushed_data, base = null, remote_updated_at = v.pushed_at,
                pending_changes = null, sync_status = 'synced', sync_error = null, last_synced_at = ${at}::timestamptz,
                version = version + 1, ${newChange}, changed_at = ${at}::timestamptz
              from v
              where ${inScope(scope)} and external_id = v.eid and version = v.ver
              returning records.external_id
            ), rebased as (
              ${rebaseMoved(at, scope, sql`(select * from v where not exists (select 1 from stored where stored.external_id = v.eid)) as v`)}
              returning 1
            )`;

/** One record's row of `markPushedManyCtes`'s input `v`. */
export const pushedRecordsRow = (p: PushedRecord) => ({
  eid: p.externalId,
  ver: p.version,
  pushed_data: p.remote.data,
  pushed_at: p.remote.remoteUpdatedAt?.toISOString() ?? null,
});

/** The columns of `markPushedManyCtes`'s input, for `jsonb_to_recordset`. */
export const pushedRecordsColumns = sql`eid text, ver integer, pushed_data jsonb, pushed_at timestamptz`;

/** Settles a held-back record (see `RecordStoreService.applyPulledSettlement`), if still at `version`. */
export const applyPulledSettlement = async (
  k: Kysely<DB>,
  at: string,
  scope: RecordScope,
  externalId: string,
  version: number,
  settlement: PulledSettlement,
): Promise<boolean> => {
  const remoteAt = settlement.remote.remoteUpdatedAt?.toISOString() ?? null;
  const set =
    settlement._tag === "Conflict"
      ? sql`sync_status = 'conflict'`
      : sql`data = ${JSON.stringify(settlement.data)}::jsonb,
                base = nullif(${JSON.stringify(settlement.remote.data)}::jsonb, ${JSON.stringify(settlement.data)}::jsonb),
                pending_changes = ${settlement.pendingChanges === null ? null : JSON.stringify(settlement.pendingChanges)}::jsonb,
                sync_status = ${settlement.pendingChanges === null ? "synced" : "pending"},
                last_synced_at = ${at}::timestamptz`;
  const result = await sql`update records set ${set}, remote_updated_at = ${remoteAt}::timestamptz, sync_error = null,
              version = version + 1, ${newChange}, changed_at = ${at}::timestamptz
            where ${inScope(scope)} and external_id = ${externalId} and version = ${version}`.execute(k);
  return Number(result.numAffectedRows ?? 0) === 1;
};

/** A record the host application creates: pending until the push creates it at the vendor. */
export interface LocalRecord {
  /** Ours until the vendor's answer replaces it (see `markCreated`). */
  readonly provisionalId: string;
  readonly localId: string | null;
  readonly data: Record<string, unknown>;
}

/**
 * Inserts a record created locally: a provisional external id, its fields as data and as pending
 * changes, status pending. A taken `localId` breaks `records_local_id` (the caller's AlreadyExists).
 */
export const insertLocalRecord = async (
  k: Kysely<DB>,
  at: string,
  scope: RecordScope,
  record: LocalRecord,
): Promise<StoredRecord> => {
  const json = JSON.stringify(record.data);
  const result = await sql<RawRow>`
              insert into records (tenant_id, connection_id, entity, external_id, local_id, external_id_provisional,
                data, pending_changes, local_updated_at, version, sync_status, changed_at)
              values (${scope.tenantId}::uuid, ${scope.connectionId}::uuid, ${scope.entity}, ${record.provisionalId},
                ${record.localId}, true, ${json}::jsonb, ${json}::jsonb, ${at}::timestamptz, 1, 'pending', ${at}::timestamptz)
              returning ${columns}`.execute(k);
  return toStored(result.rows[0]!);
};

/**
 * A local delete, if the record is still at `version`: soft-deleted now. `pushed: false` when
 * there is nothing to tell the vendor (a local create never pushed): the record is then settled
 * (synced) at once. Answers the record, or undefined when it changed in between.
 */
export const writeLocalDelete = async (
  k: Kysely<DB>,
  at: string,
  scope: RecordScope,
  externalId: string,
  version: number,
  options: { readonly pushed: boolean },
): Promise<StoredRecord | undefined> => {
  const settled = options.pushed ? sql`sync_status = 'pending'` : sql`sync_status = 'synced', pending_changes = null`;
  const result = await sql<RawRow>`
              update records set deleted_at = ${at}::timestamptz, local_updated_at = ${at}::timestamptz,
                base = coalesce(base, data), version = version + 1, ${settled}, sync_error = null,
                ${newChange}, changed_at = ${at}::timestamptz
              where ${inScope(scope)} and external_id = ${externalId} and version = ${version} and deleted_at is null
              returning ${columns}`.execute(k);
  const row = result.rows[0];
  return row === undefined ? undefined : toStored(row);
};

/**
 * The vendor created a record pushed as `provisionalId`: its id replaces ours for good (whatever
 * happened locally since), and its answer becomes the record's data and base if the record is
 * still at `version`; a newer local change keeps its data and stays pending, with the answer as
 * base. A pull that stored the vendor's copy first (the webhook or delta echo of our own create)
 * left a second row under the vendor's id: that row goes, the created record keeps the id. A row
 * under the vendor's id with a host id is never such a copy (a pull sets none): it is a host's
 * record, and a settlement never deletes one.
 */
export const markCreated = async (
  k: Kysely<DB>,
  at: string,
  scope: RecordScope,
  provisionalId: string,
  version: number,
  remote: IncomingRecord,
): Promise<StoredRecord | undefined> => {
  await sql`delete from records where ${inScope(scope)} and external_id = ${remote.externalId}
              and not external_id_provisional and local_id is null`.execute(k);
  const json = JSON.stringify(remote.data);
  const result = await sql<RawRow>`
              update records set external_id = ${remote.externalId}, external_id_provisional = false,
                remote_updated_at = ${remote.remoteUpdatedAt?.toISOString() ?? null}::timestamptz,
                data = case when version = ${version} then ${json}::jsonb else data end,
                base = case when version = ${version} then null else ${json}::jsonb end,
                pending_changes = case when version = ${version} then null else pending_changes end,
                sync_status = case when version = ${version} then 'synced' else sync_status end,
                sync_error = null, last_synced_at = ${at}::timestamptz, version = version + 1,
                ${newChange}, changed_at = ${at}::timestamptz
              where ${inScope(scope)} and external_id = ${provisionalId} and external_id_provisional
              returning ${columns}`.execute(k);
  const row = result.rows[0];
  return row === undefined ? undefined : toStored(row);
};

/**
 * Initial matching linked a record created locally (`provisionalId`) to the vendor's record
 * `vendorId`: the vendor's id replaces ours, and since both sides never agreed on anything the
 * base becomes empty, so that settling the vendor's version against it (a pull meeting the
 * record's pending changes) merges the two three-way through the entity's conflict policy. A
 * copy pulled earlier under the vendor's id (with no host id attached) goes: the linked record
 * is that record now. Answers the record, or undefined when it is no longer local-only.
 */
export const linkToVendor = async (
  k: Kysely<DB>,
  at: string,
  scope: RecordScope,
  provisionalId: string,
  vendorId: string,
): Promise<StoredRecord | undefined> => {
  await sql`delete from records where ${inScope(scope)} and external_id = ${vendorId}
              and not external_id_provisional and local_id is null`.execute(k);
  const result = await sql<RawRow>`
              update records set external_id = ${vendorId}, external_id_provisional = false, base = '{}'::jsonb,
                pending_changes = data, sync_status = 'pending', sync_error = null, version = version + 1,
                ${newChange}, changed_at = ${at}::timestamptz
              where ${inScope(scope)} and external_id = ${provisionalId} and external_id_provisional
                and deleted_at is null
              returning ${columns}`.execute(k);
  const row = result.rows[0];
  return row === undefined ? undefined : toStored(row);
};

/** A pushed delete is done at the vendor: settled, if the record is still at `version` (its data did not change). */
export const markDeletePushed = async (
  k: Kysely<DB>,
  at: string,
  scope: RecordScope,
  externalId: string,
  version: number,
): Promise<boolean> => {
  const result = await sql`update records set sync_status = 'synced', sync_error = null, pending_changes = null,
              last_synced_at = ${at}::timestamptz
            where ${inScope(scope)} and external_id = ${externalId} and version = ${version}`.execute(k);
  return Number(result.numAffectedRows ?? 0) === 1;
};

/**
 * Abandons a record's unpushed local changes (a dead push discarded): it goes back to the last
 * state both sides agreed on (`base`), undeleted when the change was a delete (`undelete`). A
 * record created locally and never pushed has no such state: it is deleted locally.
 */
export const revertLocalChange = async (
  k: Kysely<DB>,
  at: string,
  scope: RecordScope,
  externalId: string,
  options: { readonly undelete: boolean },
): Promise<StoredRecord | undefined> => {
  const deleted = options.undelete ? sql`null` : sql`deleted_at`;
  const result = await sql<RawRow>`
              update records set
                data = case when external_id_provisional then data else coalesce(base, data) end,
                base = case when external_id_provisional then base else null end,
                deleted_at = case when external_id_provisional then coalesce(deleted_at, ${at}::timestamptz) else ${deleted} end,
                pending_changes = null, sync_status = 'synced', sync_error = null, version = version + 1,
                ${newChange}, changed_at = ${at}::timestamptz
              where ${inScope(scope)} and external_id = ${externalId}
              returning ${columns}`.execute(k);
  const row = result.rows[0];
  return row === undefined ? undefined : toStored(row);
};

/**
 * A dead push sent back to the drains: the failed record is pending again (its last error kept
 * until the outcome). Its status is what a reader sees, so it takes a new feed position.
 */
export const markPushRetried = async (k: Kysely<DB>, scope: RecordScope, externalId: string): Promise<void> => {
  await sql`update records set sync_status = 'pending', ${newChange}
            where ${inScope(scope)} and external_id = ${externalId} and sync_status = 'failed'`.execute(k);
};

/**
 * Records a failed push on the record, if still at `version`. Its data did not change (the version
 * stays), but its status and error are what a reader sees, so it takes a new feed position: a host
 * following the feed learns that its change did not reach the vendor.
 */
export const markPushFailed = async (
  k: Kysely<DB>,
  scope: RecordScope,
  externalId: string,
  version: number,
  error: { readonly permanent: boolean; readonly message: string },
): Promise<void> => {
  await sql`update records set sync_status = ${error.permanent ? "failed" : "pending"}, sync_error = ${error.message},
              ${newChange}
            where ${inScope(scope)} and external_id = ${externalId} and version = ${version}`.execute(k);
};

/**
 * Removes every record of a connection, as its deletion does. Records carry no foreign key (one
 * check per batch instead of per row, see the records_write_path migration), so they do not go
 * with the connection's row by cascade.
 */
export const deleteRecordsOfConnection = async (k: Kysely<DB>, connectionId: string): Promise<void> => {
  await k.deleteFrom("records").where("connection_id", "=", connectionId).execute();
};

/*
 * Deletes against edits (see store/deletesAgainstEdits.ts): the records a delete on one side
 * meets with an unpushed change on the other, and what each rule makes of them.
 */

/**
 * Among `externalIds`, the live records a remote deletion must not touch as is: those with an
 * unpushed local edit (`edited`, locked until the transaction ends) and those already waiting to
 * be (re)created at the vendor (`provisional`).
 */
export const liveEditsAmong = async (
  k: Kysely<DB>,
  scope: RecordScope,
  externalIds: ReadonlyArray<string>,
): Promise<{ readonly edited: ReadonlyArray<StoredRecord>; readonly provisional: ReadonlyArray<string> }> => {
  if (externalIds.length === 0) return { edited: [], provisional: [] };
  const result = await sql<RawRow>`select ${columns} from records
            where ${inScope(scope)} and deleted_at is null and external_id = any(${[...externalIds]}::text[])
              and (external_id_provisional or (sync_status = 'pending' and pending_changes is not null))
            order by external_id for update`.execute(k);
  const rows = result.rows.map(toStored);
  return {
    edited: rows.filter((r) => !r.provisional),
    provisional: rows.filter((r) => r.provisional).map((r) => r.externalId),
  };
};

/**
 * The vendor deleted a record edited locally, and the edit wins: the record stays, its id becomes
 * provisional again, and the next push creates it (all its data) under the vendor's new id.
 */
export const markForRecreate = async (k: Kysely<DB>, at: string, scope: RecordScope, externalId: string) => {
  await sql`update records set external_id_provisional = true, base = null, sync_status = 'pending',
              sync_error = null, version = version + 1, ${newChange}, changed_at = ${at}::timestamptz
            where ${inScope(scope)} and external_id = ${externalId} and deleted_at is null`.execute(k);
};

/** The delete wins over a local edit: the edit is dropped (it is in the audit trail), the record left synced. */
export const dropLocalEdit = async (k: Kysely<DB>, at: string, scope: RecordScope, externalId: string) => {
  await sql`update records set pending_changes = null, base = null, sync_status = 'synced', sync_error = null,
              version = version + 1, ${newChange}, changed_at = ${at}::timestamptz
            where ${inScope(scope)} and external_id = ${externalId}`.execute(k);
};

/** Among `externalIds`, the records deleted locally whose delete is not pushed yet (locked until the transaction ends). */
export const pendingDeletesAmong = async (
  k: Kysely<DB>,
  scope: RecordScope,
  externalIds: ReadonlyArray<string>,
): Promise<ReadonlyArray<StoredRecord>> => {
  if (externalIds.length === 0) return [];
  const result = await sql<RawRow>`select ${columns} from records
            where ${inScope(scope)} and deleted_at is not null and sync_status = 'pending'
              and not external_id_provisional and external_id = any(${[...externalIds]}::text[])
            order by external_id for update`.execute(k);
  return result.rows.map(toStored);
};

/**
 * A local delete wins over a remote edit: the delete stays pending, now made against the remote
 * version it was weighed against (its base), so its push is conditional on that version (a later
 * remote edit is caught and weighed again) and a pull reading the same version again does not
 * meet the delete a second time.
 */
export const rebaseLocalDelete = async (k: Kysely<DB>, scope: RecordScope, remote: IncomingRecord): Promise<void> => {
  await sql`update records set base = ${JSON.stringify(remote.data)}::jsonb,
              remote_updated_at = ${remote.remoteUpdatedAt?.toISOString() ?? null}::timestamptz, version = version + 1
            where ${inScope(scope)} and external_id = ${remote.externalId} and deleted_at is not null`.execute(k);
};

/** A remote edit wins over a local delete: the record is live again, as the vendor has it. */
export const restoreFromRemote = async (
  k: Kysely<DB>,
  at: string,
  scope: RecordScope,
  remote: IncomingRecord,
): Promise<void> => {
  await sql`update records set data = ${JSON.stringify(remote.data)}::jsonb,
              remote_updated_at = ${remote.remoteUpdatedAt?.toISOString() ?? null}::timestamptz,
              deleted_at = null, pending_changes = null, base = null, sync_status = 'synced', sync_error = null,
              last_synced_at = ${at}::timestamptz, version = version + 1, ${newChange}, changed_at = ${at}::timestamptz
            where ${inScope(scope)} and external_id = ${remote.externalId}`.execute(k);
};
