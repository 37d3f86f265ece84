import { type Kysely, sql } from "kysely";

/**
 * Sync run history: one row per attempt of a connection entity's sync, with its
 * outcome, counts and live progress. Status, metrics and alerts read it; it
 * outlives the queue's job rows (which are pruned after their retention).
 */
export const up = async (db: Kysely<unknown>): Promise<void> => {
  await db.schema
    .createTable("sync_runs")
    .addColumn("id", "uuid", (c) => c.primaryKey())
    .addColumn("tenant_id", "uuid", (c) => c.notNull().references("tenants.id").onDelete("cascade"))
    .addColumn("connection_id", "uuid", (c) => c.notNull().references("connections.id").onDelete("cascade"))
    .addColumn("entity", "text", (c) => c.notNull())
    .addColumn("mode", "text", (c) => c.notNull())
    .addColumn("trigger", "text", (c) => c.notNull())
    .addColumn("job_id", "uuid")
    .addColumn("attempt", "integer", (c) => c.notNull().defaultTo(1))
    .addColumn("status", "text", (c) =>
      c.notNull().check(sql`status in ('running', 'succeeded', 'failed', 'cancelled')`),
    )
    .addColumn("started_at", "timestamptz", (c) => c.notNull())
    .addColumn("finished_at", "timestamptz")
    .addColumn("duration_ms", "integer")
    .addColumn("pages", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("created", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("updated", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("unchanged", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("deleted", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("item_errors", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("errors_by_type", "jsonb", (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn("error_type", "text")
    .addColumn("error_message", "text")
    .addColumn("progress_at", "timestamptz")
    .execute();
  await db.schema
    .createIndex("sync_runs_tenant_started")
    .on("sync_runs")
    .columns(["tenant_id", "started_at"])
    .execute();
  await db.schema
    .createIndex("sync_runs_entity_started")
    .on("sync_runs")
    .columns(["connection_id", "entity", "mode", "started_at"])
    .execute();
  await db.schema.createIndex("sync_runs_job").on("sync_runs").column("job_id").execute();
};

export const down = async (db: Kysely<unknown>): Promise<void> => {
  await db.schema.dropTable("sync_runs").execute();
};
