import { Effect } from "effect";
import type { DatabaseService } from "../../db/Database.ts";
import { syncLockKey } from "../Locks.ts";
import { type SchedulerOptions, type ScheduleView, SYNC_JOB_KIND, type SyncJobPayload } from "../Scheduler.ts";
import * as store from "../ScheduleStore.ts";
import { scheduleNamed, upsertSchedule } from "./upsertSchedule.ts";

/**
 * How often an entity is reconciled by default: `daily` (deletions are learned only by comparing
 * ids), or the less frequent `safety-net` (deletions arrive on their own, by delta or webhook;
 * reconciliation only catches what those missed). See `reconcileCadenceOf`.
 */
export type ReconcileCadence = "daily" | "safety-net";

/** Which sync schedules of an entity `ensureSyncSchedules` sets (see SchedulerService). */
export interface SyncSchedulesInput {
  readonly connectionId: string;
  readonly entity: string;
  readonly tenantId?: string | undefined;
  /** An explicit cron (a connection's own schedule), or null for none; absent: the default. */
  readonly deltaCron?: string | null | undefined;
  /** An explicit cron (a connection's own schedule), or null for none; absent: the cadence's default. */
  readonly reconcileCron?: string | null | undefined;
  /** Which default reconciliation cron applies when `reconcileCron` is absent. Default `daily`. */
  readonly reconcileCadence?: ReconcileCadence | undefined;
  readonly maxAttempts?: number | undefined;
}

/** The default crons `ensureSyncSchedules` picks from (SchedulerOptions with their defaults). */
export type SyncScheduleDefaults = Required<
  Pick<SchedulerOptions, "deltaCron" | "reconcileCron" | "safetyNetReconcileCron">
>;

/**
 * The default crons of the running engine: its configuration's (`SchedulerConfig`, from
 * `TANDEM_DELTA_CRON` and the like on the server), else the built-in ones. The one place those are
 * written, so the schedules the Scheduler sets and the settings the API shows cannot disagree.
 */
export const syncScheduleDefaults = (options: SchedulerOptions): SyncScheduleDefaults => ({
  deltaCron: options.deltaCron ?? "*/15 * * * *",
  reconcileCron: options.reconcileCron ?? "0 3 * * *",
  safetyNetReconcileCron: options.safetyNetReconcileCron ?? "0 3 * * 0",
});

/** Deletes the named schedule; ResourceNotFound when there is none. */
export const removeSchedule = Effect.fn("Scheduler.remove")(function* (db: DatabaseService, name: string) {
  yield* scheduleNamed(db, name);
  yield* db.query((k) => store.deleteByName(k, name)).pipe(Effect.orDie);
});

/**
 * The default schedules of a connection's entity: `sync:<connection>:<entity>:delta` and
 * `...:reconcile` (cron from the input, else the options' defaults, the reconciliation's by
 * cadence); `null` removes one.
 */
export const ensureSyncSchedules = Effect.fn("Scheduler.ensureSyncSchedules")(function* (
  db: DatabaseService,
  defaults: SyncScheduleDefaults,
  input: SyncSchedulesInput,
) {
  const defaultReconcile =
    input.reconcileCadence === "safety-net" ? defaults.safetyNetReconcileCron : defaults.reconcileCron;
  const views: ScheduleView[] = [];
  for (const [mode, cron, priority] of [
    ["delta", input.deltaCron === undefined ? defaults.deltaCron : input.deltaCron, "delta"],
    ["reconcile", input.reconcileCron === undefined ? defaultReconcile : input.reconcileCron, "backfill"],
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
