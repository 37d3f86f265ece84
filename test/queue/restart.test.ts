import { Database, JobQueue, RetryPolicy } from "@tandem/core";
import { Effect, Layer, ManagedRuntime } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type PrivatePostgres, startPrivatePostgres } from "./privatePostgres.ts";
import { spawnWorkers, stopWorkers, type WorkerProcess, waitUntil } from "./processes.ts";

describe("a PostgreSQL restart while jobs run", () => {
  let server: PrivatePostgres;
  let runtime: ManagedRuntime.ManagedRuntime<JobQueue | Database, unknown>;
  let workers: WorkerProcess[] = [];
  /** Reads that may hit the restart window answer undefined instead of failing the test. */
  const read = <A>(f: (db: Database["Type"]["kysely"]) => Promise<A>) =>
    runtime.runPromise(Effect.flatMap(Database, (db) => Effect.tryPromise(() => f(db.kysely)))).catch(() => undefined);

  beforeAll(async () => {
    server = await startPrivatePostgres();
    runtime = ManagedRuntime.make(
      JobQueue.layerNoDeps.pipe(
        Layer.provideMerge(RetryPolicy.layer),
        Layer.provideMerge(Database.layer({ kind: "postgres", url: server.url, poolSize: 2 })),
      ),
    );
    await runtime.runPromise(Effect.void);
  }, 60_000);

  afterAll(async () => {
    await stopWorkers(workers);
    await runtime?.dispose();
    await server?.stop();
  }, 60_000);

  it("the processes reconnect and finish every job; none is left leased", { timeout: 60_000 }, async () => {
    workers = await spawnWorkers(3, {
      url: server.url,
      concurrency: 5,
      leaseMs: 3_000,
      heartbeatMs: 500,
      reapMs: 500,
      pollMs: 200,
    });
    const ids = await runtime.runPromise(
      Effect.flatMap(JobQueue, (q) =>
        q.enqueueMany(Array.from({ length: 300 }, () => ({ kind: "slow", payload: { ms: 100 } }))),
      ),
    );
    const completed = () =>
      read((k) =>
        k
          .selectFrom("jobs")
          .select((eb) => eb.fn.countAll<string>().as("n"))
          .where("status", "=", "completed")
          .executeTakeFirstOrThrow(),
      );
    await waitUntil(completed, (r) => Number(r?.n ?? 0) >= 40, 20_000);
    await server.restart();
    const before = Number((await completed())?.n ?? 0);
    expect(before).toBeLessThan(300);

    await waitUntil(completed, (r) => Number(r?.n ?? 0) === 300, 40_000);
    // The processes survived the restart: none crashed, all still serve.
    expect(
      workers.map((w) => w.process.exitCode),
      workers.map((w) => w.output()).join("\n"),
    ).toEqual([null, null, null]);
    const rows = await read((k) =>
      k.selectFrom("jobs").select(["id", "status", "locked_by"]).where("id", "in", ids).execute(),
    );
    expect(rows?.filter((r) => r.status !== "completed" || r.locked_by !== null)).toEqual([]);
    const history = await read((k) => k.selectFrom("job_attempts").select(["job_id", "outcome"]).execute());
    const outcomes: Record<string, number> = {};
    for (const a of history ?? []) outcomes[a.outcome] = (outcomes[a.outcome] ?? 0) + 1;
    console.log(`restarted with ${before}/300 jobs done; attempt outcomes:`, outcomes);
    const attempts = history?.filter((a) => a.outcome === "completed");
    expect(attempts?.length).toBe(300);
    expect(new Set(attempts?.map((a) => a.job_id)).size).toBe(300);
    await stopWorkers(workers);
    expect(workers.map((w) => w.process.exitCode)).toEqual([0, 0, 0]);
  });
});
