import { type Kysely, sql } from "kysely";

/**
 * Job wake-ups are announced by the writer after its commit (`makeJobAnnouncer`), no longer by
 * a row trigger inside the writer's transaction: a NOTIFY in a transaction holds PostgreSQL's
 * notify lock through that transaction's commit, so every writer of jobs committed one at a time.
 */
export const up = async (db: Kysely<unknown>): Promise<void> => {
  await sql`drop trigger jobs_notify on jobs`.execute(db);
  await sql`drop function tandem_jobs_notify()`.execute(db);
};

export const down = async (db: Kysely<unknown>): Promise<void> => {
  await sql`
    create function tandem_jobs_notify() returns trigger language plpgsql as $$
    begin
      perform pg_notify('tandem_jobs', '');
      return null;
    end $$`.execute(db);
  await sql`
    create trigger jobs_notify after insert or update of status on jobs
    for each row when (new.status = 'queued') execute function tandem_jobs_notify()`.execute(db);
};
