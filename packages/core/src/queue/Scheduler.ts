import { randomUUID } from "node:crypto";
import { Clock, Context, Data, Duration, Effect, Layer, type Scope } from "effect";
import { Database } from "../db/Database.ts";
import type { ScheduleRow } from "../db/schema.ts";
import { InvalidInput, ResourceNotFound } from "../errors/Errors.ts";
import type { SyncMode } from "../sync/EntitySync.ts";
import { type CronExpression, latestTick, nextTick, parseCron } from "./cronTicks.ts";
import { JobPriority, type JobPriorityName, JobQueue, priorityValue } from "./JobQueue.ts";
import { syncLockKey } from "./Locks.ts";

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
export interface SchedulerConfig {
  /** Default delta sync schedule of a connection's entity. Default every 15 minutes. */
  readonly deltaCron?: string;
  /** Default reconciliation schedule. Default daily at 03:00 UTC. */
  readonly reconcileCron?: string;
  /**
   * A tick this late is still run on its own (a slow pass, a busy process); older ones
   * count as missed in downtime, and all missed ticks together run once. Default 10 s.
   */
  readonly missedTickToleranceMs?: number;
}

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
   * and `...:reconcile` (cron from the arguments, else the config). `null` removes one.
   * Their ticks wait while a sync of the entity is queued or running.
   */
  readonly ensureSyncSchedules: (input: {
    readonly connectionId: string;
    readonly entity: string;
    readonly tenantId?: string | undefined;
    readonly deltaCron?: string | null | undefined;
    readonly reconcileCron?: string | null | undefined;
    readonly maxAttempts?: number | undefined;
  }) => Effect.Effect<ReadonlyArray<ScheduleView>, InvalidInput>;
  /** One pass: turns every due tick into a job. Answers how many ticks fired. */
  readonly fireDue: Effect.Effect<number>;
  /**
   * Runs the scheduler in this process until the Scope closes. Every process runs
   * one; each tick still becomes exactly one job cluster-wide.
   */
  readonly run: (options?: { readonly pollMs?: number }) => Effect.Effect<void, never, Scope.Scope>;
}

const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms));

/** A tick's job could not be created because its dedupe key is held by a live job. */
class TickDeferred extends Data.TaggedError("TickDeferred")<{ readonly scheduleId: string }> {}

const expressionOf = (pattern: string): CronExpression | undefined => {
  try {
    return parseCron(pattern);
  } catch {
    return undefined;
  }
};

/**
 * The tick a pass should fire: the first one after the last fired, if it is due and
 * at most `toleranceMs` late (each tick gets its job, in order); when it is older,
 * the schedule was down, and only the latest due tick fires: missed ticks run once.
 */
const dueTick = (expression: CronExpression, last: Date, now: Date, toleranceMs: number): Date | undefined => {
  const next = nextTick(expression, last);
  if (next === undefined || next > now) return undefined;
  if (now.getTime() - next.getTime() <= toleranceMs) return next;
  return latestTick(expression, last, now);
};

const toView = (row: ScheduleRow): ScheduleView => {
  const expression = expressionOf(row.cron);
  const next = expression === undefined ? undefined : nextTick(expression, row.last_tick_at);
  return {
    id: row.id,
    name: row.name,
    cron: row.cron,
    kind: row.kind,
    payload: row.payload,
    priority: row.priority,
    connectionId: row.connection_id,
    entity: row.entity,
    paused: row.paused,
    lastTickAt: row.last_tick_at.toISOString(),
    nextTickAt: next?.toISOString() ?? null,
  };
};

/**
 * Cron schedules stored in PostgreSQL and fired by a fiber in every process. A tick
 * becomes a job exactly once cluster-wide: the schedule row's `last_tick_at` only
 * moves forward (row lock) and `schedule_ticks` has a unique key on (schedule, tick),
 * both in the transaction that inserts the job. Ticks missed in downtime (older than
 * `missedTickToleranceMs`) fire once together, not once per missed tick.
 */
export class Scheduler extends Context.Tag("@tandem/core/Scheduler")<Scheduler, SchedulerService>() {
  /** Needs Database and JobQueue. */
  static layer(config: SchedulerConfig = {}) {
    return Layer.effect(Scheduler, makeScheduler(config));
  }
}

