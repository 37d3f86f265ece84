import { type Kysely, type RawBuilder, sql } from "kysely";
import type { DB, JobAttemptOutcome, JobAttemptRow, JobRow, JobStatus, StoredJobError } from "../db/schema.ts";
import { errorClassOf, type SyncRunStatus } from "../ops/RunHistory.ts";
import { closeRunsOfEndedJobs } from "../ops/RunRows.ts";
import { deleteTicksBefore } from "./ScheduleStore.ts";

/**
 * The queue's statements, as plain functions over Kysely: the one module that writes `jobs` and
 * `job_attempts`. Others that must write a job inside a statement of their own (the webhook
 * intake) compose the fragment it exports (`insertJobsSelecting`). Every state change of a
 * leased job is one statement that checks the fencing token in its WHERE and logs the attempt
 * in the same statement (a data-modifying CTE), so the history can never disagree with the job row.
 */

/** A job as a worker holds it after a claim. */
export interface ClaimedRow {
  readonly id: string;
  readonly kind: string;
  readonly payload: unknown;
  readonly priority: number;
  readonly attempts: number;
  readonly max_attempts: number;
  readonly infrastructure_faults: number;
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
    returning j.id, j.kind, j.payload, j.priority, j.attempts, j.max_attempts, j.infrastructure_faults,
      j.lease_token::text as lease_token,
      j.tenant_id, j.connection_id, j.dedupe_key`.execute(db);
  return rows;
};

/** A job to insert, as `enqueueMany` prepares it. */
export interface NewJob {
  readonly id: string;
  readonly kind: string;
  /** Any JSON value. */
  readonly payload: unknown;
  readonly priority: number;
  readonly tenant_id: string | null;
  readonly connection_id: string | null;
  readonly run_at: Date;
  readonly max_attempts: number;
  readonly created_at: Date;
}

/**
 * Inserts jobs in one statement, the rows travelling as one jsonb parameter: no bind-parameter
 * limit, and one short statement for the server to parse and plan instead of a VALUES list of
 * eleven parameters per row.
 */
export const insertMany = async (db: Kysely<DB>, jobs: ReadonlyArray<NewJob>): Promise<void> => {
  if (jobs.length === 0) return;
  const rows = json(
    jobs.map((j) => ({
      ...j,
      payload: j.payload ?? {},
      run_at: j.run_at.toISOString(),
      created_at: j.created_at.toISOString(),
    })),
  );
  await sql`
    insert into jobs (id, kind, payload, priority, tenant_id, connection_id, run_at, max_attempts, created_at, updated_at)
    select id, kind, payload, priority, tenant_id, connection_id, run_at, max_attempts, created_at, created_at
    from jsonb_to_recordset(${rows}::jsonb) as i(id uuid, kind text, payload jsonb, priority smallint,
      tenant_id uuid, connection_id uuid, run_at timestamptz, max_attempts integer, created_at timestamptz)`.execute(
    db,
  );
};

/** A job to insert unless a live job holds its dedupe key (`enqueue`, a schedule's tick). */
export interface NewKeyedJob extends Omit<NewJob, "max_attempts"> {
  /** Null: the column's default. */
  readonly max_attempts: number | null;
  readonly dedupe_key: string | null;
}

/**
 * Inserts a job unless a queued or running job holds its dedupe key; answers its id, or
 * undefined when the key is held. ON CONFLICT rather than a caught violation: inside a caller's
 * transaction, an error would abort the whole transaction on PostgreSQL.
 */
export const insertUnlessKeyHeld = async (db: Kysely<DB>, job: NewKeyedJob): Promise<string | undefined> => {
  const { max_attempts, ...columns } = job;
  const inserted = await db
    .insertInto("jobs")
    .values({
      ...columns,
      payload: json(job.payload ?? {}) ?? "{}",
      ...(max_attempts !== null ? { max_attempts } : {}),
      updated_at: job.created_at,
    })
    .onConflict((oc) => oc.column("dedupe_key").where("status", "in", ["queued", "running"]).doNothing())
    .returning("id")
    .executeTakeFirst();
  return inserted?.id;
};

/**
 * The columns of the jobs `insertJobsSelecting` inserts: the queue's own (kind, priority,
 * attempts, times, as `JobQueue.prepare` builds them) as parameters, the per-row ones as
 * expressions over the caller's FROM.
 */
export interface JobsSelected {
  readonly job: NewJob;
  /** The payload of each job, an expression over `from`. */
  readonly payload: RawBuilder<unknown>;
  readonly tenantId: RawBuilder<unknown>;
  readonly connectionId: RawBuilder<unknown>;
  /** The FROM clause (with any GROUP BY) the rows come from. */
  readonly from: RawBuilder<unknown>;
}

/**
 * A data-modifying CTE body that inserts one job per row of a caller's query, for a statement
 * that must store jobs together with rows of its own: the webhook intake stores a delivery's
 * events and its job in one statement (an event is never stored without its job). The caller
 * wakes workers once it is committed (`JobQueue.nudge`).
 */
export const insertJobsSelecting = (s: JobsSelected): RawBuilder<unknown> => sql`
                insert into jobs (id, kind, payload, priority, tenant_id, connection_id, run_at, max_attempts, created_at, updated_at)
                select gen_random_uuid(), ${s.job.kind},
                  ${s.payload},
                  ${s.job.priority}, ${s.tenantId}, ${s.connectionId}, ${s.job.run_at}, ${s.job.max_attempts},
                  ${s.job.created_at}, ${s.job.created_at}
                ${s.from}
                returning 1`;

/** Which queued job `holdQueued` looks for. */
export interface QueuedJobMatch {
  readonly kind: string;
  readonly connectionId: string;
  /** The job's payload holds these keys and values (jsonb containment). */
  readonly payload: Record<string, unknown>;
  /** Due by then at the latest. */
  readonly runAtOrBefore: Date;
  /** At this priority or a higher one (a lower number). */
  readonly priorityAtMost: number;
}

/**
 * A queued job that will run by `runAtOrBefore`, share-locked until the caller's transaction
 * ends: the claim's `FOR UPDATE SKIP LOCKED` passes it by until then, so the job cannot start
 * before the rows the caller writes for it are committed, and a job being claimed right now
 * (row-locked by its claimer) is not answered. Concurrent holders do not wait for each other.
 */
export const holdQueued = async (db: Kysely<DB>, m: QueuedJobMatch): Promise<string | undefined> => {
  const { rows } = await sql<{ id: string }>`
    select id from jobs
    where status = 'queued' and connection_id = ${m.connectionId}::uuid and kind = ${m.kind}
      and run_at <= ${m.runAtOrBefore.toISOString()}::timestamptz and priority <= ${m.priorityAtMost}
      and payload @> ${json(m.payload)}::jsonb
    order by run_at limit 1
    for share skip locked`.execute(db);
  return rows[0]?.id;
};

/** The live (queued or running) job holding a dedupe key, if any. */
export const findLive = (db: Kysely<DB>, key: string): Promise<{ readonly id: string } | undefined> =>
  db
    .selectFrom("jobs")
    .select("id")
    .where("dedupe_key", "=", key)
    .where("status", "in", ["queued", "running"])
    .executeTakeFirst();

/** A job by id; with `tenantId`, only that tenant's. */
export const byId = (db: Kysely<DB>, id: string, tenantId?: string): Promise<JobRow | undefined> =>
  db
    .selectFrom("jobs")
    .selectAll()
    .where("id", "=", id)
    .$if(tenantId !== undefined, (q) => q.where("tenant_id", "=", tenantId!))
    .executeTakeFirst();

/** Which jobs `list` returns (newest first, at most `limit`, default 100). */
export interface JobListFilter {
  readonly status?: JobStatus | undefined;
  readonly kind?: string | undefined;
  readonly tenantId?: string | undefined;
  readonly connectionId?: string | undefined;
  readonly limit?: number | undefined;
}

/** Jobs matching the filter, newest first. */
export const list = (db: Kysely<DB>, filter: JobListFilter): Promise<ReadonlyArray<JobRow>> =>
  db
    .selectFrom("jobs")
    .selectAll()
    .$if(filter.status !== undefined, (q) => q.where("status", "=", filter.status!))
    .$if(filter.kind !== undefined, (q) => q.where("kind", "=", filter.kind!))
    .$if(filter.tenantId !== undefined, (q) => q.where("tenant_id", "=", filter.tenantId!))
    .$if(filter.connectionId !== undefined, (q) => q.where("connection_id", "=", filter.connectionId!))
    .orderBy("created_at", "desc")
    .orderBy("id")
    .limit(filter.limit ?? 100)
    .execute();

/** Jobs per status, of the jobs matching the filter. */
export const countByStatus = async (
  db: Kysely<DB>,
  filter: Omit<JobListFilter, "status" | "limit">,
): Promise<Record<JobStatus, number>> => {
  const rows = await db
    .selectFrom("jobs")
    .select(["status", (eb) => eb.fn.countAll<string>().as("n")])
    .$if(filter.kind !== undefined, (q) => q.where("kind", "=", filter.kind!))
    .$if(filter.tenantId !== undefined, (q) => q.where("tenant_id", "=", filter.tenantId!))
    .$if(filter.connectionId !== undefined, (q) => q.where("connection_id", "=", filter.connectionId!))
    .groupBy("status")
    .execute();
  const result: Record<JobStatus, number> = { queued: 0, running: 0, completed: 0, dead: 0, cancelled: 0 };
  for (const r of rows) result[r.status] = Number(r.n);
  return result;
};

/** A job's attempts, oldest first. */
export const attemptsOf = (db: Kysely<DB>, id: string): Promise<ReadonlyArray<JobAttemptRow>> =>
  db.selectFrom("job_attempts").selectAll().where("job_id", "=", id).orderBy("id").execute();

/** Cancels the job if it is queued. */
export const cancelQueued = async (db: Kysely<DB>, id: string, now: Date): Promise<void> => {
  await db
    .updateTable("jobs")
    .set({ status: "cancelled", finished_at: now, updated_at: now })
    .where("id", "=", id)
    .where("status", "=", "queued")
    .execute();
};

/** Flags the job for cancellation if it is running: its worker stops it at the next heartbeat. */
export const requestCancel = async (db: Kysely<DB>, id: string, now: Date): Promise<void> => {
  await db
    .updateTable("jobs")
    .set({ cancel_requested: true, updated_at: now })
    .where("id", "=", id)
    .where("status", "=", "running")
    .execute();
};

/**
 * Sends a dead job back to the queue with a fresh set of attempts; answers the row as the
 * update left it (none if it was not dead). A live job holding its dedupe key fails it with
 * the `jobs_dedupe` constraint.
 */
export const requeueDead = async (db: Kysely<DB>, id: string, now: Date): Promise<JobRow | undefined> => {
  const [row] = await db
    .updateTable("jobs")
    .set({ status: "queued", attempts: 0, infrastructure_faults: 0, run_at: now, finished_at: null, updated_at: now })
    .where("id", "=", id)
    .where("status", "=", "dead")
    .returningAll()
    .execute();
  return row;
};

/** Deletes a dead job (its attempts go with it). */
export const deleteDead = async (db: Kysely<DB>, id: string): Promise<void> => {
  await db.deleteFrom("jobs").where("id", "=", id).where("status", "=", "dead").execute();
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
  | {
      readonly _tag: "Retry";
      readonly error: StoredJobError;
      readonly runAt: Date;
      /**
       * An infrastructure fault (RetryPolicy's `RetryUncounted`): the attempt is handed back
       * uncounted and counted in `infrastructure_faults` instead.
       */
      readonly infrastructure?: boolean;
    }
  | { readonly _tag: "Dead"; readonly error: StoredJobError }
  | { readonly _tag: "Cancelled" }
  | { readonly _tag: "Released" };

/**
 * JSON for a jsonb column, or null when the value has none. PostgreSQL's jsonb cannot hold
 * the NUL character, which JSON.stringify writes as `\u0000`: it becomes U+FFFD rather than
 * failing the statement (and, in a batch, every settlement in it). An escaped backslash
 * before `u0000` is left alone: that is the text "\u0000", not a NUL.
 */
export const json = (value: unknown): string | null => {
  if (value === undefined) return null;
  try {
    const text = JSON.stringify(value);
    return text === undefined ? null : text.replace(/(?<!\\)((?:\\\\)*)\\u0000/g, "$1\\ufffd");
  } catch {
    return null;
  }
};

/** The columns a settlement writes, as one row of the batch statement's input. */
interface SettlementRow {
  readonly id: string;
  readonly lease_token: string;
  readonly status: "queued" | "completed" | "dead" | "cancelled";
  /** A new `run_at` (retry backoff, release); null keeps it. */
  readonly run_at: string | null;
  /** Completed only: the handler's result. */
  readonly result: unknown;
  /** Retry and Dead: the error, kept as `last_error` and in the attempt's history. */
  readonly error: unknown;
  readonly finished: boolean;
  /** Released, or an infrastructure fault: the attempt is handed back, not counted. */
  readonly uncounted: boolean;
  /** An infrastructure fault, counted in `infrastructure_faults`. */
  readonly infrastructure: boolean;
  readonly outcome: JobAttemptOutcome;
  /** How the job's sync runs still `running` end with this attempt (see closeRunsOfEndedJobs). */
  readonly run_status: SyncRunStatus;
  readonly run_error_type: string | null;
  readonly run_error_message: string | null;
}

const settlementRow = (h: SettlementOf, now: Date): SettlementRow => {
  const s = h.settlement;
  const base = {
    id: h.id,
    lease_token: h.leaseToken,
    result: null,
    error: null,
    uncounted: false,
    infrastructure: false,
    run_error_type: null,
    run_error_message: null,
  };
  const failedRun = (error: StoredJobError) => ({
    run_status: "failed" as const,
    run_error_type: errorClassOf(error.tag),
    run_error_message: `${error.tag}: ${error.message}`.slice(0, 2_000),
  });
  switch (s._tag) {
    case "Completed":
      return {
        ...base,
        status: "completed",
        run_at: null,
        result: s.result ?? null,
        finished: true,
        outcome: "completed",
        run_status: "succeeded",
      };
    case "Retry":
      return {
        ...base,
        status: "queued",
        run_at: s.runAt.toISOString(),
        error: s.error,
        finished: false,
        uncounted: s.infrastructure === true,
        infrastructure: s.infrastructure === true,
        outcome: "failed",
        ...failedRun(s.error),
      };
    case "Dead":
      return {
        ...base,
        status: "dead",
        run_at: null,
        error: s.error,
        finished: true,
        outcome: "failed",
        ...failedRun(s.error),
      };
    case "Cancelled":
      return {
        ...base,
        status: "cancelled",
        run_at: null,
        finished: true,
        outcome: "cancelled",
        run_status: "cancelled",
        run_error_message: "the job was cancelled",
      };
    case "Released":
      // Shutdown hands the job back untouched: the attempt did not fail, so it is not counted.
      return {
        ...base,
        status: "queued",
        run_at: now.toISOString(),
        finished: false,
        uncounted: true,
        outcome: "released",
        run_status: "cancelled",
        run_error_message: "released unfinished at its worker's shutdown; the job runs again",
      };
  }
};

/** One held job's attempt and how it ends. */
export interface SettlementOf {
  readonly id: string;
  readonly leaseToken: string;
  readonly settlement: Settlement;
}

/**
 * Ends many attempts in one statement (a worker's settlements, grouped): each job changes
 * if (and only if) its row still carries that attempt's lease token, and each change is
 * logged in `job_attempts` by the same statement, and its sync runs still `running` are closed
 * (closeRunsOfEndedJobs): a run never outlives its attempt. Answers the ids that were settled;
 * a job missing from the answer had lost its lease (someone else holds or reaped it).
 *
 * The rows travel as one jsonb parameter, so the statement's text is the same for any batch
 * size: one prepared shape, no parameter limit.
 */
export const settleMany = async (
  db: Kysely<DB>,
  worker: string,
  batch: ReadonlyArray<SettlementOf>,
  now: Date,
): Promise<ReadonlySet<string>> => {
  if (batch.length === 0) return new Set();
  const rows = json(batch.map((h) => settlementRow(h, now)));
  const { rows: settled } = await sql<{ id: string }>`
    with input as (
      select * from jsonb_to_recordset(${rows}::jsonb) as i(
        id uuid, lease_token bigint, status text, run_at timestamptz, result jsonb,
        error jsonb, finished boolean, uncounted boolean, infrastructure boolean, outcome text,
        run_status text, run_error_type text, run_error_message text)
    ), done as (
      update jobs j set
        status = i.status,
        run_at = coalesce(i.run_at, j.run_at),
        result = case when i.status = 'completed' then i.result else j.result end,
        last_error = case when i.outcome = 'failed' then i.error else j.last_error end,
        finished_at = case when i.finished then ${now}::timestamptz else j.finished_at end,
        attempts = case when i.uncounted then greatest(j.attempts - 1, 0) else j.attempts end,
        infrastructure_faults = j.infrastructure_faults + (case when i.infrastructure then 1 else 0 end),
        locked_by = null, locked_until = null, cancel_requested = false, updated_at = ${now}
      from input i
      where j.id = i.id and j.lease_token = i.lease_token and j.status = 'running'
      returning j.id, j.lease_token, j.started_at, i.outcome, i.error,
        j.attempts + (case when i.uncounted then 1 else 0 end) as attempt,
        i.run_status, i.run_error_type, i.run_error_message
    ), logged as (
      insert into job_attempts (job_id, attempt, lease_token, worker, outcome, error, started_at, finished_at)
      select id, attempt, lease_token, ${worker}, outcome, error, started_at, ${now} from done
    ), runs_closed as (${closeRunsOfEndedJobs("done", now)})
    select id from done`.execute(db);
  return new Set(settled.map((r) => r.id));
};

/** A job the reaper took back, and what became of it. */
export interface ReapedJob {
  readonly id: string;
  readonly kind: string;
  readonly status: Extract<JobStatus, "queued" | "dead" | "cancelled">;
  /** The attempt whose lease expired. */
  readonly attempt: number;
  readonly infrastructure_faults: number;
  /** The worker that held it. */
  readonly worker: string;
}

/**
 * Takes back jobs whose lease expired (their process died or lost the database). That is an
 * infrastructure fault, not the job's (RetryPolicy's `infrastructureTags`): the attempt is
 * handed back uncounted and counted in `infrastructure_faults`; the job is requeued at once, or
 * dead once `maxInfrastructureFaults` of them are spent, or cancelled when that was asked. Its
 * sync runs still `running` are closed as failed (closeRunsOfEndedJobs).
 */
export const reapExpired = async (
  db: Kysely<DB>,
  now: Date,
  maxInfrastructureFaults: number,
  limit = 500,
): Promise<ReadonlyArray<ReapedJob>> => {
  const error = json({ tag: "LeaseExpired", message: "the worker holding the job stopped renewing its lease" });
  const runMessage =
    "LeaseExpired: interrupted; the worker running it stopped renewing its lease (died or lost the database)";
  const { rows } = await sql<ReapedJob>`
    with expired as (
      select id, locked_by from jobs
      where status = 'running' and locked_until < ${now}
      order by locked_until
      limit ${limit}
      for update skip locked
    ), reaped as (
      update jobs j set
        status = case when j.cancel_requested then 'cancelled'
                      when j.infrastructure_faults >= ${maxInfrastructureFaults} then 'dead' else 'queued' end,
        finished_at = case when j.cancel_requested or j.infrastructure_faults >= ${maxInfrastructureFaults}
                      then ${now}::timestamptz end,
        attempts = case when j.cancel_requested or j.infrastructure_faults >= ${maxInfrastructureFaults}
                   then j.attempts else greatest(j.attempts - 1, 0) end,
        infrastructure_faults = j.infrastructure_faults + 1,
        run_at = ${now}, locked_by = null, locked_until = null, last_error = ${error}::jsonb, updated_at = ${now}
      from expired e where j.id = e.id
      returning j.id, j.kind, j.status, j.attempts + (case when j.status = 'queued' then 1 else 0 end) as attempt,
        j.infrastructure_faults, j.lease_token, j.started_at, coalesce(e.locked_by, '') as worker,
        case when j.status = 'cancelled' then 'cancelled' else 'failed' end as run_status,
        case when j.status = 'cancelled' then null else 'system' end as run_error_type,
        ${runMessage}::text as run_error_message
    ), logged as (
      insert into job_attempts (job_id, attempt, lease_token, worker, outcome, error, started_at, finished_at)
      select id, attempt, lease_token, worker, 'lease_expired', ${error}::jsonb, started_at, ${now}
      from reaped
    ), runs_closed as (${closeRunsOfEndedJobs("reaped", now)})
    select id, kind, status, attempt, infrastructure_faults, worker from reaped`.execute(db);
  return rows;
};

/**
 * Deletes finished (completed or cancelled) jobs older than `before`, a batch at a time,
 * and, in the same statement, schedule ticks as old (ScheduleStore's fragment: a schedule's own
 * row remembers its last tick).
 */
export const prune = async (db: Kysely<DB>, before: Date, limit = 1_000): Promise<number> => {
  const { rows } = await sql<{ n: number }>`
    with ticks as (${deleteTicksBefore(before)}), gone as (
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
