import { Effect } from "effect";
import type { DatabaseService } from "../../db/Database.ts";
import { currentDate } from "../currentDate.ts";
import * as store from "../JobStore.ts";
import { stopHeld, type WorkerState } from "./heldJobs.ts";

/**
 * Extends the leases of every held job in one statement. A job the database gave to someone
 * else is stopped (its lease was lost); one whose cancellation was asked is stopped and cancelled.
 */
export const heartbeatOnce = (db: DatabaseService, state: WorkerState) =>
  Effect.gen(function* () {
    const entries = [...state.held.values()].filter((e) => e.stop === undefined);
    if (entries.length === 0) return;
    const at = yield* currentDate;
    const lockedUntil = new Date(at.getTime() + state.settings.leaseMs);
    const rows = yield* db
      .query((k) =>
        store.heartbeat(k, {
          worker: state.settings.workerId,
          ids: entries.map((e) => e.job.id),
          now: at,
          lockedUntil,
        }),
      )
      .pipe(Effect.orDie);
    const renewed = new Map(rows.map((r) => [r.id, r]));
    for (const entry of entries) {
      const r = renewed.get(entry.job.id);
      if (r !== undefined && r.lease_token === entry.job.leaseToken) entry.leasedUntil = lockedUntil.getTime();
      if (r === undefined || r.lease_token !== entry.job.leaseToken) {
        // Still ours in memory only: the database gave the job to someone else.
        if (state.held.get(entry.job.id) === entry) {
          yield* Effect.logWarning(`job ${entry.job.id}: lease lost; stopping its handler`);
          yield* Effect.fork(stopHeld(state, entry, "lease_lost"));
        }
      } else if (r.cancel_requested) {
        yield* Effect.fork(stopHeld(state, entry, "cancelled"));
      }
    }
  });
