import { type Kysely, type RawBuilder, sql } from "kysely";
import type { DB, JobAttemptOutcome, StoredJobError } from "../db/schema.ts";

/**
 * The queue's statements, as plain functions over Kysely. Every state change of a
 * leased job is one statement that checks the fencing token in its WHERE and logs
 * the attempt in the same statement (a data-modifying CTE), so the history can never
 * disagree with the job row.
 */

/** A job as a worker holds it after a claim. */
export interface ClaimedRow {
  readonly id: string;
  readonly kind: string;
  readonly payload: unknown;
  readonly priority: number;
  readonly attempts: number;
  readonly max_attempts: number;
  readonly lease_token: string;
  readonly tenant_id: string | null;
  readonly connection_id: string | null;
  readonly dedupe_key: string | null;
}

export interface ClaimOptions {
  readonly worker: string;
  readonly kinds: ReadonlyArray<string>;
  readonly limit: number;
  readonly perConnection: number;
  readonly now: Date;
  readonly lockedUntil: Date;
}

/**
 * Claims up to `limit` due jobs in one statement: `FOR UPDATE SKIP LOCKED` picks rows
 * no other claimer holds, highest priority first; the window keeps at most
 * `perConnection` jobs of one connection running (counting those already running).
 * Concurrent claimers cannot see each other's uncommitted claims, so the
 * per-connection bound can be exceeded by at most one batch per racing process.
 */
export const claim = async (db: Kysely<DB>, o: ClaimOptions): Promise<ReadonlyArray<ClaimedRow>> => {
  if (o.kinds.length === 0 || o.limit <= 0) return [];
  const { rows } = await sql<ClaimedRow>`
    with candidates as (
      select id, connection_id, priority, run_at from jobs
      where status = 'queued' and run_at <= ${o.now} and kind in (${sql.join(o.kinds)})
      order by priority, run_at, id
      limit ${o.limit * 4}
      for update skip locked
    ), ranked as (
      select c.id, c.priority, c.run_at, c.connection_id,
        row_number() over (partition by c.connection_id order by c.priority, c.run_at, c.id) as rn
      from candidates c
    ), chosen as (
      select r.id from ranked r
      where r.connection_id is null
        or r.rn + (select count(*) from jobs x where x.connection_id = r.connection_id and x.status = 'running')
          <= ${o.perConnection}
      order by r.priority, r.run_at, r.id
      limit ${o.limit}
    )
    update jobs j set status = 'running', locked_by = ${o.worker}, locked_until = ${o.lockedUntil},
      attempts = j.attempts + 1, lease_token = j.lease_token + 1, started_at = ${o.now}, updated_at = ${o.now}
    from chosen where j.id = chosen.id
    returning j.id, j.kind, j.payload, j.priority, j.attempts, j.max_attempts, j.lease_token::text as lease_token,
      j.tenant_id, j.connection_id, j.dedupe_key`.execute(db);
  return rows;
};

/** Extends the leases of the given jobs in one statement; answers the ones still held. */
export const heartbeat = async (
  db: Kysely<DB>,
  o: { readonly worker: string; readonly ids: ReadonlyArray<string>; readonly now: Date; readonly lockedUntil: Date },
): Promise<
  ReadonlyArray<{ readonly id: string; readonly lease_token: string; readonly cancel_requested: boolean }>
> => {
  if (o.ids.length === 0) return [];
  const { rows } = await sql<{ id: string; lease_token: string; cancel_requested: boolean }>`
    update jobs set locked_until = ${o.lockedUntil}, updated_at = ${o.now}
    where status = 'running' and locked_by = ${o.worker} and id in (${sql.join(o.ids)})
    returning id, lease_token::text as lease_token, cancel_requested`.execute(db);
  return rows;
};

/** How a held job's attempt ends. */
export type Settlement =
  | { readonly _tag: "Completed"; readonly result: unknown }
  | { readonly _tag: "Retry"; readonly error: StoredJobError; readonly runAt: Date }
  | { readonly _tag: "Dead"; readonly error: StoredJobError }
  | { readonly _tag: "Cancelled" }
  | { readonly _tag: "Released" };

const json = (value: unknown): string | null => {
  if (value === undefined) return null;
  try {
    return JSON.stringify(value) ?? null;
  } catch {
    return null;
  }
};

