import { Context, Effect, Layer, type Scope } from "effect";
import { Database } from "../db/Database.ts";
import type { InvalidInput, ResourceNotFound } from "../errors/Errors.ts";
import type { SyncMode } from "../sync/EntitySync.ts";
import { JobQueue } from "./JobQueue.ts";
import type { JobPriorityName } from "./jobs/priority.ts";
import * as store from "./ScheduleStore.ts";
import { fireDue } from "./schedules/fireDue.ts";
import { setConnectionPaused, setSchedulePaused } from "./schedules/pauseSchedules.ts";
import { runScheduler } from "./schedules/runScheduler.ts";
import { toView } from "./schedules/scheduleView.ts";
import {
  ensureSyncSchedules,
  removeSchedule,
  type SyncSchedulesInput,
  syncScheduleDefaults,
} from "./schedules/syncSchedules.ts";
import { scheduleNamed, upsertSchedule } from "./schedules/upsertSchedule.ts";

export type { ReconcileCadence, SyncSchedulesInput } from "./schedules/syncSchedules.ts";

/** The job kind of connection syncs; the sync engine registers the handler for it. */
export const SYNC_JOB_KIND = "sync";

/** Payload of a scheduled sync job. */
export interface SyncJobPayload {
  readonly connectionId: string;
  readonly entity: string;
  readonly mode: SyncMode;
}

/** A schedule to create or replace. */
export interface ScheduleInput {
  /** Unique; `upsert` with the same name replaces the schedule. */
  readonly name: string;
  /** node-cron expression, 5 fields or 6 with seconds, evaluated in UTC. */
  readonly cron: string;
  readonly kind: string;
  readonly payload?: unknown;
  /** Default `delta`. */
  readonly priority?: JobPriorityName | number | undefined;
  readonly tenantId?: string | undefined;
  readonly connectionId?: string | undefined;
  readonly entity?: string | undefined;
  readonly maxAttempts?: number | undefined;
  /**
   * While a live job holds this key, a tick waits (unfired) and runs once when that
   * job is over; sync schedules use `syncLockKey`, so a tick never starts a second
   * sync of an entity and a daily reconcile is deferred, not lost, by a running delta.
   */
  readonly dedupeKey?: string | undefined;
}

/** A schedule as the API shows it. Timestamps are ISO-8601. */
export interface ScheduleView {
  readonly id: string;
  readonly name: string;
  readonly cron: string;
  readonly kind: string;
  readonly payload: unknown;
  readonly priority: number;
  readonly connectionId: string | null;
  readonly entity: string | null;
  readonly paused: boolean;
  readonly lastTickAt: string;
  /** Next tick after the last one fired (it runs once even if several are missed). */
  readonly nextTickAt: string | null;
}

/** Scheduler defaults. */
export interface SchedulerOptions {
  /** Default delta sync schedule of a connection's entity. Default every 15 minutes. */
  readonly deltaCron?: string;
  /**
   * Default reconciliation schedule of an entity whose deletions are learned only by
   * reconciliation (cadence `daily`). Default daily at 03:00 UTC.
   */
  readonly reconcileCron?: string;
  /**
   * Default reconciliation schedule of an entity whose deletions arrive by delta (`deletes:
   * "api"`) or webhook (`deletes: "webhook"` with `webhooks: true`): a safety net for what those
   * missed (cadence `safety-net`). Default weekly, Sundays at 03:00 UTC.
   */
  readonly safetyNetReconcileCron?: string;
  /**
   * A tick this late is still run on its own (a slow pass, a busy process); older ones
   * count as missed in downtime, and all missed ticks together run once. Default 10 s.
   */
  readonly missedTickToleranceMs?: number;
}

/** The scheduler's defaults; a runtime that provides none gets them all. */
export class SchedulerConfig extends Context.Reference<SchedulerConfig>()("@tandem/core/SchedulerConfig", {
  defaultValue: (): SchedulerOptions => ({}),
}) {}