const makeScheduler = (config: SchedulerConfig) =>
  Effect.gen(function* () {
    const db = yield* Database;
    const queue = yield* JobQueue;
    const deltaCron = config.deltaCron ?? "*/15 * * * *";
    const reconcileCron = config.reconcileCron ?? "0 3 * * *";
    const toleranceMs = config.missedTickToleranceMs ?? 10_000;

    const byName = (name: string) =>
      db
        .query((k) => k.selectFrom("schedules").selectAll().where("name", "=", name).executeTakeFirst())
        .pipe(
          Effect.orDie,
          Effect.flatMap((row) =>
            row === undefined
              ? Effect.fail(new ResourceNotFound({ resource: "schedule", id: name }))
              : Effect.succeed(row),
          ),
        );

    const upsert = Effect.fn("Scheduler.upsert")(function* (input: ScheduleInput) {
      if (expressionOf(input.cron) === undefined) {
        let message = "invalid cron expression";
        try {
          parseCron(input.cron);
        } catch (e) {
          message = `invalid cron expression: ${e instanceof Error ? e.message : String(e)}`;
        }
        return yield* new InvalidInput({ issues: [{ path: "cron", message }] });
      }
      const at = yield* now;
      const priority = priorityValue(input.priority, JobPriority.delta);
      const values = {
        cron: input.cron,
        kind: input.kind,
        payload: JSON.stringify(input.payload ?? {}),
        priority,
        tenant_id: input.tenantId ?? null,
        connection_id: input.connectionId ?? null,
        entity: input.entity ?? null,
        max_attempts: input.maxAttempts ?? null,
        dedupe_key: input.dedupeKey ?? null,
        updated_at: at,
      };
      yield* db
        .query((k) =>
          k
            .insertInto("schedules")
            .values({ id: randomUUID(), name: input.name, last_tick_at: at, created_at: at, ...values })
            .onConflict((oc) =>
              oc.column("name").doUpdateSet({
                ...values,
                // A changed expression starts afresh; an unchanged one keeps its place.
                last_tick_at: (eb) =>
                  eb
                    .case()
                    .when("schedules.cron", "=", input.cron)
                    .then(eb.ref("schedules.last_tick_at"))
                    .else(at)
                    .end(),
              }),
            )
            .execute(),
        )
        .pipe(Effect.orDie);
      return toView(yield* byName(input.name).pipe(Effect.orDie));
    });

    const get = Effect.fn("Scheduler.get")(function* (name: string) {
      return toView(yield* byName(name));
    });

    const list = Effect.fn("Scheduler.list")(function* (filter: { readonly connectionId?: string } = {}) {
      const rows = yield* db
        .query((k) =>
          k
            .selectFrom("schedules")
            .selectAll()
            .$if(filter.connectionId !== undefined, (q) => q.where("connection_id", "=", filter.connectionId!))
            .orderBy("name")
            .execute(),
        )
        .pipe(Effect.orDie);
      return rows.map(toView);
    });

    const remove = Effect.fn("Scheduler.remove")(function* (name: string) {
      yield* byName(name);
      yield* db.query((k) => k.deleteFrom("schedules").where("name", "=", name).execute()).pipe(Effect.orDie);
    });

    const setPaused = (paused: boolean, where: { name: string } | { connectionId: string }) =>
      Effect.gen(function* () {
        const at = yield* now;
        const result = yield* db
          .query((k) =>
            k
              .updateTable("schedules")
              // Resuming moves the anchor to now, so ticks that fell in the pause do not fire.
              .set(paused ? { paused, updated_at: at } : { paused, updated_at: at, last_tick_at: at })
              .where("paused", "=", !paused)
              .$if("name" in where, (q) => q.where("name", "=", (where as { name: string }).name))
              .$if("connectionId" in where, (q) =>
                q.where("connection_id", "=", (where as { connectionId: string }).connectionId),
              )
              .executeTakeFirst(),
          )
          .pipe(Effect.orDie);
        return Number(result.numUpdatedRows);
      });

    const pause = Effect.fn("Scheduler.pause")(function* (name: string) {
      yield* byName(name);
      yield* setPaused(true, { name });
      return toView(yield* byName(name));
    });
    const resume = Effect.fn("Scheduler.resume")(function* (name: string) {
      yield* byName(name);
      yield* setPaused(false, { name });
      return toView(yield* byName(name));
    });
    const pauseConnection = (connectionId: string) =>
      setPaused(true, { connectionId }).pipe(Effect.withSpan("Scheduler.pauseConnection"));
    const resumeConnection = (connectionId: string) =>
      setPaused(false, { connectionId }).pipe(Effect.withSpan("Scheduler.resumeConnection"));

    const ensureSyncSchedules = Effect.fn("Scheduler.ensureSyncSchedules")(function* (input: {
      readonly connectionId: string;
      readonly entity: string;
      readonly tenantId?: string | undefined;
      readonly deltaCron?: string | null | undefined;
      readonly reconcileCron?: string | null | undefined;
      readonly maxAttempts?: number | undefined;
    }) {
      const views: ScheduleView[] = [];
      for (const [mode, cron, priority] of [
        ["delta", input.deltaCron === undefined ? deltaCron : input.deltaCron, "delta"],
        ["reconcile", input.reconcileCron === undefined ? reconcileCron : input.reconcileCron, "backfill"],
      ] as const) {
        const name = `sync:${input.connectionId}:${input.entity}:${mode}`;
        if (cron === null) {
          yield* remove(name).pipe(Effect.catchTag("ResourceNotFound", () => Effect.void));
          continue;
        }
        const payload: SyncJobPayload = { connectionId: input.connectionId, entity: input.entity, mode };
        views.push(
          yield* upsert({
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

    /** Fires one schedule's tick in one transaction; false if another process already did. */
    const fire = (schedule: ScheduleRow, tick: Date, at: Date) =>
      db.transaction(
        Effect.gen(function* () {
          const moved = yield* db.query((k) =>
            k
              .updateTable("schedules")
              .set({ last_tick_at: tick, updated_at: at })
              .where("id", "=", schedule.id)
              .where("paused", "=", false)
              .where("last_tick_at", "<", tick)
              .executeTakeFirst(),
          );
          if (Number(moved.numUpdatedRows) === 0) return false;
          const jobId = randomUUID();
          const inserted = yield* db.query((k) =>
            k
              .insertInto("jobs")
              .values({
                id: jobId,
                kind: schedule.kind,
                payload: JSON.stringify(schedule.payload ?? {}),
                priority: schedule.priority,
                tenant_id: schedule.tenant_id,
                connection_id: schedule.connection_id,
                run_at: at,
                ...(schedule.max_attempts !== null ? { max_attempts: schedule.max_attempts } : {}),
                dedupe_key: schedule.dedupe_key,
                created_at: at,
                updated_at: at,
              })
              .onConflict((oc) => oc.column("dedupe_key").where("status", "in", ["queued", "running"]).doNothing())
              .returning("id")
              .executeTakeFirst(),
          );
          // The job's dedupe key is held (its sync is still running): roll back and keep the
          // tick due, so it runs once when that job is over instead of being lost.
          if (inserted === undefined) return yield* new TickDeferred({ scheduleId: schedule.id });
          // The tick's unique key is the last guard against a second job for one tick.
          yield* db.query((k) =>
            k
              .insertInto("schedule_ticks")
              .values({ schedule_id: schedule.id, tick_at: tick, job_id: inserted.id, created_at: at })
              .execute(),
          );
          return true;
        }),
      );

    const fireDue = Effect.gen(function* () {
      const at = yield* now;
      const schedules = yield* db
        .query((k) =>
          k
            .selectFrom("schedules")
            .leftJoin("connections", "connections.id", "schedules.connection_id")
            .selectAll("schedules")
            .where("schedules.paused", "=", false)
            .where((eb) => eb.or([eb("connections.paused", "is", null), eb("connections.paused", "=", false)]))
            .execute(),
        )
        .pipe(Effect.orDie);
      let fired = 0;
      for (const schedule of schedules) {
        const expression = expressionOf(schedule.cron);
        if (expression === undefined) continue;
        // Late but not missed ticks fire one after the other, each its own job.
        let last = schedule.last_tick_at;
        for (let i = 0; i < 1_000; i++) {
          const tick = dueTick(expression, last, at, toleranceMs);
          if (tick === undefined) break;
          const done = yield* fire(schedule, tick, at).pipe(
            // Another process firing the same tick concurrently trips the unique key: not ours to fire.
            Effect.catchTag("ConstraintViolation", () => Effect.succeed(false)),
            Effect.catchTag("TickDeferred", () => Effect.succeed(false)),
          );
          if (!done) break; // another process is ahead on this schedule, or its job is still live
          fired++;
          last = tick;
        }
      }
      if (fired > 0) yield* queue.nudge;
      return fired;
    }).pipe(Effect.withSpan("Scheduler.fireDue"));

    /** Time until the earliest next tick of any active schedule, at most `pollMs`. */
    const untilNextTick = (pollMs: number) =>
      Effect.gen(function* () {
        const at = yield* now;
        const rows = yield* db
          .query((k) =>
            k.selectFrom("schedules").select(["cron", "last_tick_at"]).where("paused", "=", false).execute(),
          )
          .pipe(Effect.orDie);
        let wait = pollMs;
        for (const row of rows) {
          const expression = expressionOf(row.cron);
          if (expression === undefined) continue;
          // Due ticks were all fired by the pass just made, except deferred ones (their
          // job still live), which are looked at again at the next tick or poll.
          const next = nextTick(expression, new Date(Math.max(row.last_tick_at.getTime(), at.getTime())));
          if (next !== undefined) wait = Math.min(wait, Math.max(0, next.getTime() - at.getTime()));
        }
        return wait;
      });

    const run = (options: { readonly pollMs?: number } = {}) =>
      Effect.gen(function* () {
        const pollMs = options.pollMs ?? 5_000;
        while (true) {
          yield* fireDue.pipe(Effect.catchAllCause((cause) => Effect.logWarning("scheduler pass failed", cause)));
          const wait = yield* untilNextTick(pollMs).pipe(Effect.catchAllCause(() => Effect.succeed(pollMs)));
          yield* Effect.sleep(Duration.millis(wait));
        }
      }).pipe(Effect.forkScoped, Effect.asVoid);

    return {
      upsert,
      get,
      list,
      remove,
      pause,
      resume,
      pauseConnection,
      resumeConnection,
      ensureSyncSchedules,
      fireDue,
      run,
    } satisfies SchedulerService;
  });
