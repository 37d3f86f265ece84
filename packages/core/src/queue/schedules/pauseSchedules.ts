import { Effect } from "effect";
import type { DatabaseService } from "../../db/Database.ts";
import { currentDate } from "../currentDate.ts";
import * as store from "../ScheduleStore.ts";
import { toView } from "./scheduleView.ts";
import { scheduleNamed } from "./upsertSchedule.ts";

const setPaused = (db: DatabaseService, paused: boolean, where: { name: string } | { connectionId: string }) =>
  Effect.flatMap(currentDate, (at) => db.query((k) => store.setPaused(k, paused, where, at)).pipe(Effect.orDie));

/** Pauses (or resumes from now: ticks that fell in the pause are not run) the named schedule. */
export const setSchedulePaused = (db: DatabaseService, name: string, paused: boolean) =>
  Effect.gen(function* () {
    yield* scheduleNamed(db, name);
    yield* setPaused(db, paused, { name });
    return toView(yield* scheduleNamed(db, name));
  }).pipe(Effect.withSpan(paused ? "Scheduler.pause" : "Scheduler.resume"));

/** Pauses or resumes every schedule of a connection; answers how many changed. */
export const setConnectionPaused = (db: DatabaseService, connectionId: string, paused: boolean) =>
  setPaused(db, paused, { connectionId }).pipe(
    Effect.withSpan(paused ? "Scheduler.pauseConnection" : "Scheduler.resumeConnection"),
  );
