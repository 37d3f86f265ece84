import type { Kysely } from "kysely";

/**
 * Attempts a job lost to infrastructure faults (its database connection terminated, its lease
 * expired because its process died or lost the database). They are handed back uncounted, so
 * they do not spend the job's own `max_attempts`, and counted here against a budget of their own
 * (`RetryPolicy`'s `maxInfrastructureFaults`), so a job that always kills its process still ends.
 */
export const up = async (db: Kysely<unknown>): Promise<void> => {
  await db.schema
    .alterTable("jobs")
    .addColumn("infrastructure_faults", "integer", (c) => c.notNull().defaultTo(0))
    .execute();
};

export const down = async (db: Kysely<unknown>): Promise<void> => {
  await db.schema.alterTable("jobs").dropColumn("infrastructure_faults").execute();
};
