import { describe, expect, it } from "@effect/vitest";
import { Database, type DatabaseConfig } from "@tandem/core";
import { freshDatabaseConfig } from "@tandem/testkit";
import { Cause, Effect, Exit, Fiber, Layer } from "effect";
import { sql } from "kysely";
import pg from "pg";

/** Wall-clock sleep (it.effect runs on TestClock, which never advances by itself). */
const realSleep = (ms: number) => Effect.promise(() => new Promise((r) => setTimeout(r, ms)));

/** A connection of the test's own to the same database, outside the pool under test. */
const adminClient = (url: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      return client;
    }),
    (client) => Effect.promise(() => client.end()),
  );

/**
 * PostgreSQL ends a backend under a running statement, as `pg_terminate_backend` does in a
 * failover or an administrator's cleanup. Only this suite's own database is touched.
 */
describe("Database on postgres when a backend is terminated", () => {
  it.live("the statement on it fails; the pool never hands that connection to the next statement", () =>
    Effect.gen(function* () {
      const config = (yield* freshDatabaseConfig("postgres")) as Extract<DatabaseConfig, { kind: "postgres" }>;
      const databaseName = new URL(config.url).pathname.slice(1);
      const admin = yield* adminClient(config.url);
      // One connection: the next statement waits for exactly the one that is terminated.
      const db = yield* Effect.provide(Database, yield* Layer.build(Database.layer({ ...config, poolSize: 1 })));

      const victim = yield* Effect.fork(db.query((k) => sql`select pg_sleep(30)`.execute(k)).pipe(Effect.exit));
      const backendOf = () =>
        admin
          .query<{ pid: number }>(
            `select pid from pg_stat_activity
             where datname = $1 and pid <> pg_backend_pid() and query like '%pg_sleep(30)%' and state = 'active'`,
            [databaseName],
          )
          .then((r) => r.rows);
      let backends = yield* Effect.promise(backendOf);
      while (backends.length === 0) {
        yield* realSleep(20);
        backends = yield* Effect.promise(backendOf);
      }
      // Queued behind the victim for the pool's only connection.
      const next = yield* Effect.fork(
        db.query((k) => sql<{ one: number }>`select 1 as one`.execute(k)).pipe(Effect.exit),
      );
      yield* realSleep(50);
      yield* Effect.promise(() =>
        admin.query("select pg_terminate_backend($1) from pg_stat_activity where datname = $2 and pid = $1", [
          backends[0]!.pid,
          databaseName,
        ]),
      );

      const victimExit = yield* Fiber.join(victim);
      expect(Exit.isFailure(victimExit)).toBe(true);
      if (Exit.isFailure(victimExit)) {
        expect(Cause.pretty(victimExit.cause)).toContain("database connection failed");
      }
      const nextExit = yield* Fiber.join(next);
      expect(nextExit).toEqual(Exit.succeed(expect.objectContaining({ rows: [{ one: 1 }] })));
      const after = yield* db.query((k) => sql<{ one: number }>`select 1 as one`.execute(k));
      expect(after.rows).toEqual([{ one: 1 }]);
    }).pipe(Effect.scoped),
  );
});
