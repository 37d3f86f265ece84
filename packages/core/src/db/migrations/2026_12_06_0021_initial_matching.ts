import { type Kysely, sql } from "kysely";

/**
 * Initial matching (see sync/matching/): when the first push of an entity finds records the host
 * created locally, they are linked by a match key to the vendor's records before any is created.
 * `sync_cursors.initial_matched_at` says it happened for a connection x entity, so later pushes
 * do not read the whole entity from the vendor again.
 */
export const up = async (db: Kysely<unknown>): Promise<void> => {
  await sql`alter table sync_cursors add column initial_matched_at timestamptz`.execute(db);
};

export const down = async (db: Kysely<unknown>): Promise<void> => {
  await sql`alter table sync_cursors drop column initial_matched_at`.execute(db);
};
