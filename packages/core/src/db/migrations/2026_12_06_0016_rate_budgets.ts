import { type Kysely, sql } from "kysely";

/**
 * One shared rate budget per connection (connector/RateBudgetRows.ts): a token bucket in GCRA
 * form, which processes lease shares of. `tat` (theoretical arrival time) is how far the budget
 * is spent: the bucket is full once `tat` is its depth in the past. `blocked_until` is a vendor's
 * reset or Retry-After, shared by every process. Times come from the processes' Clock, as in the
 * queue's tables. No foreign key, as `records`: Connections.delete deletes the row.
 */
export const up = async (db: Kysely<unknown>): Promise<void> => {
  await db.schema
    .createTable("rate_budgets")
    .addColumn("connection_id", "uuid", (c) => c.primaryKey())
    .addColumn("tat", "timestamptz", (c) => c.notNull())
    .addColumn("blocked_until", "timestamptz", (c) => c.notNull())
    .addColumn("updated_at", "timestamptz", (c) => c.notNull())
    .execute();
  // One row per connection, updated a few times a second when busy: leave room for HOT updates.
  await sql`alter table rate_budgets set (fillfactor = 50)`.execute(db);
};

export const down = async (db: Kysely<unknown>): Promise<void> => {
  await db.schema.dropTable("rate_budgets").execute();
};
