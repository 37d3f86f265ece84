import type { Kysely } from "kysely";
import { type MigrationResultSet, Migrator } from "kysely/migration";
import { migrations } from "./migrations/index.ts";

const provider = { getMigrations: async () => migrations };

const migrator = (db: Kysely<unknown>) => new Migrator({ db, provider });

/**
 * Applies every pending migration. Kysely's migrator takes a lock row first,
 * so N processes starting together on one database apply each migration once.
 */
export const migrateToLatest = async (db: Kysely<unknown>): Promise<MigrationResultSet> => {
  const result = await migrator(db).migrateToLatest();
  if (result.error !== undefined) throw result.error;
  return result;
};

/** Names of migrations that exist in code but are not applied to the database. */
export const pendingMigrations = async (db: Kysely<unknown>): Promise<ReadonlyArray<string>> => {
  const all = await migrator(db).getMigrations();
  return all.filter((m) => m.executedAt === undefined).map((m) => m.name);
};
