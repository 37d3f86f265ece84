import { Effect } from "effect";
import type { DatabaseService } from "../../db/Database.ts";
import { currentDate } from "../currentDate.ts";
import * as store from "../JobStore.ts";
import { jobRow, toView } from "./jobViews.ts";

/**
 * Cancels a queued job at once; a running one is flagged, interrupted by its worker at the next
 * heartbeat, and ends `cancelled`. Answers the job as it is after that.
 */
export const cancelJob = Effect.fn("JobQueue.cancel")(function* (db: DatabaseService, id: string, tenantId?: string) {
  yield* jobRow(db, id, tenantId);
  const at = yield* currentDate;
  yield* db.query((k) => store.cancelQueued(k, id, at)).pipe(Effect.orDie);
  yield* db.query((k) => store.requestCancel(k, id, at)).pipe(Effect.orDie);
  return toView(yield* jobRow(db, id, tenantId));
});
