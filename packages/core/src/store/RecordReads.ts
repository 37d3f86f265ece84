import { type Kysely, type RawBuilder, sql } from "kysely";
import type { DB } from "../db/schema.ts";
import { asDate } from "./columnValues.ts";
import { columns, inScope, type RawRow, toStored } from "./RecordRows.ts";
import type { RecordScope, RecordSummary, StoredRecord } from "./RecordStore.ts";

/** Reads of the records of one scope, as plain functions over Kysely. */

/** One record by external id, deleted or not. */
export const getRecord = async (
  k: Kysely<DB>,
  scope: RecordScope,
  externalId: string,
): Promise<StoredRecord | undefined> => {
  const result =
    await sql<RawRow>`select ${columns} from records where ${inScope(scope)} and external_id = ${externalId}`.execute(
      k,
    );
  const row = result.rows[0];
  return row === undefined ? undefined : toStored(row);
};

/** One record by the host application's id, deleted or not. */
export const getRecordByLocalId = async (
  k: Kysely<DB>,
  scope: RecordScope,
  localId: string,
): Promise<StoredRecord | undefined> => {
  const result =
    await sql<RawRow>`select ${columns} from records where ${inScope(scope)} and local_id = ${localId}`.execute(k);
  const row = result.rows[0];
  return row === undefined ? undefined : toStored(row);
};

/** How many live (not deleted) records the scope holds. */
export const countLive = async (k: Kysely<DB>, scope: RecordScope): Promise<number> => {
  const result = await sql<{
    n: string;
  }>`select count(*)::text as n from records where ${inScope(scope)} and deleted_at is null`.execute(k);
  return Number(result.rows[0]?.n ?? 0);
};

/** Counts by state, and the last sync. */
export const summarize = async (k: Kysely<DB>, scope: RecordScope): Promise<RecordSummary> => {
  const result = await sql<{
    live: string;
    deleted: string;
    pending: string;
    failed: string;
    conflict: string;
    last: unknown;
  }>`
            select
              count(*) filter (where deleted_at is null)::text as live,
              count(*) filter (where deleted_at is not null)::text as deleted,
              count(*) filter (where deleted_at is null and sync_status = 'pending')::text as pending,
              count(*) filter (where deleted_at is null and sync_status = 'failed')::text as failed,
              count(*) filter (where deleted_at is null and sync_status = 'conflict')::text as conflict,
              max(last_synced_at) as last
            from records where ${inScope(scope)}`.execute(k);
  const row = result.rows[0];
  return {
    live: Number(row?.live ?? 0),
    deleted: Number(row?.deleted ?? 0),
    pending: Number(row?.pending ?? 0),
    failed: Number(row?.failed ?? 0),
    conflict: Number(row?.conflict ?? 0),
    lastSyncedAt: asDate(row?.last),
  };
};

/** Live records with unpushed local changes, oldest change first; 500 unless told. */
export const pendingRecords = async (
  k: Kysely<DB>,
  scope: RecordScope,
  options: { readonly limit?: number } = {},
): Promise<ReadonlyArray<StoredRecord>> => {
  const result = await sql<RawRow>`select ${columns} from records
            where ${inScope(scope)} and sync_status = 'pending' and deleted_at is null
            order by local_updated_at, external_id limit ${options.limit ?? 500}`.execute(k);
  return result.rows.map(toStored);
};

/** What initial matching starts from (see sync/matching/). */
export interface MatchingState {
  /** Records created locally and not yet at the vendor (provisional id), pending, not deleted. */
  readonly localOnly: ReadonlyArray<StoredRecord>;
  /** Vendor ids the scope has stored (pulled, or created by us). */
  readonly storedIds: ReadonlySet<string>;
  /** Of those, the ones a host id is attached to already: never a candidate for another. */
  readonly linkedIds: ReadonlySet<string>;
}

export const matchingState = async (k: Kysely<DB>, scope: RecordScope): Promise<MatchingState> => {
  const local = await sql<RawRow>`select ${columns} from records
            where ${inScope(scope)} and external_id_provisional and sync_status = 'pending' and deleted_at is null
            order by local_updated_at, external_id`.execute(k);
  const stored = await sql<{ external_id: string; linked: boolean }>`
            select external_id, local_id is not null as linked from records
            where ${inScope(scope)} and not external_id_provisional`.execute(k);
  return {
    localOnly: local.rows.map(toStored),
    storedIds: new Set(stored.rows.map((r) => r.external_id)),
    linkedIds: new Set(stored.rows.filter((r) => r.linked).map((r) => r.external_id)),
  };
};

/** Up to `limit` records of the scope after `after` in external id order (a page of `RecordExport`). */
export const recordsById = async (
  k: Kysely<DB>,
  scope: RecordScope,
  options: { readonly after: string | undefined; readonly limit: number; readonly includeDeleted: boolean },
): Promise<ReadonlyArray<StoredRecord>> => {
  const result = await sql<RawRow>`select ${columns} from records
              where ${inScope(scope)} ${options.includeDeleted ? sql`` : sql`and deleted_at is null`}
                ${options.after === undefined ? sql`` : sql`and external_id > ${options.after}`}
              order by external_id limit ${options.limit}`.execute(k);
  return result.rows.map(toStored);
};

/**
 * How many of the scope's records were deleted after `since`, counting no further than `cap`
 * (the mass-deletion guard's window: it needs to know whether the count passed its limit, and
 * after a large reconciliation it would otherwise count every deletion again on each webhook).
 * The partial index of deleted records answers it without reading live ones.
 */
export const countDeletedSince = async (
  k: Kysely<DB>,
  scope: RecordScope,
  since: Date,
  cap: number,
): Promise<number> => {
  const result = await sql<{ n: string }>`select count(*)::text as n from (select 1 from records
            where ${inScope(scope)} and deleted_at is not null and deleted_at > ${since.toISOString()}::timestamptz
            limit ${cap}) as recent`.execute(k);
  return Number(result.rows[0]?.n ?? 0);
};

/** How many records `where` (a condition over `records`) selects. */
export const countWhere = async (k: Kysely<DB>, where: RawBuilder<unknown>): Promise<number> => {
  const result = await sql<{ n: string }>`select count(*)::text as n from records where ${where}`.execute(k);
  return Number(result.rows[0]?.n ?? 0);
};

/** The external ids of the records `where` (a condition over `records`) selects. */
export const idsWhere = async (k: Kysely<DB>, where: RawBuilder<unknown>): Promise<ReadonlyArray<string>> => {
  const result = await sql<{ external_id: string }>`select external_id from records where ${where}`.execute(k);
  return result.rows.map((r) => r.external_id);
};
