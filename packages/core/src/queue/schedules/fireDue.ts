import { randomUUID } from "node:crypto";
import { Data, Effect } from "effect";
import type { DatabaseService } from "../../db/Database.ts";
import type { ScheduleRow } from "../../db/schema.ts";
import { currentDate } from "../currentDate.ts";
import * as jobs from "../JobStore.ts";
import * as store from "../ScheduleStore.ts";
import { dueTick, expressionOf } from "./scheduleView.ts";

/** A tick's job could not be created because its dedupe key is held by a live job. */
class TickDeferred extends Data.TaggedError("TickDeferred")<{ readonly scheduleId: string }> {}

/** Fires one schedule's tick in one transaction; false if another process already did. */
const fire = (db: DatabaseService, schedule: ScheduleRow, tick: Date, at: Date) =>
  db.transaction(
    Effect.gen(function* () {
      if (!(yield* db.query((k) => store.advanceTo(k, schedule.id, tick, at)))) return false;
      const jobId = yield* db.query((k) =>
        jobs.insertUnlessKeyHeld(k, {
          id: randomUUID(),
          kind: schedule.kind,
          payload: schedule.payload,
          priority: schedule.priority,
          tenant_id: schedule.tenant_id,
          connection_id: schedule.connection_id,
          run_at: at,
          max_attempts: schedule.max_attempts,
          dedupe_key: schedule.dedupe_key,
          created_at: at,
        }),
      );
      // The job's dedupe key is held (its sync is still running): roll back and keep the
      // tick due, so it runs once when that job is over instead of being lost.
      if (jobId === undefined) return yield* new TickDeferred({ scheduleId: schedule.id });
      // The tick's unique key is the last guard against a second job for one tick.
      yield* db.query((k) => store.insertTick(k, { scheduleId: schedule.id, tickAt: tick, jobId, now: at }));
      return true;
    }),
  );

/**
 * One pass: turns every due tick into a job (late but not missed ticks one by one, missed ones
 * once together). Answers how many ticks fired; wakes the workers when any did.
 */
export const fireDue = (db: DatabaseService, toleranceMs: number, nudge: Effect.Effect<void>): Effect.Effect<number> =>
  Effect.gen(function* () {
    const at = yield* currentDate;
    const schedules = yield* db.query(store.active).pipe(Effect.orDie);
    let fired = 0;
    for (const schedule of schedules) {
      const expression = expressionOf(schedule.cron);
      if (expression === undefined) continue;
      // Late but not missed ticks fire one after the other, each its own job.
      let last = schedule.last_tick_at;
      for (let i = 0; i < 1_000; i++) {
        const tick = dueTick(expression, last, at, toleranceMs);
        if (tick === undefined) break;
        const done = yield* fire(db, schedule, tick, at).pipe(
          // Another process firing the same tick concurrently trips the unique key: not ours to fire.
          Effect.catchTag("ConstraintViolation", () => Effect.succeed(false)),
          Effect.catchTag("TickDeferred", () => Effect.succeed(false)),
        );
        if (!done) break; // another process is ahead on this schedule, or its job is still live
        fired++;
        last = tick;
      }
    }
    if (fired > 0) yield* nudge;
    return fired;
  }).pipe(Effect.withSpan("Scheduler.fireDue"));
