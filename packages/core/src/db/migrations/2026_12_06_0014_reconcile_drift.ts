import { type Kysely, sql } from "kysely";

/**
 * Reconciliation compares modification times as well as ids: the stage keeps the time the
 * remote listed beside each id (null when the entity lists bare ids), and a run records how many
 * records it found newer remotely and re-fetched. Both columns are added without a rewrite
 * (nullable, or a constant default).
 */
export const up = async (db: Kysely<unknown>): Promise<void> => {
  await sql`alter table reconcile_ids add column remote_updated_at timestamptz`.execute(db);
  await sql`alter table sync_runs add column drifted integer not null default 0`.execute(db);
};

export const down = async (db: Kysely<unknown>): Promise<void> => {
  await sql`alter table sync_runs drop column drifted`.execute(db);
  await sql`alter table reconcile_ids drop column remote_updated_at`.execute(db);
};
