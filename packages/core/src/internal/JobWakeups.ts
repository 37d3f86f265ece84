import { Duration, Effect, Schedule } from "effect";
import pg from "pg";

/** The channel the `jobs_notify` trigger (migration 0003) notifies when a job becomes claimable. */
export const jobsChannel = "tandem_jobs";

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
