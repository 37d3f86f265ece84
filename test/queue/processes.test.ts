import { Database, type DatabaseConfig, JobQueue, Locks, RetryPolicy, syncLockKey } from "@tandem/core";
import { freshDatabaseConfig } from "@tandem/testkit";
import { Effect, Exit, Layer, ManagedRuntime, Scope } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnWorkers, stopWorkers, type WorkerProcess, waitUntil } from "./processes.ts";

/**
 * Three OS processes share one PostgreSQL database, as N Tandem servers would.
 * The test process only enqueues and inspects; the workers do all the work.
 */
describe("job queue across 3 processes on one PostgreSQL", () => {
  let scope: Scope.CloseableScope;
  let config: Extract<DatabaseConfig, { kind: "postgres" }>;
  let runtime: ManagedRuntime.ManagedRuntime<JobQueue | Database | Locks, unknown>;
  let workers: WorkerProcess[] = [];
  const run = <A, E>(effect: Effect.Effect<A, E, JobQueue | Database | Locks>) => runtime.runPromise(effect);
  const query = <R>(f: (db: Database["Type"]["kysely"]) => Promise<R>) =>
    run(Effect.flatMap(Database, (db) => Effect.promise(() => f(db.kysely))));

  beforeAll(async () => {
    scope = Effect.runSync(Scope.make());
    config = (await Effect.runPromise(Scope.extend(freshDatabaseConfig("postgres"), scope))) as typeof config;
    runtime = ManagedRuntime.make(
      Layer.mergeAll(JobQueue.layerNoDeps, Locks.layer).pipe(
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

  it("2,000 jobs are processed exactly once", { timeout: 60_000 }, async () => {
    workers = await spawnWorkers(3, { url: config.url, concurrency: 20, pollMs: 200 });
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
    await stopWorkers(workers);
    expect(workers.map((w) => w.process.exitCode)).toEqual([0, 0, 0]);
  });

  it("jobs held by a process killed with SIGKILL complete on the others after the lease expires", {
    timeout: 60_000,
  }, async () => {
    workers = await spawnWorkers(3, {
      url: config.url,
      concurrency: 5,
      leaseMs: 1_500,
      heartbeatMs: 300,
      reapMs: 300,
      pollMs: 200,
    });
    const [victim, ...survivors] = workers as [WorkerProcess, ...WorkerProcess[]];
    const ids = await run(
      Effect.flatMap(JobQueue, (q) =>
        q.enqueueMany(Array.from({ length: 30 }, () => ({ kind: "slow", payload: { ms: 700 } }))),
      ),
    );
    await waitUntil(
      () =>
        query((k) =>
          k
            .selectFrom("jobs")
            .select("id")
            .where("locked_by", "=", victim.workerId)
            .where("status", "=", "running")
            .execute(),
        ),
      (rows) => rows.length >= 3,
      10_000,
    );
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
    await stopWorkers(workers);
  });

  it("two simultaneous triggers of one sync give one run and one already_running", { timeout: 30_000 }, async () => {
    workers = await spawnWorkers(3, { url: config.url, concurrency: 5, pollMs: 200 });
    const tenantId = crypto.randomUUID();
    const connectionId = crypto.randomUUID();
    await query(async (k) => {
      await k.insertInto("tenants").values({ id: tenantId, name: "t" }).execute();
      await k
        .insertInto("connections")
        .values({ id: connectionId, tenant_id: tenantId, connector: "x", name: "c", config_ciphertext: "-" })
        .execute();
    });
    const at = Date.now() + 300;
    const [a, b] = workers as [WorkerProcess, WorkerProcess];
    for (const w of [a, b]) w.send({ cmd: "trigger", at, connectionId, entity: "contacts", ms: 500 });
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
    await stopWorkers(workers);
  });
});