const transition = (s: Settlement, now: Date): { set: RawBuilder<unknown>; outcome: JobAttemptOutcome } => {
  switch (s._tag) {
    case "Completed":
      return {
        set: sql`status = 'completed', result = ${json(s.result)}::jsonb, finished_at = ${now}`,
        outcome: "completed",
      };
    case "Retry":
      return {
        set: sql`status = 'queued', run_at = ${s.runAt}, last_error = ${json(s.error)}::jsonb`,
        outcome: "failed",
      };
    case "Dead":
      return {
        set: sql`status = 'dead', last_error = ${json(s.error)}::jsonb, finished_at = ${now}`,
        outcome: "failed",
      };
    case "Cancelled":
      return { set: sql`status = 'cancelled', finished_at = ${now}`, outcome: "cancelled" };
    case "Released":
      // Shutdown hands the job back untouched: the attempt did not fail, so it is not counted.
      return {
        set: sql`status = 'queued', run_at = ${now}, attempts = greatest(attempts - 1, 0)`,
        outcome: "released",
      };
  }
};

/**
 * Ends the attempt `leaseToken` of a job, if (and only if) it is still that attempt's
 * lease: a process whose lease expired gets `false` and changes nothing.
 */
export const settle = async (
  db: Kysely<DB>,
  o: { readonly id: string; readonly leaseToken: string; readonly worker: string; readonly now: Date },
  s: Settlement,
): Promise<boolean> => {
  const { set, outcome } = transition(s, o.now);
  const error = s._tag === "Retry" || s._tag === "Dead" ? json(s.error) : null;
  const { rows } = await sql<{ n: number }>`
    with done as (
      update jobs set ${set}, locked_by = null, locked_until = null, cancel_requested = false, updated_at = ${o.now}
      where id = ${o.id} and lease_token = ${o.leaseToken}::bigint and status = 'running'
      returning id, lease_token, started_at,
        attempts + ${s._tag === "Released" ? 1 : 0}::int as attempt
    ), logged as (
      insert into job_attempts (job_id, attempt, lease_token, worker, outcome, error, started_at, finished_at)
      select id, attempt, lease_token, ${o.worker}, ${outcome}, ${error}::jsonb, started_at, ${o.now} from done
    )
    select count(*)::int as n from done`.execute(db);
  return (rows[0]?.n ?? 0) > 0;
};

/**
 * Takes back jobs whose lease expired (their process died or lost the database):
 * requeued, or dead when their attempts are spent, or cancelled when that was asked.
 */
export const reapExpired = async (db: Kysely<DB>, now: Date, limit = 500): Promise<number> => {
  const error = json({ tag: "LeaseExpired", message: "the worker holding the job stopped renewing its lease" });
  const { rows } = await sql<{ n: number }>`
    with expired as (
      select id, locked_by from jobs
      where status = 'running' and locked_until < ${now}
      order by locked_until
      limit ${limit}
      for update skip locked
    ), reaped as (
      update jobs j set
        status = case when j.cancel_requested then 'cancelled'
                      when j.attempts >= j.max_attempts then 'dead' else 'queued' end,
        finished_at = case when j.cancel_requested or j.attempts >= j.max_attempts then ${now}::timestamptz end,
        run_at = ${now}, locked_by = null, locked_until = null, last_error = ${error}::jsonb, updated_at = ${now}
      from expired e where j.id = e.id
      returning j.id, j.attempts, j.lease_token, j.started_at, e.locked_by
    ), logged as (
      insert into job_attempts (job_id, attempt, lease_token, worker, outcome, error, started_at, finished_at)
      select id, attempts, lease_token, coalesce(locked_by, ''), 'lease_expired', ${error}::jsonb, started_at, ${now}
      from reaped
    )
    select count(*)::int as n from reaped`.execute(db);
  return rows[0]?.n ?? 0;
};

/**
 * Deletes finished (completed or cancelled) jobs older than `before`, a batch at a time,
 * and schedule ticks as old (a schedule's own row remembers its last tick).
 */
export const prune = async (db: Kysely<DB>, before: Date, limit = 1_000): Promise<number> => {
  const { rows } = await sql<{ n: number }>`
    with ticks as (
      delete from schedule_ticks where created_at < ${before}
    ), gone as (
      delete from jobs where id in (
        select id from jobs where status in ('completed', 'cancelled') and finished_at < ${before} limit ${limit}
      ) returning id
    )
    select count(*)::int as n from gone`.execute(db);
  return rows[0]?.n ?? 0;
};

/** The planner's estimate of the table's rows (0 before its first ANALYZE). */
export const estimatedRows = async (db: Kysely<DB>): Promise<number> => {
  const { rows } = await sql<{ rows: number }>`
    select reltuples::float8 as rows from pg_class where oid = 'jobs'::regclass`.execute(db);
  return Math.max(0, Number(rows[0]?.rows ?? 0));
};

/** Refreshes the planner's statistics of the table. */
export const analyze = async (db: Kysely<DB>): Promise<void> => {
  await sql`analyze jobs`.execute(db);
};
