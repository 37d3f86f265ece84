import { Effect } from "effect";
import type { DatabaseService } from "../../db/Database.ts";
import { syncLockKey } from "../Locks.ts";
import { type SchedulerOptions, type ScheduleView, SYNC_JOB_KIND, type SyncJobPayload } from "../Scheduler.ts";
import * as store from "../ScheduleStore.ts";
import { scheduleNamed, upsertSchedule } from "./upsertSchedule.ts";

/** Which sync schedules of an entity `ensureSyncSchedules` sets (see SchedulerService). */
export interface SyncSchedulesInput {
  readonly connectionId: string;
  readonly entity: string;
  readonly tenantId?: string | undefined;
  readonly deltaCron?: string | null | undefined;
  readonly reconcileCron?: string | null | undefined;
  readonly maxAttempts?: number | undefined;
}

/** Deletes the named schedule; ResourceNotFound when there is none. */
export const removeSchedule = Effect.fn("Scheduler.remove")(function* (db: DatabaseService, name: string) {
  yield* scheduleNamed(db, name);
  yield* db.query((k) => store.deleteByName(k, name)).pipe(Effect.orDie);
});

/**
 * The default schedules of a connection's entity: `sync:<connection>:<entity>:delta` and
 * `...:reconcile` (cron from the input, else the options' defaults); `null` removes one.
 */
export const ensureSyncSchedules = Effect.fn("Scheduler.ensureSyncSchedules")(function* (
  db: DatabaseService,
  defaults: Required<Pick<SchedulerOptions, "deltaCron" | "reconcileCron">>,
  input: SyncSchedulesInput,
) {
  const views: ScheduleView[] = [];
  for (const [mode, cron, priority] of [
    ["delta", input.deltaCron === undefined ? defaults.deltaCron : input.deltaCron, "delta"],
    ["reconcile", input.reconcileCron === undefined ? defaults.reconcileCron : input.reconcileCron, "backfill"],
  ] as const) {
    const name = `sync:${input.connectionId}:${input.entity}:${mode}`;
    if (cron === null) {
      yield* removeSchedule(db, name).pipe(Effect.catchTag("ResourceNotFound", () => Effect.void));
      continue;
    }
    const payload: SyncJobPayload = { connectionId: input.connectionId, entity: input.entity, mode };
    views.push(
      yield* upsertSchedule(db, {
        name,
        cron,
        kind: SYNC_JOB_KIND,
        payload,
        priority,
        tenantId: input.tenantId,
        connectionId: input.connectionId,
        entity: input.entity,
        maxAttempts: input.maxAttempts,
        dedupeKey: syncLockKey(input.connectionId, input.entity),
      }),
    );
  }
  return views;
});
