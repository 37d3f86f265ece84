import { fileURLToPath } from "node:url";
import {
  Database,
  type DatabaseConfig,
  defineSyncJob,
  JobQueue,
  RetryPolicy,
  registerSyncJob,
  Scheduler,
  SyncJobQueue,
  triggerSync,
} from "@tandem/core";
import { freshDatabaseConfig } from "@tandem/testkit";
import { Effect, Exit, Layer, ManagedRuntime, Scope } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnWorker, stopWorkers, type WorkerProcess, waitUntil } from "./processes.ts";

const fixture = fileURLToPath(new URL("./fixtures/syncJobWorker.ts", import.meta.url));

/**
 * Registered SyncJobs on the engine across 3 OS processes on one PostgreSQL: each process
 * registers the same jobs and schedules one every minute; the scheduler's minutes pass on a
 * TestClock the test moves in all of them at once. The test process triggers through the
 * Promise API, on an engine of its own that runs no worker.
 */
describe("SyncJobs across 3 processes on one PostgreSQL", () => {
  let scope: Scope.CloseableScope;
  let config: Extract<DatabaseConfig, { kind: "postgres" }>;
  let runtime: ManagedRuntime.ManagedRuntime<JobQueue | Database | Scheduler | SyncJobQueue, unknown>;
  let workers: WorkerProcess[] = [];
  // An hour ago on a minute boundary: the ticks' jobs are due at once for the workers' real clock.
  const clockStart = Math.floor(Date.now() / 60_000) * 60_000 - 3_600_000;
  const query = <R>(f: (db: Database["Type"]["kysely"]) => Promise<R>) =>
    runtime.runPromise(Effect.flatMap(Database, (db) => Effect.promise(() => f(db.kysely))));

  beforeAll(async () => {
    scope = Effect.runSync(Scope.make());
    config = (await Effect.runPromise(Scope.extend(freshDatabaseConfig("postgres"), scope))) as typeof config;
    runtime = ManagedRuntime.make(
      Layer.mergeAll(SyncJobQueue.layerNoDeps).pipe(
        Layer.provideMerge(Scheduler.layerNoDeps),
        Layer.provideMerge(JobQueue.layerNoDeps),
        Layer.provideMerge(RetryPolicy.layer),
        Layer.provideMerge(Database.layer(config)),
      ),
    );
    await runtime.runPromise(Effect.void);
    workers = await Promise.all(
      [1, 2, 3].map((i) => spawnWorker({ url: config.url, name: `p${i}`, leaseMs: 1_500, clockStart }, fixture)),
    );
  }, 120_000);

  afterAll(async () => {
    await stopWorkers(workers);
    await runtime?.dispose();
    await Effect.runPromise(Scope.close(scope, Exit.void));
  });

  it("a SyncJob scheduled every minute on 3 processes runs exactly once per tick", { timeout: 60_000 }, async () => {
    const ran = () => workers.flatMap((w) => w.events.filter((e) => e.event === "ran").map(() => w.name));
    const minutes = 5;
    for (let minute = 1; minute <= minutes; minute++) {
      for (const w of workers) w.send({ cmd: "clock", at: clockStart + minute * 60_000 });
      await waitUntil(
        async () => ran().length,
        (n) => n >= minute,
        15_000,
      );
      // Let every process's pass of this tick end before the next minute (as the Scheduler test does).
      await new Promise((r) => setTimeout(r, 300));
    }
    // A while longer: a second run of any tick would show now.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(ran().length).toBe(minutes);
    const schedule = await query((k) =>
      k.selectFrom("schedules").selectAll().where("name", "=", "sync-job:minutely").executeTakeFirstOrThrow(),
    );
    expect(schedule.cron).toBe("* * * * *");
    const ticks = await query((k) =>
      k.selectFrom("schedule_ticks").selectAll().where("schedule_id", "=", schedule.id).orderBy("tick_at").execute(),
    );
    expect(ticks.map((t) => t.tick_at.getTime())).toEqual(
      Array.from({ length: minutes }, (_, i) => clockStart + (i + 1) * 60_000),
    );
    const jobs = await query((k) => k.selectFrom("jobs").selectAll().where("kind", "=", "sync-job").execute());
    expect(jobs.length).toBe(minutes);
    expect(jobs.every((j) => j.status === "completed" && j.attempts === 1)).toBe(true);
    expect(jobs.map((j) => j.payload)).toEqual(Array.from({ length: minutes }, () => ({ name: "minutely" })));
    console.log("scheduled runs per process:", ran());
  });

  it("a triggered SyncJob survives a SIGKILL of the process that claimed it", { timeout: 60_000 }, async () => {
    // This process runs no worker: it enqueues, and waits for whichever process runs the job.
    registerSyncJob(
      defineSyncJob<{ id: string }, unknown>({
        name: "slow",
        fetchExternal: () => [],
        getExternalId: (i) => i.id,
        findLocal: () => null,
        create: () => {},
        update: () => {},
      }),
    );
    const result = triggerSync("slow");
    const claimer = await Promise.any(
      workers.map((w) => w.waitFor((e) => e.event === "started" && e.job === "slow", 15_000).then(() => w)),
    );
    claimer.process.kill("SIGKILL");
    await claimer.exited;
    const others = workers.filter((w) => w !== claimer);
    const finisher = await Promise.any(
      others.map((w) => w.waitFor((e) => e.event === "completed" && e.job === "slow", 30_000).then(() => w)),
    );
    expect(await result).toMatchObject({ name: "slow", created: 10, errors: [] });
    expect(claimer.events.some((e) => e.event === "completed")).toBe(false);
    const jobs = await query((k) =>
      k
        .selectFrom("jobs")
        .selectAll()
        .where("kind", "=", "sync-job")
        .where("payload", "@>", '{"name":"slow"}')
        .execute(),
    );
    expect(jobs.length).toBe(1);
    expect(jobs[0]?.status).toBe("completed");
    const attempts = await query((k) =>
      k.selectFrom("job_attempts").selectAll().where("job_id", "=", jobs[0]!.id).orderBy("finished_at").execute(),
    );
    expect(attempts.map((a) => a.outcome)).toEqual(["lease_expired", "completed"]);
    expect(attempts[0]?.worker).toBe(claimer.workerId);
    expect(attempts[1]?.worker).toBe(finisher.workerId);
  });
});
