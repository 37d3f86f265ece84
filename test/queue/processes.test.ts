import {
  Database,
  type DatabaseConfig,
  JobQueue,
  Locks,
  RetryPolicy,
  Scheduler,
  type ScheduleView,
  syncLockKey,
} from "@tandem/core";
import { freshDatabaseConfig } from "@tandem/testkit";
import { Effect, Exit, Layer, ManagedRuntime, Scope } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnWorkers, stopWorkers, type WorkerProcess, waitUntil } from "./processes.ts";

/**
 * Three OS processes share one PostgreSQL database, as N Tandem servers would.
 * The test process only enqueues and inspects; the workers do all the work. The
 * processes are started once and serve every test; the SIGKILL test runs last.
 */
describe("job queue across 3 processes on one PostgreSQL", () => {
  let scope: Scope.CloseableScope;
  let config: Extract<DatabaseConfig, { kind: "postgres" }>;
  let runtime: ManagedRuntime.ManagedRuntime<JobQueue | Database | Locks | Scheduler, unknown>;
  let workers: WorkerProcess[] = [];
  let cron: { first: number; schedule: ScheduleView };
  const run = <A, E>(effect: Effect.Effect<A, E, JobQueue | Database | Locks | Scheduler>) =>
    runtime.runPromise(effect);
  const query = <R>(f: (db: Database["Type"]["kysely"]) => Promise<R>) =>
    run(Effect.flatMap(Database, (db) => Effect.promise(() => f(db.kysely))));

  beforeAll(async () => {
    scope = Effect.runSync(Scope.make());
    config = (await Effect.runPromise(Scope.extend(freshDatabaseConfig("postgres"), scope))) as typeof config;
    runtime = ManagedRuntime.make(
      Layer.mergeAll(Scheduler.layerNoDeps, Locks.layer).pipe(
        Layer.provideMerge(JobQueue.layerNoDeps),
        Layer.provideMerge(RetryPolicy.layer),
        Layer.provideMerge(Database.layer(config)),
      ),
    );
    await runtime.runPromise(Effect.void);
    // One set of processes serves every test below (the SIGKILL test runs last).
    workers = await spawnWorkers(3, {
      url: config.url,
      concurrency: 20,
      leaseMs: 1_500,
      heartbeatMs: 300,
      reapMs: 300,
      pollMs: 200,
      scheduler: true,
    });
    // Ten consecutive seconds starting 2 s from now (every process runs the scheduler fiber);
    // the expression repeats them only a minute later, after the tests are over.
    const first = Math.ceil(Date.now() / 1000) * 1000 + 2_000;
    const seconds = Array.from({ length: 10 }, (_, i) => ((first / 1000 + i) % 60).toString());
    const schedule = await run(
      Effect.flatMap(Scheduler, (s) =>
        s.upsert({ name: "ten-ticks", cron: `${seconds.join(",")} * * * * *`, kind: "tick" }),
      ),
    );
    cron = { first, schedule };
  }, 60_000);

  afterAll(async () => {
    await stopWorkers(workers);
    await runtime?.dispose();
    await Effect.runPromise(Scope.close(scope, Exit.void));
  });

  it("2,000 jobs are processed exactly once", { timeout: 60_000 }, async () => {
    const ids = await run(
      Effect.flatMap(JobQueue, (q) =>
        q.enqueueMany(Array.from({ length: 2_000 }, (_, i) => ({ kind: "noop", payload: { i } }))),
      ),
    );
    expect(new Set(ids).size).toBe(2_000);
    await waitUntil(
      () =>
        query((k) =>
          k
            .selectFrom("jobs")
            .select((eb) => eb.fn.countAll<string>().as("n"))
            .where("kind", "=", "noop")
            .where("status", "=", "completed")
            .executeTakeFirstOrThrow(),
        ),
      (r) => Number(r.n) === 2_000,
      30_000,
    );
    const attempts = await query((k) =>
      k
        .selectFrom("job_attempts")
        .innerJoin("jobs", "jobs.id", "job_attempts.job_id")
        .select(["job_attempts.job_id", "job_attempts.outcome", "job_attempts.worker"])
        .where("jobs.kind", "=", "noop")
        .execute(),
    );
    // One attempt per job, and it completed: no job ran twice, none was lost.
    expect(attempts.length).toBe(2_000);
    expect(new Set(attempts.map((a) => a.job_id)).size).toBe(2_000);
    expect(attempts.every((a) => a.outcome === "completed")).toBe(true);
    const perWorker = new Map<string, number>();
    for (const a of attempts) perWorker.set(a.worker, (perWorker.get(a.worker) ?? 0) + 1);
    console.log("jobs per worker process:", Object.fromEntries(perWorker));
    expect(perWorker.size).toBeGreaterThanOrEqual(2);
  });

  it("two simultaneous triggers of one sync give one run and one already_running", { timeout: 30_000 }, async () => {
    const tenantId = crypto.randomUUID();
    const connectionId = crypto.randomUUID();
    await query(async (k) => {
      await k.insertInto("tenants").values({ id: tenantId, name: "t" }).execute();
      await k
        .insertInto("connections")
        .values({ id: connectionId, tenant_id: tenantId, connector: "x", name: "c", config_ciphertext: "-" })
        .execute();
    });
    const at = Date.now() + 500;
    const [a, b] = workers as [WorkerProcess, WorkerProcess];
    for (const w of [a, b]) w.send({ cmd: "trigger", at, connectionId, entity: "contacts", ms: 1_500 });
    const results = await Promise.all([a, b].map((w) => w.waitFor((e) => e.event === "triggered")));
    expect(results.map((r) => r.status).sort()).toEqual(["already_running", "enqueued"]);
    expect(results[0]?.jobId).toBe(results[1]?.jobId);
    const jobId = String(results[0]?.jobId);
    const job = await run(Effect.flatMap(JobQueue, (q) => q.get(jobId)));
    expect(job.dedupeKey).toBe(syncLockKey(connectionId, "contacts"));
    await waitUntil(
      () => run(Effect.flatMap(JobQueue, (q) => q.get(jobId))),
      (j) => j.status === "completed",
      10_000,
    );
    const runs = await run(Effect.flatMap(JobQueue, (q) => q.attempts(jobId)));
    expect(runs.map((r) => r.outcome)).toEqual(["completed"]);
    const syncs = await query((k) =>
      k.selectFrom("jobs").select("id").where("connection_id", "=", connectionId).execute(),
    );
    expect(syncs.length).toBe(1);
    // The run held the connection x entity lock row and released it.
    const lock = await query((k) =>
      k.selectFrom("locks").select("token").where("key", "=", syncLockKey(connectionId, "contacts")).execute(),
    );
    expect(lock).toEqual([]);
  });

  it("a cron schedule running for 10 ticks gives exactly 10 jobs, each run once", { timeout: 45_000 }, async () => {
    // Created when the processes started, the schedule ticked while the tests above ran.
    const { first, schedule } = cron;
    const ticks = () =>
      query((k) =>
        k.selectFrom("schedule_ticks").selectAll().where("schedule_id", "=", schedule.id).orderBy("tick_at").execute(),
      );
    await waitUntil(ticks, (rows) => rows.length >= 10, 20_000);
    // Give a further (wrong) tick time to show up, then stop the schedule.
    await new Promise((r) => setTimeout(r, 1_200));
    await run(Effect.flatMap(Scheduler, (s) => s.pause("ten-ticks")));
    const fired = await ticks();
    expect(fired.map((t) => t.tick_at.getTime())).toEqual(Array.from({ length: 10 }, (_, i) => first + i * 1000));
    await waitUntil(
      () => run(Effect.flatMap(JobQueue, (q) => q.list({ kind: "tick" }))),
      (jobs) => jobs.length === 10 && jobs.every((j) => j.status === "completed"),
      10_000,
    );
    const jobs = await run(Effect.flatMap(JobQueue, (q) => q.list({ kind: "tick" })));
    expect(new Set(fired.map((t) => t.job_id))).toEqual(new Set(jobs.map((j) => j.id)));
    expect(jobs.every((j) => j.attempts === 1)).toBe(true);
  });

  it("jobs held by a process killed with SIGKILL complete on the others after the lease expires", {
    timeout: 60_000,
  }, async () => {
    const ids = await run(
      Effect.flatMap(JobQueue, (q) =>
        q.enqueueMany(Array.from({ length: 60 }, () => ({ kind: "slow", payload: { ms: 700 } }))),
      ),
    );
    // The victim is whichever process first holds at least 3 running jobs.
    const holders = await waitUntil(
      () =>
        query((k) =>
          k
            .selectFrom("jobs")
            .select(["locked_by", (eb) => eb.fn.countAll<string>().as("n")])
            .where("status", "=", "running")
            .where("kind", "=", "slow")
            .groupBy("locked_by")
            .execute(),
        ),
      (rows) => rows.some((r) => Number(r.n) >= 3),
      10_000,
    );
    const victimId = holders.find((r) => Number(r.n) >= 3)!.locked_by;
    const victim = workers.find((w) => w.workerId === victimId)!;
    const survivors = workers.filter((w) => w !== victim);
    victim.process.kill("SIGKILL");
    expect((await victim.exited).signal).toBe("SIGKILL");
    // What the dead process still held: leased to it, and nobody will renew that lease.
    const orphans = (
      await query((k) =>
        k
          .selectFrom("jobs")
          .select("id")
          .where("locked_by", "=", victim.workerId)
          .where("status", "=", "running")
          .execute(),
      )
    ).map((r) => r.id);
    expect(orphans.length).toBeGreaterThan(0);
    await waitUntil(
      () => query((k) => k.selectFrom("jobs").select(["id", "status"]).where("id", "in", ids).execute()),
      (rows) => rows.every((r) => r.status === "completed"),
      20_000,
    );
    const attempts = await query((k) =>
      k
        .selectFrom("job_attempts")
        .select(["job_id", "outcome", "worker", "attempt"])
        .where("job_id", "in", ids)
        .orderBy("id")
        .execute(),
    );
    for (const id of ids) {
      const history = attempts.filter((a) => a.job_id === id);
      expect(history.filter((a) => a.outcome === "completed").length).toBe(1);
    }
    const survivorIds = new Set(survivors.map((w) => w.workerId));
    for (const id of orphans) {
      const history = attempts.filter((a) => a.job_id === id);
      expect(history.map((a) => a.outcome)).toEqual(["lease_expired", "completed"]);
      expect(history[0]?.worker).toBe(victim.workerId);
      expect(survivorIds.has(history[1]!.worker)).toBe(true);
    }
    // The survivors shut down gracefully on SIGTERM.
    await stopWorkers(survivors);
    expect(survivors.map((w) => w.process.exitCode)).toEqual([0, 0]);
  });
});
