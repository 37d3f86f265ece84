import { Duration, Effect, type Scope } from "effect";
import type { DatabaseService } from "../../db/Database.ts";
import { nextTick } from "../cronTicks.ts";
import { currentDate } from "../currentDate.ts";
import * as store from "../ScheduleStore.ts";
import { expressionOf } from "./scheduleView.ts";

/** Time until the earliest next tick of any active schedule, at most `pollMs`. */
const untilNextTick = (db: DatabaseService, pollMs: number) =>
  Effect.gen(function* () {
    const at = yield* currentDate;
    const rows = yield* db.query(store.anchors).pipe(Effect.orDie);
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

/** Runs `fireDue` at every tick (or poll) until the Scope closes. */
export const runScheduler = (
  db: DatabaseService,
  fireDue: Effect.Effect<number>,
  options: { readonly pollMs?: number },
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const pollMs = options.pollMs ?? 5_000;
    while (true) {
      yield* fireDue.pipe(Effect.catchAllCause((cause) => Effect.logWarning("scheduler pass failed", cause)));
      const wait = yield* untilNextTick(db, pollMs).pipe(Effect.catchAllCause(() => Effect.succeed(pollMs)));
      yield* Effect.sleep(Duration.millis(wait));
    }
  }).pipe(Effect.forkScoped, Effect.asVoid);
