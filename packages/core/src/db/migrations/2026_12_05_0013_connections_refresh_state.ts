import type { Kysely } from "kysely";

/**
 * The refresh state a connector's `auth` hook rotated (a new refresh token), as an AES-256-GCM
 * envelope like the config. Kept apart from the config: the engine writes it on a token refresh,
 * the API writes the config, and a config update clears it (the new config's credentials win).
 */
export const up = async (db: Kysely<unknown>): Promise<void> => {
  await db.schema.alterTable("connections").addColumn("refresh_state_ciphertext", "text").execute();
};

export const down = async (db: Kysely<unknown>): Promise<void> => {
  await db.schema.alterTable("connections").dropColumn("refresh_state_ciphertext").execute();
};
