import { expect, layer } from "@effect/vitest";
import { Database, JobQueue, RetryPolicy, Scheduler, SYNC_JOB_KIND, syncLockKey } from "@tandem/core";
import { dialects, testDatabaseLayer } from "@tandem/testkit";
import { Effect, Fiber, Layer, TestClock } from "effect";

/** Wall-clock sleep: lets database I/O started by a TestClock wake-up finish. */
const realSleep = (ms: number) => Effect.promise(() => new Promise((r) => setTimeout(r, ms)));

const servicesLayer = (dialect: (typeof dialects)[number]) =>
  Scheduler.layerNoDeps.pipe(
    Layer.provideMerge(JobQueue.layerNoDeps),
    Layer.provideMerge(RetryPolicy.layer),
    Layer.provideMerge(testDatabaseLayer(dialect)),
  );

const jobsOf = (kind: string) =>
  Effect.flatMap(JobQueue, (q) => q.list({ kind, limit: 1_000 })).pipe(
    Effect.map((jobs) => [...jobs].sort((a, b) => a.createdAt.localeCompare(b.createdAt))),
  );

const ticksOf = (scheduleId: string) =>
  Effect.flatMap(Database, (db) =>
    db.query((k) =>
      k.selectFrom("schedule_ticks").selectAll().where("schedule_id", "=", scheduleId).orderBy("tick_at").execute(),
    ),
  ).pipe(Effect.orDie);

const makeConnection = Effect.gen(function* () {
  const db = yield* Database;
  const tenantId = crypto.randomUUID();
  const connectionId = crypto.randomUUID();
  yield* db.query((k) => k.insertInto("tenants").values({ id: tenantId, name: "t" }).execute());
  yield* db.query((k) =>
    k
      .insertInto("connections")
      .values({ id: connectionId, tenant_id: tenantId, connector: "x", name: connectionId, config_ciphertext: "-" })
      .execute(),
  );
  return { tenantId, connectionId };
}).pipe(Effect.orDie);

