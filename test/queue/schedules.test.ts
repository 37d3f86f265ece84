import { Database, type DatabaseConfig, JobQueue, RetryPolicy, Scheduler } from "@tandem/core";
import { freshDatabaseConfig } from "@tandem/testkit";
import { Effect, Exit, Layer, ManagedRuntime, Scope } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnWorkers, stopWorkers, type WorkerProcess, waitUntil } from "./processes.ts";

/** Every process runs the scheduler fiber; the database makes each tick one job. */
describe("cron schedule across 3 processes on one PostgreSQL", () => {
  let scope: Scope.CloseableScope;
  let config: Extract<DatabaseConfig, { kind: "postgres" }>;
  let runtime: ManagedRuntime.ManagedRuntime<Scheduler | JobQueue | Database, unknown>;
  let workers: WorkerProcess[] = [];

  beforeAll(async () => {
    scope = Effect.runSync(Scope.make());
    config = (await Effect.runPromise(Scope.extend(freshDatabaseConfig("postgres"), scope))) as typeof config;
    runtime = ManagedRuntime.make(
      Scheduler.layer().pipe(
        Layer.provideMerge(JobQueue.layerNoDeps),
        Layer.provideMerge(RetryPolicy.layer()),
        Layer.provideMerge(Database.layer(config)),
      ),
    );
    await runtime.runPromise(Effect.void);
  });

  afterAll(async () => {
    await stopWorkers(workers);
    await runtime?.dispose();
    await Effect.runPromise(Scope.close(scope, Exit.void));
  });

  it("a schedule running for 10 ticks gives exactly 10 jobs, each run once", { timeout: 45_000 }, async () => {
    workers = await spawnWorkers(3, { url: config.url, scheduler: true, pollMs: 200 });
    // Ten consecutive seconds starting 2 s from now; the expression repeats them only
    // a minute later, long after the test has stopped the processes.
    const first = Math.ceil(Date.now() / 1000) * 1000 + 2_000;
    const seconds = Array.from({ length: 10 }, (_, i) => ((first / 1000 + i) % 60).toString());
    const schedule = await runtime.runPromise(
      Effect.flatMap(Scheduler, (s) =>
        s.upsert({ name: "ten-ticks", cron: `${seconds.join(",")} * * * * *`, kind: "tick" }),
      ),
    );
    const ticks = () =>
      runtime.runPromise(
        Effect.flatMap(Database, (db) =>
          Effect.promise(() =>
            db.kysely
              .selectFrom("schedule_ticks")
              .selectAll()
              .where("schedule_id", "=", schedule.id)
              .orderBy("tick_at")
              .execute(),
          ),
        ),
      );
    await waitUntil(ticks, (rows) => rows.length >= 10, 20_000);
    // Let a further (wrong) tick show up if the processes were to produce one.
    await new Promise((r) => setTimeout(r, 1_500));
    await stopWorkers(workers);

    const fired = await ticks();
    expect(fired.map((t) => t.tick_at.getTime())).toEqual(Array.from({ length: 10 }, (_, i) => first + i * 1000));
    const jobs = await runtime.runPromise(Effect.flatMap(JobQueue, (q) => q.list({ kind: "tick" })));
    expect(jobs.length).toBe(10);
    expect(new Set(fired.map((t) => t.job_id))).toEqual(new Set(jobs.map((j) => j.id)));
    expect(jobs.every((j) => j.status === "completed" && j.attempts === 1)).toBe(true);
  });
});
