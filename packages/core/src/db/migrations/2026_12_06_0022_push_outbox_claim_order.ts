import { type Kysely, sql } from "kysely";

/*
 * A drain claims an entity's pending outbox entries in the order `critical desc, due_at, id`, a
 * batch at a time (see PushOutboxRows.claimDue). The index on (connection, entity, due_at) could
 * not give that order: every claim read all of the entity's pending entries and sorted them, so a
 * backlog of n entries cost each of its n / batch claims O(n), about 9 of the 17 ms of a claim of
 * 500 from 10,000. This index hands them over in claim order, and serves the entity-wide scans of
 * pending entries (the next due time, "due now") as the old one did, which it replaces.
 */
export const up = async (db: Kysely<unknown>): Promise<void> => {
  await sql`create index push_outbox_claim on push_outbox (connection_id, entity, critical desc, due_at, id)
              where status = 'pending'`.execute(db);
  await sql`drop index push_outbox_due`.execute(db);
};

export const down = async (db: Kysely<unknown>): Promise<void> => {
  await sql`create index push_outbox_due on push_outbox (connection_id, entity, due_at) where status = 'pending'`.execute(
    db,
  );
  await sql`drop index push_outbox_claim`.execute(db);
};
