import { type Kysely, sql } from "kysely";

/**
 * Alerts: rules per tenant, and one row per firing (opened, then resolved once).
 * The partial unique index on open alerts per rule x subject is what keeps two
 * processes evaluating at once from opening the same alert twice.
 */
export const up = async (db: Kysely<unknown>): Promise<void> => {
  await db.schema
    .createTable("alert_rules")
    .addColumn("id", "uuid", (c) => c.primaryKey())
    .addColumn("tenant_id", "uuid", (c) => c.notNull().references("tenants.id").onDelete("cascade"))
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("kind", "text", (c) =>
      c.notNull().check(sql`kind in ('sync_failures', 'error_rate', 'queue_backlog', 'staleness', 'performance')`),
    )
    .addColumn("connection_id", "uuid", (c) => c.references("connections.id").onDelete("cascade"))
    .addColumn("params", "jsonb", (c) => c.notNull())
    .addColumn("enabled", "boolean", (c) => c.notNull().defaultTo(true))
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addColumn("updated_at", "timestamptz", (c) => c.notNull())
    .addUniqueConstraint("alert_rules_name", ["tenant_id", "name"])
    .execute();

  await db.schema
    .createTable("alerts")
    .addColumn("id", "uuid", (c) => c.primaryKey())
    // Insertion order for keyset pagination.
    .addColumn("seq", "bigint", (c) => c.notNull().generatedAlwaysAsIdentity().unique())
    .addColumn("tenant_id", "uuid", (c) => c.notNull().references("tenants.id").onDelete("cascade"))
    .addColumn("rule_id", "uuid", (c) => c.notNull().references("alert_rules.id").onDelete("cascade"))
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("subject", "text", (c) => c.notNull())
    .addColumn("connection_id", "uuid", (c) => c.references("connections.id").onDelete("cascade"))
    .addColumn("entity", "text")
    .addColumn("mode", "text")
    .addColumn("details", "jsonb", (c) => c.notNull())
    .addColumn("opened_at", "timestamptz", (c) => c.notNull())
    .addColumn("resolved_at", "timestamptz")
    .addColumn("resolution", "jsonb")
    .execute();
  await db.schema
    .createIndex("alerts_open_subject")
    .on("alerts")
    .columns(["rule_id", "subject"])
    .unique()
    .where(sql.ref("resolved_at"), "is", null)
    .execute();
  await db.schema.createIndex("alerts_tenant_seq").on("alerts").columns(["tenant_id", "seq"]).execute();
};

export const down = async (db: Kysely<unknown>): Promise<void> => {
  await db.schema.dropTable("alerts").execute();
  await db.schema.dropTable("alert_rules").execute();
};
