import { Effect } from "effect";
import { Database } from "../db/Database.ts";
import { SyncTriggers } from "../sync/SyncTriggers.ts";
import { Connections, type CreateConnection } from "./Connections.ts";

/**
 * Creates a connection with its default schedules (delta and reconciliation per entity), in
 * one transaction: a connection never exists without them.
 */
export const createConnection = Effect.fn("Connections.createWithSchedules")(function* (
  tenantId: string,
  input: CreateConnection,
) {
  const db = yield* Database;
  const connections = yield* Connections;
  const triggers = yield* SyncTriggers;
  return yield* db.transaction(
    Effect.gen(function* () {
      const created = yield* connections.create(tenantId, input);
      yield* triggers.setupSchedules(tenantId, created.id).pipe(Effect.orDie);
      return created;
    }),
  );
});
