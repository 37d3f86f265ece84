import { type Kysely, sql } from "kysely";

/**
 * A connection's own sync settings (`connections.settings.set`): one JSON object by entity, each
 * setting absent where the connector's default applies. Beside the connection's config, written
 * by the same owner (Connections); an LLM resolver's key inside it is an encrypted envelope.
 */
export const up = async (db: Kysely<unknown>): Promise<void> => {
  await db.schema
    .alterTable("connections")
    .addColumn("sync_settings", "jsonb", (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .execute();
};

export const down = async (db: Kysely<unknown>): Promise<void> => {
  await db.schema.alterTable("connections").dropColumn("sync_settings").execute();
};
