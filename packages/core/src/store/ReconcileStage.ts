import { type Kysely, sql } from "kysely";
import type { DB } from "../db/schema.ts";
import { inScope, softDeleteWhere } from "./RecordRows.ts";
import type { RecordScope } from "./RecordStore.ts";

/**
 * The owner of the `reconcile_ids` table: a reconciliation run stages every id the remote still
 * has, then compares the stage with the stored records (what vanished, what is missing). Plain
 * functions over Kysely; `at` is the statement's time (ISO). Deleting what vanished is a write of
 * `records`, so it goes through its owner (`softDeleteWhere`) with this module's condition.
 */

/**
 * One page of remote ids as a run stages it, in parallel arrays: `updatedAtMs[i]` is the
 * modification time (epoch ms) the remote listed with `externalIds[i]`, or null. Columns rather
 * than one object per id: at a million ids the objects and their ISO strings were a measurable
 * part of staging, and the database reads a number faster than a timestamp's text.
 */
export interface StagedPage {
  readonly externalIds: ReadonlyArray<string>;
  readonly updatedAtMs: ReadonlyArray<number | null>;
}

/** Adds remote ids of run `runId` to the stage (one statement; none for no ids). */
export const stageIds = async (k: Kysely<DB>, at: string, runId: string, page: StagedPage): Promise<void> => {
  if (page.externalIds.length === 0) return;
  // Epoch milliseconds to timestamptz: to_timestamp rounds to the microsecond, so a whole number
  // of milliseconds arrives exact.
  await sql`insert into reconcile_ids (run_id, external_id, remote_updated_at, staged_at)
            select ${runId}::uuid, s.id, to_timestamp(s.ms / 1000.0), ${at}::timestamptz
            from unnest(${page.externalIds}::text[], ${page.updatedAtMs}::float8[]) as s(id, ms)
            on conflict do nothing`.execute(k);
};

/** Refreshes the planner's statistics of the stage and of the records (see `RecordStoreService.analyzeStage`). */
export const analyzeStage = async (k: Kysely<DB>): Promise<void> => {
  await sql`analyze reconcile_ids`.execute(k);
  await sql`analyze records`.execute(k);
};

/** Live records of the scope whose id the run did not stage: a condition over `records`. */
// A record created locally and not yet pushed is not at the vendor yet: it has not vanished.
export const vanishedWhere = (scope: RecordScope, runId: string) => sql`
        ${inScope(scope)} and deleted_at is null and not external_id_provisional
        and not exists (select 1 from reconcile_ids s where s.run_id = ${runId}::uuid and s.external_id = records.external_id)`;

/** The vanished records with an unpushed local edit (the delete-against-edit rule settles them first). */
export const vanishedWithEdits = async (
  k: Kysely<DB>,
  scope: RecordScope,
  runId: string,
): Promise<ReadonlyArray<string>> => {
  const result = await sql<{ external_id: string }>`select external_id from records
            where ${vanishedWhere(scope, runId)} and sync_status = 'pending' and pending_changes is not null`.execute(
    k,
  );
  return result.rows.map((r) => r.external_id);
};

/** How many live records the run did not stage, and the first ten of them by id. */
export const vanished = async (
  k: Kysely<DB>,
  scope: RecordScope,
  runId: string,
): Promise<{ readonly count: number; readonly sample: ReadonlyArray<string> }> => {
  const result = await sql<{ n: string; sample: Array<string> | null }>`
            select count(*)::text as n, (array_agg(external_id order by external_id))[1:10] as sample
            from records where ${vanishedWhere(scope, runId)}`.execute(k);
  return { count: Number(result.rows[0]?.n ?? 0), sample: result.rows[0]?.sample ?? [] };
};

/** Soft-deletes every live record the run did not stage; answers how many. */
export const deleteVanished = (k: Kysely<DB>, at: string, scope: RecordScope, runId: string): Promise<number> =>
  softDeleteWhere(k, vanishedWhere(scope, runId), at);

/** Staged ids with no live stored record, after `after` in id order. */
export const missingIds = async (
  k: Kysely<DB>,
  scope: RecordScope,
  runId: string,
  options: { readonly after?: string | undefined; readonly limit: number },
): Promise<ReadonlyArray<string>> => {
  const result = await sql<{ external_id: string }>`
            select s.external_id from reconcile_ids s
            where s.run_id = ${runId}::uuid ${options.after === undefined ? sql`` : sql`and s.external_id > ${options.after}`}
              and not exists (select 1 from records r where r.connection_id = ${scope.connectionId}::uuid
                and r.entity = ${scope.entity} and r.external_id = s.external_id and r.deleted_at is null)
            order by s.external_id limit ${options.limit}`.execute(k);
  return result.rows.map((r) => r.external_id);
};

/**
 * Staged ids whose live stored record is older than the time the remote listed (or holds no
 * time): updates every delta missed. After `after` in id order; ids staged without a time are
 * never drifted. A merge of the stage with the records in key order, like `missingIds`.
 */
export const driftedIds = async (
  k: Kysely<DB>,
  scope: RecordScope,
  runId: string,
  options: { readonly after?: string | undefined; readonly limit: number },
): Promise<ReadonlyArray<string>> => {
  const result = await sql<{ external_id: string }>`
            select s.external_id from reconcile_ids s
            join records r on r.connection_id = ${scope.connectionId}::uuid and r.entity = ${scope.entity}
              and r.external_id = s.external_id and r.deleted_at is null
            where s.run_id = ${runId}::uuid ${options.after === undefined ? sql`` : sql`and s.external_id > ${options.after}`}
              and s.remote_updated_at is not null
              and (r.remote_updated_at is null or s.remote_updated_at > r.remote_updated_at)
            order by s.external_id limit ${options.limit}`.execute(k);
  return result.rows.map((r) => r.external_id);
};

/** Removes the stage of one run. */
export const clearStage = async (k: Kysely<DB>, runId: string): Promise<void> => {
  await k.deleteFrom("reconcile_ids").where("run_id", "=", runId).execute();
};

/** Removes ids staged before `before` by runs that crashed before cleaning up. */
export const clearStaleStages = async (k: Kysely<DB>, before: Date): Promise<void> => {
  await k.deleteFrom("reconcile_ids").where("staged_at", "<", before).execute();
};
