import { type Kysely, sql } from "kysely";

/**
 * Two-way sync, the local half: local identity and the push outbox.
 *
 * - `records.local_id`: the host application's id of a record, unique per connection x entity
 *   where it is set (a partial unique index: pulled records have none).
 * - `records.external_id_provisional`: a record created locally keeps the primary key
 *   (connection, entity, external_id) with an id of ours (`local:<uuid>`) until the push creates
 *   it at the vendor, whose id then replaces it. A provisional id never equals a vendor id, so the
 *   pulls' upsert by external id stays what it was; reconciliation skips provisional records (the
 *   vendor cannot list what it does not have yet).
 * - `push_outbox`: one entry per record with unpushed local changes, written in the same
 *   transaction as the record's change, coalescing later changes of the record until a push job
 *   drains it (see store/PushOutboxRows.ts). A foreign key to the connection: an entry is written
 *   per local change, not per pulled row, so the check costs nothing that matters, and the
 *   entries go with their connection.
 * - `jobs_queued_by_connection`: the local change's transaction looks for a queued drain job of
 *   its connection and entity (and share-locks it, see JobStore.holdQueued); without this index
 *   that lookup read every queued job of the queue's claim order.
 */
export const up = async (db: Kysely<unknown>): Promise<void> => {
  await sql`alter table records add column local_id text`.execute(db);
  await sql`alter table records add column external_id_provisional boolean not null default false`.execute(db);
  await sql`create unique index records_local_id on records (connection_id, entity, local_id)
    where local_id is not null`.execute(db);

  await db.schema
    .createTable("push_outbox")
    .addColumn("id", "uuid", (c) => c.primaryKey())
    .addColumn("tenant_id", "uuid", (c) => c.notNull())
    .addColumn("connection_id", "uuid", (c) => c.notNull().references("connections.id").onDelete("cascade"))
    .addColumn("entity", "text", (c) => c.notNull())
    .addColumn("external_id", "text", (c) => c.notNull())
    .addColumn("operation", "text", (c) => c.notNull().check(sql`operation in ('create', 'update', 'delete')`))
    .addColumn("critical", "boolean", (c) => c.notNull().defaultTo(false))
    .addColumn("status", "text", (c) => c.notNull().defaultTo("pending").check(sql`status in ('pending', 'dead')`))
    .addColumn("due_at", "timestamptz", (c) => c.notNull())
    // Bumped by every change coalesced into the entry: a drain removes the entry only at the
    // revision it pushed, so a change made while the write was in flight is pushed next.
    .addColumn("revision", "integer", (c) => c.notNull().defaultTo(1))
    .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("last_error", "text")
    .addColumn("last_attempt_at", "timestamptz")
    .addColumn("claimed_by", "text")
    .addColumn("claimed_until", "timestamptz")
    .addColumn("first_change_at", "timestamptz", (c) => c.notNull())
    .addColumn("last_change_at", "timestamptz", (c) => c.notNull())
    .execute();
  await sql`create unique index push_outbox_record on push_outbox (connection_id, entity, external_id)`.execute(db);
  await sql`create index push_outbox_due on push_outbox (connection_id, entity, due_at) where status = 'pending'`.execute(
    db,
  );
  await sql`create index push_outbox_dead on push_outbox (tenant_id, last_attempt_at) where status = 'dead'`.execute(
    db,
  );
  await sql`create index jobs_queued_by_connection on jobs (connection_id, kind, run_at) where status = 'queued'`.execute(
    db,
  );
};

export const down = async (db: Kysely<unknown>): Promise<void> => {
  await sql`drop index jobs_queued_by_connection`.execute(db);
  await db.schema.dropTable("push_outbox").execute();
  await sql`drop index records_local_id`.execute(db);
  // Records created locally and never pushed have no vendor id to fall back on.
  await sql`delete from records where external_id_provisional`.execute(db);
  await sql`alter table records drop column external_id_provisional`.execute(db);
  await sql`alter table records drop column local_id`.execute(db);
};
