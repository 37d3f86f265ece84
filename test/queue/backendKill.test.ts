import { Database, type DatabaseConfig, JobQueue, RetryPolicy, syncLockKey } from "@tandem/core";
import { type BackendTerminator, backendTerminator, freshDatabaseConfig } from "@tandem/testkit";
import { Effect, Exit, Layer, ManagedRuntime, Schedule, Scope } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnWorkers, stopWorkers, type WorkerProcess, waitUntil } from "./processes.ts";

const SYNCS = 32;
const KILL_EVERY_MS = 500;

/**
 * PostgreSQL ends every backend of the suite's own database every half second, as
 * `pg_terminate_backend` does in a failover or an administrator's cleanup, while two worker
 * processes run syncs (a run row per attempt, the connection x entity lock, writes fenced by
 * it); one of them is killed with SIGKILL while it holds a sync. Every sync must complete, none
 * be dead-lettered, no run stay `running` and no lock row stay behind. Only this suite's
 * database is touched: other suites run on the same server at the same time.
 */
describe("syncs on 2 processes while PostgreSQL terminates the database's backends", () => {
  let scope: Scope.CloseableScope;
  let config: Extract<DatabaseConfig, { kind: "postgres" }>;
  let runtime: ManagedRuntime.ManagedRuntime<JobQueue | Database, unknown>;
  let workers: WorkerProcess[] = [];
  let killer: BackendTerminator | undefined;
  let killing: NodeJS.Timeout | undefined;

  /** The test's own reads meet the terminations too: one that fails is tried again. */
  const read = async <A>(f: (k: Database["Type"]["kysely"]) => Promise<A>): Promise<A> => {
    for (let i = 0; ; i++) {
      try {
        return await runtime.runPromise(Effect.flatMap(Database, (db) => Effect.tryPromise(() => f(db.kysely))));
      } catch (error) {
        if (i >= 50) throw error;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };

  beforeAll(async () => {
    scope = Effect.runSync(Scope.make());
    config = (await Effect.runPromise(Scope.extend(freshDatabaseConfig("postgres"), scope))) as typeof config;
    runtime = ManagedRuntime.make(
      JobQueue.layerNoDeps.pipe(
        Layer.provideMerge(RetryPolicy.layer),
        Layer.provideMerge(Database.layer({ ...config, poolSize: 2 })),
      ),
    );
    await runtime.runPromise(Effect.void);
  }, 60_000);

  afterAll(async () => {
    clearInterval(killing);
    await killer?.close();
    await stopWorkers(workers);
    await runtime?.dispose();
    await Effect.runPromise(Scope.close(scope, Exit.void));
  }, 60_000);

  it("every sync completes: none dead-lettered, no run left running, no lock left", { timeout: 120_000 }, async () => {
    const tenantId = crypto.randomUUID();
    const connectionIds = Array.from({ length: SYNCS / 2 }, () => crypto.randomUUID());
    await read(async (k) => {
      await k.insertInto("tenants").values({ id: tenantId, name: "t" }).execute();
      await k
        .insertInto("connections")
        .values(
          connectionIds.map((id) => ({ id, tenant_id: tenantId, connector: "x", name: id, config_ciphertext: "-" })),
        )
        .execute();
    });
    workers = await spawnWorkers(2, {
      url: config.url,
      concurrency: 8,
      leaseMs: 2_000,
      heartbeatMs: 300,
      reapMs: 300,
      pollMs: 200,
      poolSize: 4,
    });

    killer = await backendTerminator(config);
    let terminated = 0;
    let rounds = 0;
    const terminate = async () => {
      terminated += await killer!.terminate();
      rounds++;
    };
    killing = setInterval(() => void terminate().catch(() => undefined), KILL_EVERY_MS);

    // Enqueued under the terminations too: an enqueue whose connection was ended is tried again,
    // and one that had committed answers AlreadyRunning with the job's id.
    const enqueue = (connectionId: string, entity: string) =>
      Effect.flatMap(JobQueue, (q) =>
        q.enqueue({
          kind: "fenced-sync",
          tenantId,
          connectionId,
          payload: { tenantId, connectionId, entity, pages: 10, ms: 80 },
          dedupeKey: syncLockKey(connectionId, entity),
        }),
      ).pipe(
        Effect.map((r) => r.id),
        Effect.catchTag("AlreadyRunning", (e) => Effect.succeed(e.jobId)),
        Effect.catchAllDefect((defect) => Effect.fail(defect)),
        Effect.retry({ times: 50, schedule: Schedule.spaced("50 millis") }),
      );
    const ids = await runtime.runPromise(
      Effect.forEach(
        connectionIds.flatMap((connectionId) => ["contacts", "companies"].map((entity) => ({ connectionId, entity }))),
        ({ connectionId, entity }) => enqueue(connectionId, entity),
      ),
    );
    expect(new Set(ids).size).toBe(SYNCS);

    // The victim holds a sync when it is killed: its lease must expire and its lock be taken over.
    const holder = await waitUntil(
      () =>
        read((k) =>
          k
            .selectFrom("jobs")
            .select(["id", "locked_by"])
            .where("status", "=", "running")
            .where("id", "in", ids)
            .execute(),
        ),
      (rows) => rows.some((r) => r.locked_by !== null),
      30_000,
    );
    const victim = workers.find((w) => w.workerId === holder.find((r) => r.locked_by !== null)!.locked_by)!;
    victim.process.kill("SIGKILL");
    expect((await victim.exited).signal).toBe("SIGKILL");
    const survivor = workers.find((w) => w !== victim)!;

    const statuses = () => read((k) => k.selectFrom("jobs").select(["id", "status"]).where("id", "in", ids).execute());
    const final = await waitUntil(
      statuses,
      (rows) => rows.every((r) => r.status === "completed" || r.status === "dead" || r.status === "cancelled"),
      90_000,
    );
    clearInterval(killing);
    killing = undefined;

    const history = await read((k) =>
      k.selectFrom("job_attempts").select(["job_id", "outcome", "error"]).where("job_id", "in", ids).execute(),
    );
    const outcomes: Record<string, number> = {};
    for (const a of history) {
      const key = a.error === null ? a.outcome : `${a.outcome}:${a.error.tag}`;
      outcomes[key] = (outcomes[key] ?? 0) + 1;
    }
    console.log(
      `${rounds} termination rounds ended ${terminated} backends; attempt outcomes of ${SYNCS} syncs:`,
      outcomes,
    );
    expect(terminated).toBeGreaterThan(0);
    expect(
      final.filter((r) => r.status !== "completed"),
      survivor.output(),
    ).toEqual([]);
    expect(await runtime.runPromise(Effect.flatMap(JobQueue, (q) => q.deadLetters()))).toEqual([]);
    // The victim's sync was taken back after its lease expired and completed by the survivor.
    expect(history.some((a) => a.outcome === "lease_expired")).toBe(true);

    const runs = await read((k) =>
      k.selectFrom("sync_runs").select(["job_id", "status"]).where("job_id", "in", ids).execute(),
    );
    expect(runs.filter((r) => r.status === "running")).toEqual([]);
    for (const id of ids) {
      expect(runs.filter((r) => r.job_id === id && r.status === "succeeded").length).toBe(1);
    }
    expect(await read((k) => k.selectFrom("locks").select("key").execute())).toEqual([]);

    await stopWorkers([survivor]);
    expect(survivor.process.exitCode, survivor.output()).toBe(0);
  });
});