for (const dialect of dialects) {
  layer(servicesLayer(dialect), { timeout: 60_000 })(`Scheduler on ${dialect}`, (it) => {
    it.effect("a minute schedule driven by TestClock for 10 minutes gives exactly 10 jobs, one per tick", () =>
      Effect.gen(function* () {
        const scheduler = yield* Scheduler;
        const kind = `every-minute-${crypto.randomUUID()}`;
        const start = yield* TestClock.currentTimeMillis;
        const schedule = yield* scheduler.upsert({ name: kind, cron: "* * * * *", kind, payload: { n: 1 } });
        const fiber = yield* Effect.fork(
          Effect.scoped(Effect.zipRight(scheduler.run({ pollMs: 3_600_000 }), Effect.never)),
        );
        yield* realSleep(50);
        for (let minute = 1; minute <= 10; minute++) {
          yield* TestClock.adjust("1 minute");
          // Let the pass this minute woke finish (real I/O) before the clock moves on;
          // a jump past the tolerance would rightly count as downtime.
          const started = performance.now();
          while ((yield* ticksOf(schedule.id)).length < minute && performance.now() - started < 5_000) {
            yield* realSleep(10);
          }
        }
        yield* Fiber.interrupt(fiber);
        const ticks = yield* ticksOf(schedule.id);
        const firstMinute = Math.floor(start / 60_000) * 60_000 + 60_000;
        expect(ticks.map((t) => t.tick_at.getTime())).toEqual(
          Array.from({ length: 10 }, (_, i) => firstMinute + i * 60_000),
        );
        const jobs = yield* jobsOf(kind);
        expect(jobs.length).toBe(10);
        expect(new Set(ticks.map((t) => t.job_id))).toEqual(new Set(jobs.map((j) => j.id)));
        expect(jobs[0]?.payload).toEqual({ n: 1 });
        expect(jobs[0]?.priority).toBe(2);
      }),
    );

    it.effect("after downtime a missed tick runs once; concurrent passes fire a tick once", () =>
      Effect.gen(function* () {
        const scheduler = yield* Scheduler;
        const kind = `downtime-${crypto.randomUUID()}`;
        const schedule = yield* scheduler.upsert({ name: kind, cron: "*/5 * * * *", kind });
        // Nobody runs the scheduler for three hours: 36 ticks missed.
        yield* TestClock.adjust("3 hours");
        const fired = yield* Effect.all([scheduler.fireDue, scheduler.fireDue, scheduler.fireDue], {
          concurrency: "unbounded",
        });
        expect(fired.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1);
        expect((yield* ticksOf(schedule.id)).length).toBe(1);
        expect((yield* jobsOf(kind)).length).toBe(1);
        // Nothing more is due until the next tick.
        yield* scheduler.fireDue;
        expect((yield* jobsOf(kind)).length).toBe(1);
        yield* TestClock.adjust("5 minutes");
        yield* scheduler.fireDue;
        expect((yield* jobsOf(kind)).length).toBe(2);
      }),
    );

    it.effect("a late pass still fires each late tick; ticks missed in downtime fire once", () =>
      Effect.gen(function* () {
        const scheduler = yield* Scheduler;
        const kind = `late-${crypto.randomUUID()}`;
        const schedule = yield* scheduler.upsert({ name: kind, cron: "* * * * * *", kind });
        const start = Math.floor((yield* TestClock.currentTimeMillis) / 1000) * 1000;
        // A busy process comes round 3 s late: within the tolerance, so 3 ticks, 3 jobs.
        yield* TestClock.adjust("3 seconds");
        yield* scheduler.fireDue;
        expect((yield* ticksOf(schedule.id)).length).toBe(3);
        // Down for a minute: 60 missed ticks run once.
        yield* TestClock.adjust("60 seconds");
        yield* scheduler.fireDue;
        const ticks = yield* ticksOf(schedule.id);
        expect(ticks.map((t) => t.tick_at.getTime() - start)).toEqual([1_000, 2_000, 3_000, 63_000]);
        expect((yield* jobsOf(kind)).length).toBe(4);
        yield* scheduler.remove(kind);
      }),
    );

    it.effect("paused schedules and paused connections fire nothing; resume starts from now", () =>
      Effect.gen(function* () {
        const scheduler = yield* Scheduler;
        const { connectionId } = yield* makeConnection;
        const kind = `paused-${crypto.randomUUID()}`;
        yield* scheduler.upsert({ name: kind, cron: "* * * * *", kind, connectionId });
        const other = yield* scheduler.upsert({ name: `${kind}-b`, cron: "* * * * *", kind: `${kind}-b` });
        yield* scheduler.pause(kind);
        yield* scheduler.pauseConnection(connectionId);
        yield* TestClock.adjust("10 minutes");
        yield* scheduler.fireDue;
        expect((yield* jobsOf(kind)).length).toBe(0);
        expect((yield* jobsOf(`${kind}-b`)).length).toBe(1);
        expect((yield* scheduler.resume(kind)).paused).toBe(false);
        yield* scheduler.resumeConnection(connectionId);
        yield* scheduler.fireDue;
        expect((yield* jobsOf(kind)).length).toBe(0);
        yield* TestClock.adjust("1 minute");
        yield* scheduler.fireDue;
        expect((yield* jobsOf(kind)).length).toBe(1);
        yield* scheduler.remove(other.name);
      }),
    );

    it.effect(
      "sync schedules: delta every 15 min and reconcile daily by default; a tick waits for a live sync, then runs once",
      () =>
        Effect.gen(function* () {
          const scheduler = yield* Scheduler;
          const queue = yield* JobQueue;
          const { connectionId, tenantId } = yield* makeConnection;
          const views = yield* scheduler.ensureSyncSchedules({ connectionId, entity: "contacts", tenantId });
          expect(views.map((v) => [v.name, v.cron, v.priority])).toEqual([
            [`sync:${connectionId}:contacts:delta`, "*/15 * * * *", 2],
            [`sync:${connectionId}:contacts:reconcile`, "0 3 * * *", 3],
          ]);
          const custom = yield* scheduler.ensureSyncSchedules({
            connectionId,
            entity: "companies",
            deltaCron: "*/5 * * * *",
            reconcileCron: null,
          });
          expect(custom.map((v) => v.cron)).toEqual(["*/5 * * * *"]);
          // A manual sync of contacts is running: its delta tick does not start a second one.
          const manual = yield* queue.enqueue({
            kind: SYNC_JOB_KIND,
            connectionId,
            payload: { connectionId, entity: "contacts", mode: "full" },
            dedupeKey: syncLockKey(connectionId, "contacts"),
          });
          yield* TestClock.adjust("15 minutes");
          yield* scheduler.fireDue;
          const entityOf = (j: { payload: unknown }) => (j.payload as { entity: string }).entity;
          const modeOf = (j: { payload: unknown }) => (j.payload as { mode: string }).mode;
          const jobs = yield* queue.list({ connectionId, kind: SYNC_JOB_KIND });
          expect(jobs.map(entityOf).sort()).toEqual(["companies", "contacts"]);
          expect(jobs.find((j) => entityOf(j) === "contacts")?.id).toBe(manual.id);
          const delta = views[0]!;
          expect((yield* ticksOf(delta.id)).length).toBe(0);
          // Two more ticks pass while it runs; once it is over, the waiting tick runs once.
          yield* TestClock.adjust("30 minutes");
          yield* scheduler.fireDue;
          expect((yield* ticksOf(delta.id)).length).toBe(0);
          yield* queue.cancel(manual.id);
          yield* scheduler.fireDue;
          const after = yield* queue.list({ connectionId, kind: SYNC_JOB_KIND, status: "queued" });
          expect(after.filter((j) => entityOf(j) === "contacts").map(modeOf)).toEqual(["delta"]);
          const ticks = yield* ticksOf(delta.id);
          expect(ticks.length).toBe(1);
          expect(ticks[0]?.job_id).toBe(after.find((j) => entityOf(j) === "contacts")?.id);
          const invalid = yield* scheduler.upsert({ name: "bad", cron: "every day", kind: "x" }).pipe(Effect.flip);
          expect(invalid._tag).toBe("InvalidInput");
        }),
    );
  });
}
