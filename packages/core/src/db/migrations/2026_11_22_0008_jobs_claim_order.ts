import { type Kysely, sql } from "kysely";

/**
 * The claim orders queued jobs by (priority, run_at, id) and takes the first few. The index on
 * (priority, run_at) alone left the id to a sort, and jobs enqueued together share one run_at:
 * with a backlog of 50,000 bulk-enqueued jobs every claim sorted all of them (EXPLAIN ANALYZE:
 * 8 ms with fresh statistics, 450 ms with stale ones). With id in the index the scan is already
 * in claim order and stops after `limit` rows (0.8 ms).
 */
export const up = async (db: Kysely<unknown>): Promise<void> => {
  await sql`create index jobs_claim_order on jobs (priority, run_at, id) where status = 'queued'`.execute(db);
  await sql`drop index jobs_claim`.execute(db);
};

export const down = async (db: Kysely<unknown>): Promise<void> => {
  await sql`create index jobs_claim on jobs (priority, run_at) where status = 'queued'`.execute(db);
  await sql`drop index jobs_claim_order`.execute(db);
};
