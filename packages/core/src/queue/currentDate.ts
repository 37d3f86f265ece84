import { Clock, Effect } from "effect";

/** The fiber's Clock as a Date: what the queue stamps rows with (a TestClock moves it in tests). */
export const currentDate: Effect.Effect<Date> = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms));
