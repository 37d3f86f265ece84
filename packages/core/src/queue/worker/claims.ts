import { Duration, Effect, Queue } from "effect";
import type { DatabaseService } from "../../db/Database.ts";
import { currentDate } from "../currentDate.ts";
import * as store from "../JobStore.ts";
import { activeCount, startHeld, type WorkerState } from "./heldJobs.ts";

/**
 * Claims as many jobs as the worker has room for (slots and prefetch) and starts them. Answers
 * how many when the batch was full (there may be more waiting), else 0.
 */
const claimOnce = (db: DatabaseService, state: WorkerState) =>
  Effect.gen(function* () {
    const { settings } = state;
    // Jobs settling no longer take a slot; waiting (prefetched) ones count against the prefetch.
    const free = settings.concurrency + settings.prefetch - activeCount(state);
    if (free <= 0 || state.lifecycle.stopping) return 0;
    const at = yield* currentDate;
    const lockedUntil = new Date(at.getTime() + settings.leaseMs);
    const rows = yield* db
      .query((k) =>
        store.claim(k, {
          worker: settings.workerId,
          kinds: settings.kinds,
          limit: free,
          perConnection: settings.perConnection,
          now: at,
          lockedUntil,
        }),
      )
      .pipe(Effect.orDie);
    // Started uninterruptibly with the claim's result, so a shutdown never loses a claimed row.
    for (const r of rows) yield* startHeld(state, r, lockedUntil);
    return rows.length === free ? rows.length : 0;
  }).pipe(Effect.uninterruptible);

/** Claims until shutdown: again at once after a full batch, else on a wake-up or after the poll interval. */
export const claimLoop = (db: DatabaseService, state: WorkerState, wake: Queue.Queue<void>) =>
  Effect.gen(function* () {
    while (!state.lifecycle.stopping) {
      const full = yield* claimOnce(db, state).pipe(
        Effect.catchAllCause((cause) =>
          Effect.as(Effect.logWarning("job claim failed; retrying after the poll interval", cause), 0),
        ),
      );
      if (full > 0) continue; // a full batch: there may be more waiting
      yield* Effect.raceFirst(Queue.take(wake), Effect.sleep(Duration.millis(state.settings.pollMs)));
    }
  });
