import { type Kysely, sql } from "kysely";

/**
 * The record store (synced copies of remote records), per-entity sync cursors,
 * and the staging table reconciliation compares remote ids in.
 */
export const up = async (db: Kysely<unknown>): Promise<void> => {
  // One sequence for every record change: the change feed orders by it and a
  // reader resumes after the last value it saw. Gaps are expected (rollbacks,
  // skipped no-op upserts), order is what matters.
  await sql`create sequence records_change_seq`.execute(db);

  await db.schema
    .createTable("records")
    .addColumn("tenant_id", "uuid", (c) => c.notNull().references("tenants.id").onDelete("cascade"))
    .addColumn("connection_id", "uuid", (c) => c.notNull().references("connections.id").onDelete("cascade"))
    .addColumn("entity", "text", (c) => c.notNull())
    .addColumn("external_id", "text", (c) => c.notNull())
    .addColumn("data", "jsonb", (c) => c.notNull())
    .addColumn("content_hash", "text", (c) => c.notNull())
    .addColumn("remote_updated_at", "timestamptz")
    .addColumn("local_updated_at", "timestamptz")
    .addColumn("base", "jsonb")
    // Fields changed locally and not yet pushed (hybrid/push); null when nothing is pending.
    .addColumn("pending_changes", "jsonb")
    .addColumn("version", "integer", (c) => c.notNull().defaultTo(1))
    .addColumn("sync_status", "text", (c) =>
      c.notNull().defaultTo("synced").check(sql`sync_status in ('pending', 'synced', 'failed', 'conflict')`),
    )
    .addColumn("sync_error", "text")
    .addColumn("last_synced_at", "timestamptz")
    .addColumn("deleted_at", "timestamptz")
    .addColumn("change_seq", "bigint", (c) => c.notNull().defaultTo(sql`nextval('records_change_seq')`))
    // When the store last changed the row (from the engine's Clock): `modifiedAfter` filters.
    .addColumn("changed_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint("records_pkey", ["connection_id", "entity", "external_id"])
    .execute();
  await sql`create index records_change_feed on records (connection_id, entity, change_seq)`.execute(db);
  await sql`create index records_pending on records (connection_id, entity) where sync_status in ('pending', 'failed')`.execute(
    db,
  );

  await db.schema
    .createTable("sync_cursors")
    .addColumn("connection_id", "uuid", (c) => c.notNull().references("connections.id").onDelete("cascade"))
    .addColumn("entity", "text", (c) => c.notNull())
    .addColumn("delta_cursor", "timestamptz")
    .addColumn("last_full_at", "timestamptz")
    .addColumn("last_delta_at", "timestamptz")
    .addColumn("last_reconcile_at", "timestamptz")
    // {mode, cursor, since, startedAt, maxUpdatedAt, pages}: where an interrupted read resumes.
    .addColumn("checkpoint", "jsonb")
    // The last reconciliation that the mass-deletion guard stopped (what it would have deleted).
    .addColumn("quarantine", "jsonb")
    .addColumn("updated_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint("sync_cursors_pkey", ["connection_id", "entity"])
    .execute();

  // Remote ids of one reconciliation run. A plain table keyed by run rather than a
  // temp table: the run spans many statements and, on a pool, many connections.
  await db.schema
    .createTable("reconcile_ids")
    .addColumn("run_id", "uuid", (c) => c.notNull())
    .addColumn("external_id", "text", (c) => c.notNull())
    // A crashed run leaves its ids behind; later runs remove stages older than a day.
    .addColumn("staged_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint("reconcile_ids_pkey", ["run_id", "external_id"])
    .execute();
};

export const down = async (db: Kysely<unknown>): Promise<void> => {
  await db.schema.dropTable("reconcile_ids").execute();
  await db.schema.dropTable("sync_cursors").execute();
  await db.schema.dropTable("records").execute();
  await sql`drop sequence records_change_seq`.execute(db);
};
