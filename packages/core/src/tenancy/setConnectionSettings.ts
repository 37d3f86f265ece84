import { Effect } from "effect";
import { Database } from "../db/Database.ts";
import { LocalChanges } from "../sync/LocalChanges.ts";
import { SyncTriggers } from "../sync/SyncTriggers.ts";
import { Connections } from "./Connections.ts";

/**
 * Sets a connection's sync settings (see Connections.setSettings) and re-applies what depends on
 * them, in one transaction: the entities' delta and reconciliation schedules (none for a disabled
 * or push-only entity; the connection's own crons), then drains for changes that waited (an
 * entity enabled again, or turned from pull to both).
 */
export const setConnectionSettings = Effect.fn("Connections.setSettingsAndSchedules")(function* (
  tenantId: string,
  connectionId: string,
  entities: unknown,
) {
  const db = yield* Database;
  const connections = yield* Connections;
  const triggers = yield* SyncTriggers;
  const local = yield* LocalChanges;
  const view = yield* db.transaction(
    Effect.gen(function* () {
      const view = yield* connections.setSettings(tenantId, connectionId, entities);
      // Crons were validated with the settings: a refusal here would be a bug.
      yield* triggers.setupSchedules(tenantId, connectionId).pipe(Effect.catchTag("InvalidInput", Effect.die));
      return view;
    }),
  );
  yield* local.wakeDrains(tenantId, connectionId);
  return view;
});
