import { Duration, Effect, Schedule, type Scope } from "effect";
import { sql } from "kysely";
import pg from "pg";
import type { DatabaseService } from "../db/Database.ts";
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

/**
 * Holds one dedicated connection LISTENing on the jobs channel and calls `wake` on
 * every notification. A pooled connection cannot be used: LISTEN belongs to one
 * session. When the connection drops (server restart), it reconnects with backoff
 * and wakes once, since notifications sent meanwhile are lost; polling covers the gap.
 */
export const listenForJobs = (url: string, wake: Effect.Effect<void>): Effect.Effect<never> => {
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
          client.on("notification", () => Effect.runFork(wake));
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
