import { Duration, Effect, Schedule, type Scope } from "effect";
import { sql } from "kysely";
import pg from "pg";
import type { DatabaseService } from "../db/Database.ts";
import { currentDate } from "./currentDate.ts";
import { onWallClock } from "./WallClock.ts";

/** The channel notified when jobs become claimable (see `makeJobAnnouncer`). */
export const jobsChannel = "tandem_jobs";

/**
 * Tells every process's workers that jobs became claimable: one NOTIFY on the jobs channel, in a
 * statement of its own, sent by callers once their rows are committed (`Database.afterCommit`).
 * It used to come from a trigger on `jobs`, inside the writer's transaction: PostgreSQL then
 * holds its notify lock from the writer's pre-commit through the WAL flush, so concurrent
 * writers of jobs committed one at a time (under webhook load, the intake's commits queued
 * behind each other). Requests while one is in flight, or within `announcementSpacingMs` after
 * it, fold into one more. Answers the effect
 * that requests an announcement; it never waits for it and never fails.
 */
/** The least time between two announcements of one process (a wake-up waits at most this long). */
const announcementSpacingMs = 10;

export const makeJobAnnouncer = (db: DatabaseService): Effect.Effect<Effect.Effect<void>, never, Scope.Scope> =>
  Effect.gen(function* () {
    // PGlite serves one process, whose workers are woken in memory.
    if (db.dialect !== "postgres") return Effect.void;
    const scope = yield* Effect.scope;
    let inFlight = false;
    let again = false;
    // On the pool, never in a transaction the caller may hold open: it would hold the NOTIFY back.
    const notify = Effect.tryPromise(() => sql`select pg_notify(${jobsChannel}, '')`.execute(db.kysely)).pipe(
      Effect.catchAllCause((cause) => Effect.logDebug("job announcement failed; workers poll", cause)),
    );
    // After a NOTIFY, requests wait this long to fold into the next one: a burst of writers (the
    // webhook intake commits hundreds of times a second) costs a few statements, not one each.
    const spacing = onWallClock(Effect.sleep(Duration.millis(announcementSpacingMs)));
    const settle = Effect.suspend(() => {
      if (again) return send;
      inFlight = false;
      return Effect.void;
    });
    const send: Effect.Effect<void> = Effect.suspend(() => {
      again = false;
      return notify.pipe(Effect.zipRight(spacing), Effect.zipRight(settle));
    });
    return Effect.suspend(() => {
      if (inFlight) {
        again = true;
        return Effect.void;
      }
      inFlight = true;
      return Effect.asVoid(Effect.forkIn(send, scope));
    });
  });

/** Jobs due more than this far ahead are left to the workers' polling, not to a timer. */
const maxTimerMs = 60_000;

/**
 * Runs `wake` when `at` comes, on a timer forked in `scope` (none when `at` is past, or more than
 * a minute ahead: polling finds those).
 */
export const wakeWhenDue = (at: Date, wake: Effect.Effect<void>, scope: Scope.Scope): Effect.Effect<void> =>
  Effect.flatMap(currentDate, (now) => {
    const delayMs = at.getTime() - now.getTime();
    if (delayMs <= 0 || delayMs > maxTimerMs) return Effect.void;
    // Interruptible: a commit hook runs uninterruptibly and a fork inherits that, so the timer
    // would otherwise hold the scope (a server's shutdown) open until it fires.
    return Effect.asVoid(
      Effect.forkIn(Effect.interruptible(Effect.zipRight(Effect.sleep(Duration.millis(delayMs)), wake)), scope),
    );
  });

/**
 * Tells every process's workers that a job comes due at `at` (a push drain waiting out its
 * window): a NOTIFY carrying the time, for each listener to wake its workers then. Without it, a
 * worker in another process than the enqueuer's (API and workers split) would find the job only
 * at its next poll. Sent once the rows are committed, as `makeJobAnnouncer`'s; never fails.
 */
export const makeDueAnnouncer = (db: DatabaseService): ((at: Date) => Effect.Effect<void>) =>
  db.dialect !== "postgres"
    ? () => Effect.void
    : (at) =>
        Effect.tryPromise(() => sql`select pg_notify(${jobsChannel}, ${at.toISOString()})`.execute(db.kysely)).pipe(
          Effect.catchAllCause((cause) => Effect.logDebug("job due-time announcement failed; workers poll", cause)),
        );

/** The due time a notification carries (see `makeDueAnnouncer`); undefined for "claimable now". */
const dueTimeOf = (payload: string | undefined): Date | undefined => {
  if (payload === undefined || payload === "") return undefined;
  const at = new Date(payload);
  return Number.isNaN(at.getTime()) ? undefined : at;
};

/**
 * Holds one dedicated connection LISTENing on the jobs channel and calls `wake` on
 * every notification, or `wakeAt` with the due time one carries. A pooled connection cannot be used: LISTEN belongs to one
 * session. When the connection drops (server restart), it reconnects with backoff
 * and wakes once, since notifications sent meanwhile are lost; polling covers the gap.
 */
export const listenForJobs = (
  url: string,
  wake: Effect.Effect<void>,
  wakeAt: (at: Date) => Effect.Effect<void>,
): Effect.Effect<never> => {
  const session = Effect.acquireUseRelease(
    Effect.tryPromise(async () => {
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
      // Without a listener, a dropped connection's 'error' event would crash the process.
      client.on("error", () => {});
      await client.connect();
      return client;
    }),
    (client) =>
      Effect.gen(function* () {
        const closed = Effect.async<void>((resume) => {
          client.on("notification", (message) => {
            const at = dueTimeOf(message.payload);
            Effect.runFork(at === undefined ? wake : wakeAt(at));
          });
          client.on("error", () => resume(Effect.void));
          client.on("end", () => resume(Effect.void));
        });
        yield* Effect.tryPromise(() => client.query(`listen ${jobsChannel}`));
        yield* wake;
        yield* closed;
        return yield* Effect.fail(new Error("job wake-up connection closed"));
      }),
    (client) => Effect.promise(() => client.end().catch(() => undefined)),
  );
  return session.pipe(
    Effect.tapError((e) => Effect.logDebug("job wake-up listener down; reconnecting", e)),
    Effect.retry(Schedule.exponential(Duration.millis(200)).pipe(Schedule.union(Schedule.spaced("5 seconds")))),
    Effect.forever,
  ) as Effect.Effect<never>;
};
