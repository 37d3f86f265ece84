import { type Kysely, sql } from "kysely";

/**
 * The durable job queue, its attempt history (dead letters keep theirs), lock rows
 * with fencing tokens, and cron schedules with their ticks.
 *
 * Times in these tables are written by the processes from their Effect `Clock`
 * (not the server's `now()`), so leases, backoff and schedules follow one clock
 * that tests can drive with `TestClock`.
 */
export const up = async (db: Kysely<unknown>): Promise<void> => {
  await db.schema
    .createTable("jobs")
    .addColumn("id", "uuid", (c) => c.primaryKey())
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("payload", "jsonb", (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    // 0 webhook, 1 on-demand, 2 delta, 3 backfill: lower runs first.
    .addColumn("priority", "smallint", (c) => c.notNull().defaultTo(1))
    .addColumn("tenant_id", "uuid", (c) => c.references("tenants.id").onDelete("cascade"))
    .addColumn("connection_id", "uuid", (c) => c.references("connections.id").onDelete("cascade"))
    .addColumn("status", "text", (c) =>
      c.notNull().defaultTo("queued").check(sql`status in ('queued', 'running', 'completed', 'dead', 'cancelled')`),
    )
    .addColumn("run_at", "timestamptz", (c) => c.notNull())
    // Attempts used so far in this run of the job (reset by a dead-letter replay).
    .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("max_attempts", "integer", (c) => c.notNull().defaultTo(5))
    // Fencing token: bumped by every claim and never reset, so a holder whose lease
    // expired can never finish a job that someone else has claimed since.
    .addColumn("lease_token", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("locked_by", "text")
    .addColumn("locked_until", "timestamptz")
    .addColumn("dedupe_key", "text")
    .addColumn("cancel_requested", "boolean", (c) => c.notNull().defaultTo(false))
    .addColumn("last_error", "jsonb")
    .addColumn("result", "jsonb")
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addColumn("updated_at", "timestamptz", (c) => c.notNull())
    .addColumn("started_at", "timestamptz")
    .addColumn("finished_at", "timestamptz")
    .execute();
  // The claim scans queued jobs in priority order; running jobs are scanned by lease expiry.
  await sql`create index jobs_claim on jobs (priority, run_at) where status = 'queued'`.execute(db);
  await sql`create index jobs_leases on jobs (locked_until) where status = 'running'`.execute(db);
  await sql`create index jobs_running_connection on jobs (connection_id) where status = 'running'`.execute(db);
  await sql`create index jobs_finished on jobs (finished_at) where status in ('completed', 'cancelled')`.execute(db);
  // One live job per dedupe key: the second trigger of a running sync hits this index.
  await sql`create unique index jobs_dedupe on jobs (dedupe_key) where status in ('queued', 'running')`.execute(db);

  // Wake-ups: any job becoming claimable notifies listeners (identical notifications
  // within one transaction are folded into one by PostgreSQL).
  await sql`
    create function tandem_jobs_notify() returns trigger language plpgsql as $$
    begin
      perform pg_notify('tandem_jobs', '');
      return null;
    end $$`.execute(db);
  await sql`
    create trigger jobs_notify after insert or update of status on jobs
    for each row when (new.status = 'queued') execute function tandem_jobs_notify()`.execute(db);

  await db.schema
    .createTable("job_attempts")
    .addColumn("id", "bigserial", (c) => c.primaryKey())
    .addColumn("job_id", "uuid", (c) => c.notNull().references("jobs.id").onDelete("cascade"))
    .addColumn("attempt", "integer", (c) => c.notNull())
    .addColumn("lease_token", "bigint", (c) => c.notNull())
    .addColumn("worker", "text", (c) => c.notNull())
    .addColumn("outcome", "text", (c) =>
      c.notNull().check(sql`outcome in ('completed', 'failed', 'lease_expired', 'released', 'cancelled')`),
    )
    .addColumn("error", "jsonb")
    .addColumn("started_at", "timestamptz")
    .addColumn("finished_at", "timestamptz", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("job_attempts_job").on("job_attempts").columns(["job_id", "id"]).execute();

  await sql`create sequence lock_tokens`.execute(db);
  await db.schema
    .createTable("locks")
    .addColumn("key", "text", (c) => c.primaryKey())
    .addColumn("holder", "text", (c) => c.notNull())
    .addColumn("token", "bigint", (c) => c.notNull())
    .addColumn("job_id", "uuid")
    .addColumn("acquired_at", "timestamptz", (c) => c.notNull())
    .addColumn("expires_at", "timestamptz", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("schedules")
    .addColumn("id", "uuid", (c) => c.primaryKey())
    .addColumn("name", "text", (c) => c.notNull().unique())
    .addColumn("cron", "text", (c) => c.notNull())
    .addColumn("timezone", "text", (c) => c.notNull().defaultTo("UTC"))
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("payload", "jsonb", (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn("priority", "smallint", (c) => c.notNull().defaultTo(2))
    .addColumn("tenant_id", "uuid", (c) => c.references("tenants.id").onDelete("cascade"))
    .addColumn("connection_id", "uuid", (c) => c.references("connections.id").onDelete("cascade"))
    .addColumn("entity", "text")
    .addColumn("max_attempts", "integer")
    // Ticks are skipped while a live job holds this key (a sync already running).
    .addColumn("dedupe_key", "text")
    .addColumn("paused", "boolean", (c) => c.notNull().defaultTo(false))
    // The last tick turned into a job (or skipped while paused); ticks at or before it never fire.
    .addColumn("last_tick_at", "timestamptz", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addColumn("updated_at", "timestamptz", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("schedules_connection").on("schedules").column("connection_id").execute();

  await db.schema
    .createTable("schedule_ticks")
    .addColumn("schedule_id", "uuid", (c) => c.notNull().references("schedules.id").onDelete("cascade"))
    .addColumn("tick_at", "timestamptz", (c) => c.notNull())
    .addColumn("job_id", "uuid")
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addPrimaryKeyConstraint("schedule_ticks_pkey", ["schedule_id", "tick_at"])
    .execute();
};

export const down = async (db: Kysely<unknown>): Promise<void> => {
  await db.schema.dropTable("schedule_ticks").execute();
  await db.schema.dropTable("schedules").execute();
  await db.schema.dropTable("locks").execute();
  await sql`drop sequence lock_tokens`.execute(db);
  await db.schema.dropTable("job_attempts").execute();
  await db.schema.dropTable("jobs").execute();
  await sql`drop function tandem_jobs_notify()`.execute(db);
};
