import { type Kysely, sql } from "kysely";

/** Tenants, their API keys, and their connections to external systems. */
export const up = async (db: Kysely<unknown>): Promise<void> => {
  await db.schema
    .createTable("tenants")
    .addColumn("id", "uuid", (c) => c.primaryKey())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable("api_keys")
    .addColumn("id", "uuid", (c) => c.primaryKey())
    .addColumn("tenant_id", "uuid", (c) => c.references("tenants.id").onDelete("cascade"))
    .addColumn("role", "text", (c) => c.notNull().check(sql`role in ('admin', 'tenant')`))
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("prefix", "text", (c) => c.notNull())
    .addColumn("key_hash", "text", (c) => c.notNull().unique())
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("revoked_at", "timestamptz")
    .addCheckConstraint("api_keys_tenant_role", sql`(role = 'admin') = (tenant_id is null)`)
    .execute();
  // At most one live bootstrap admin key: concurrent first starts race on this index.
  await sql`create unique index api_keys_one_admin on api_keys (role) where role = 'admin' and revoked_at is null`.execute(
    db,
  );

  await db.schema
    .createTable("connections")
    .addColumn("id", "uuid", (c) => c.primaryKey())
    .addColumn("tenant_id", "uuid", (c) => c.notNull().references("tenants.id").onDelete("cascade"))
    .addColumn("connector", "text", (c) => c.notNull())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("config_ciphertext", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) =>
      c.notNull().defaultTo("active").check(sql`status in ('active', 'error', 'disabled')`),
    )
    .addColumn("paused", "boolean", (c) => c.notNull().defaultTo(false))
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("updated_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint("connections_tenant_name", ["tenant_id", "name"])
    .execute();
};

export const down = async (db: Kysely<unknown>): Promise<void> => {
  await db.schema.dropTable("connections").execute();
  await db.schema.dropTable("api_keys").execute();
  await db.schema.dropTable("tenants").execute();
};
