import { type Kysely, sql } from "kysely";

/** The conflict audit trail: every conflict, how it was settled, and by whom. */
export const up = async (db: Kysely<unknown>): Promise<void> => {
  await db.schema
    .createTable("conflicts")
    .addColumn("id", "uuid", (c) => c.primaryKey())
    // Insertion order for keyset pagination (timestamps have microseconds JS cannot carry).
    .addColumn("seq", "bigint", (c) => c.notNull().generatedAlwaysAsIdentity().unique())
    .addColumn("tenant_id", "uuid", (c) => c.notNull().references("tenants.id").onDelete("cascade"))
    .addColumn("connection_id", "uuid", (c) => c.notNull().references("connections.id").onDelete("cascade"))
    .addColumn("entity", "text", (c) => c.notNull())
    .addColumn("external_id", "text", (c) => c.notNull())
    .addColumn("base", "jsonb")
    .addColumn("local", "jsonb", (c) => c.notNull())
    .addColumn("remote", "jsonb", (c) => c.notNull())
    .addColumn("merged", "jsonb", (c) => c.notNull())
    .addColumn("fields", "jsonb", (c) => c.notNull())
    .addColumn("local_updated_at", "timestamptz", (c) => c.notNull())
    .addColumn("remote_updated_at", "timestamptz", (c) => c.notNull())
    .addColumn("policy", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull().check(sql`status in ('open', 'resolved')`))
    .addColumn("resolution", "jsonb")
    .addColumn("resolved_by", "text")
    .addColumn("reason", "text")
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("resolved_at", "timestamptz")
    .execute();
  await db.schema
    .createIndex("conflicts_tenant_status")
    .on("conflicts")
    .columns(["tenant_id", "status", "seq"])
    .execute();
  await db.schema
    .createIndex("conflicts_record")
    .on("conflicts")
    .columns(["connection_id", "entity", "external_id"])
    .execute();
};

export const down = async (db: Kysely<unknown>): Promise<void> => {
  await db.schema.dropTable("conflicts").execute();
};
