import { type Kysely, type Selectable, sql, type Updateable } from "kysely";
import type { DB, SyncRunsTable } from "../db/schema.ts";

/**
 * The owner of the `sync_runs` table (one row per attempt of a sync): plain functions over
 * Kysely, and `closeRunsOfEndedJobs`, the fragment the queue composes into its settling
 * statements.
 */

/**
 * The body of a data-modifying CTE that closes the sync runs still `running` of jobs whose
 * attempt just ended: `ended` names an earlier CTE of the statement with the columns `id` (the
 * job), `run_status`, `run_error_type` and `run_error_message`. The queue composes it into the
 * statement that settles or reaps the jobs, so that a run ends in the same transaction as its
 * attempt, also when the handler could not close it (interrupted, its process killed, the
 * database gone at that moment). A run the handler closed itself keeps its own outcome.
 */
export const closeRunsOfEndedJobs = (ended: string, at: Date) => sql`
  update sync_runs r set
    status = e.run_status,
    error_type = coalesce(r.error_type, e.run_error_type),
    error_message = coalesce(r.error_message, e.run_error_message),
    finished_at = ${at}::timestamptz,
    duration_ms = greatest(0, round(extract(epoch from (${at}::timestamptz - r.started_at)) * 1000))::int
  from ${sql.table(ended)} e
  where r.job_id = e.id and r.status = 'running'`;

/** A run as it starts. */
export interface NewRun {
  readonly id: string;
  readonly tenantId: string;
  readonly connectionId: string;
  readonly entity: string;
  readonly mode: string;
  readonly trigger: string;
  readonly jobId: string | null;
  readonly attempt: number;
}

export const insertRun = async (k: Kysely<DB>, at: Date, run: NewRun): Promise<void> => {
  await k
    .insertInto("sync_runs")
    .values({
      id: run.id,
      tenant_id: run.tenantId,
      connection_id: run.connectionId,
      entity: run.entity,
      mode: run.mode,
      trigger: run.trigger,
      job_id: run.jobId,
      attempt: run.attempt,
      status: "running",
      started_at: at,
    })
    .execute();
};

/** Changes a run still `running` (its progress); a finished run is left alone. */
export const updateRunning = async (
  k: Kysely<DB>,
  runId: string,
  changes: Updateable<SyncRunsTable>,
): Promise<void> => {
  await k.updateTable("sync_runs").set(changes).where("id", "=", runId).where("status", "=", "running").execute();
};

/** Ends a run still `running` at `at` with `changes` (its outcome), and its duration. */
export const finishRun = async (
  k: Kysely<DB>,
  at: Date,
  runId: string,
  changes: Updateable<SyncRunsTable>,
): Promise<void> => {
  await k
    .updateTable("sync_runs")
    .set({
      ...changes,
      finished_at: at,
      duration_ms: sql<number>`greatest(0, round(extract(epoch from (${at}::timestamptz - started_at)) * 1000))::int`,
    })
    .where("id", "=", runId)
    .where("status", "=", "running")
    .execute();
};

/** One run of the tenant. */
export const runOfTenant = (k: Kysely<DB>, tenantId: string, runId: string) =>
  k.selectFrom("sync_runs").selectAll().where("tenant_id", "=", tenantId).where("id", "=", runId).executeTakeFirst();

/** The runs of one job (one per attempt), oldest first. */
export const runsOfJob = (k: Kysely<DB>, jobId: string): Promise<ReadonlyArray<Selectable<SyncRunsTable>>> =>
  k.selectFrom("sync_runs").selectAll().where("job_id", "=", jobId).orderBy("attempt").orderBy("started_at").execute();