/** The scheduler's operations; see Scheduler. */
export interface SchedulerService {
  /** Creates or replaces a schedule by name; its first tick is the first one after now. */
  readonly upsert: (input: ScheduleInput) => Effect.Effect<ScheduleView, InvalidInput>;
  readonly get: (name: string) => Effect.Effect<ScheduleView, ResourceNotFound>;
  readonly list: (filter?: { readonly connectionId?: string }) => Effect.Effect<ReadonlyArray<ScheduleView>>;
  readonly remove: (name: string) => Effect.Effect<void, ResourceNotFound>;
  readonly pause: (name: string) => Effect.Effect<ScheduleView, ResourceNotFound>;
  /** Resumes from now: ticks that fell in the pause are not run. */
  readonly resume: (name: string) => Effect.Effect<ScheduleView, ResourceNotFound>;
  /** Pauses every schedule of a connection (`sync.pause`). */
  readonly pauseConnection: (connectionId: string) => Effect.Effect<number>;
  readonly resumeConnection: (connectionId: string) => Effect.Effect<number>;
  /**
   * The default schedules of a connection's entity: `sync:<connection>:<entity>:delta`
   * and `...:reconcile` (cron from the arguments, else the config: the reconciliation's by
   * `reconcileCadence`). `null` removes one. Their ticks wait while a sync of the entity
   * is queued or running.
   */
  readonly ensureSyncSchedules: (input: SyncSchedulesInput) => Effect.Effect<ReadonlyArray<ScheduleView>, InvalidInput>;
  /** One pass: turns every due tick into a job. Answers how many ticks fired. */
  readonly fireDue: Effect.Effect<number>;
  /**
   * Runs the scheduler in this process until the Scope closes. Every process runs
   * one; each tick still becomes exactly one job cluster-wide.
   */
  readonly run: (options?: { readonly pollMs?: number }) => Effect.Effect<void, never, Scope.Scope>;
}

/**
 * Cron schedules stored in PostgreSQL and fired by a fiber in every process. A tick
 * becomes a job exactly once cluster-wide: the schedule row's `last_tick_at` only
 * moves forward (row lock) and `schedule_ticks` has a unique key on (schedule, tick),
 * both in the transaction that inserts the job. Ticks missed in downtime (older than
 * `missedTickToleranceMs`) fire once together, not once per missed tick.
 */
export class Scheduler extends Context.Tag("@tandem/core/Scheduler")<Scheduler, SchedulerService>() {
  /** Configured by `SchedulerConfig`; needs Database and JobQueue. */
  static readonly layerNoDeps = Layer.effect(
    Scheduler,
    Effect.suspend(() => makeScheduler),
  );

  /** Needs Database. */
  static readonly layer = Scheduler.layerNoDeps.pipe(Layer.provide(JobQueue.layer));
}

const makeScheduler = Effect.gen(function* () {
  const db = yield* Database;
  const queue = yield* JobQueue;
  const config = yield* SchedulerConfig;
  const defaults = syncScheduleDefaults(config);
  const firePass = fireDue(db, config.missedTickToleranceMs ?? 10_000, queue.nudge);

  return {
    upsert: (input) => upsertSchedule(db, input),
    get: Effect.fn("Scheduler.get")(function* (name: string) {
      return toView(yield* scheduleNamed(db, name));
    }),
    list: Effect.fn("Scheduler.list")(function* (filter: { readonly connectionId?: string } = {}) {
      return (yield* db.query((k) => store.list(k, filter)).pipe(Effect.orDie)).map(toView);
    }),
    remove: (name) => removeSchedule(db, name),
    pause: (name) => setSchedulePaused(db, name, true),
    resume: (name) => setSchedulePaused(db, name, false),
    pauseConnection: (connectionId) => setConnectionPaused(db, connectionId, true),
    resumeConnection: (connectionId) => setConnectionPaused(db, connectionId, false),
    ensureSyncSchedules: (input) => ensureSyncSchedules(db, defaults, input),
    fireDue: firePass,
    run: (options = {}) => runScheduler(db, firePass, options),
  } satisfies SchedulerService;
});
