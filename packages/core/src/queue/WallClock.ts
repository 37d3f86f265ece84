import { Clock, Effect } from "effect";

const wallClock = Clock.make();

/**
 * Runs `effect` on the wall clock, whatever clock the fiber carries. For time that paces or
 * bounds I/O (spacing network calls, a shutdown's deadline), not business time: under a test's
 * TestClock, which moves only when told, such a sleep would never end.
 */
export const onWallClock = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.withClock(effect, wallClock);
