import { expect, layer } from "@effect/vitest";
import { leaseTerms, RateBudget, type RateBudgetSource, type TokenBucket } from "@tandem/connector-sdk/runtime";
import { Database, RateBudgets } from "@tandem/core";
import { testDatabaseLayer } from "@tandem/testkit";
import { Effect, Fiber, Layer, type Scope, TestClock, TestServices } from "effect";
import { deleteRateBudgetOf } from "../../src/connector/RateBudgetRows.ts";
import { postgresBudgetSource } from "../../src/connector/RateBudgets.ts";

/*
 * The shared rate budget on a real PostgreSQL database. Each "process" is a RateBudget of its own
 * (its own buckets, as in another OS process) over the same database; the OS-process version is
 * test/queue/rateBudget.test.ts. Time is a TestClock moved in small steps; after each step the
 * test waits (wall clock) until no lease is in flight, so the database's answers land at the
 * simulated time they were asked.
 */

/** Wall-clock sleep: lets database I/O started by a TestClock wake-up finish. */
const realSleep = (ms: number) => Effect.promise(() => new Promise((r) => setTimeout(r, ms)));

interface Process {
  readonly budget: Effect.Effect.Success<typeof RateBudget>;
  /** Leases asked of the database so far, and those not answered yet. */
  readonly leases: () => number;
  readonly inFlight: () => number;
}

/** A process's budgets over the database: the engine's PostgreSQL source, its leases counted. */
const processOn = (db: Effect.Effect.Success<typeof Database>): Process => {
  const source = postgresBudgetSource(db);
  let leases = 0;
  let inFlight = 0;
  const counted: RateBudgetSource = {
    lease: (connectionId, request) =>
      Effect.acquireUseRelease(
        Effect.sync(() => {
          leases++;
          inFlight++;
        }),
        () => source.lease(connectionId, request),
        () => Effect.sync(() => void inFlight--),
      ),
    block: (connectionId, untilMs, now) =>
      Effect.acquireUseRelease(
        Effect.sync(() => void inFlight++),
        () => source.block(connectionId, untilMs, now),
        () => Effect.sync(() => void inFlight--),
      ),
  };
  return { budget: RateBudget.shared(counted), leases: () => leases, inFlight: () => inFlight };
};

/** Until no process has a statement in flight (twice in a row, fibers given time to react). */
const quiesce = (processes: ReadonlyArray<Process>) =>
  Effect.gen(function* () {
    let quiet = 0;
    while (quiet < 2) {
      yield* Effect.yieldNow().pipe(Effect.repeatN(10));
      yield* realSleep(1);
      quiet = processes.every((p) => p.inFlight() === 0) ? quiet + 1 : 0;
    }
  });

/** Moves the TestClock `totalMs` forward in `stepMs` steps, letting every lease answer at each step. */
const advance = (processes: ReadonlyArray<Process>, totalMs: number, stepMs: number) =>
  Effect.gen(function* () {
    yield* quiesce(processes);
    for (let t = 0; t < totalMs; t += stepMs) {
      yield* TestClock.adjust(stepMs);
      yield* quiesce(processes);
    }
  });

/** `concurrency` requests at a time, each spending a token the moment it gets one: as greedy as a client can be. */
const spendGreedily = (
  bucket: TokenBucket,
  spends: Array<number>,
  concurrency: number,
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.asVoid(
    Effect.forkScoped(
      Effect.forEach(
        Array.from({ length: concurrency }),
        () =>
          Effect.forever(
            Effect.zipRight(
              bucket.acquire,
              Effect.flatMap(TestClock.currentTimeMillis, (now) => Effect.sync(() => void spends.push(now))),
            ),
          ),
        { concurrency: "unbounded", discard: true },
      ),
    ),
  );

/** The most spends in any interval of `lengthMs` (a start at each spend, the end exclusive). */
const mostIn = (spends: ReadonlyArray<number>, lengthMs: number) => {
  const sorted = [...spends].sort((a, b) => a - b);
  let most = 0;
  let end = 0;
  for (let start = 0; start < sorted.length; start++) {
    while (end < sorted.length && sorted[end]! < sorted[start]! + lengthMs) end++;
    most = Math.max(most, end - start);
  }
  return most;
};

const isDone = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) => Effect.map(fiber.poll, (o) => o._tag === "Some");

layer(testDatabaseLayer("postgres"), { timeout: 180_000 })("the shared rate budget on PostgreSQL", (it) => {
  it.scoped(
    "3 processes spending greedily on one connection never exceed burst + rate·T, and together get the rate",
    () =>
      Effect.gen(function* () {
        const db = yield* Database;
        const connectionId = crypto.randomUUID();
        const policy = { requestsPerSecond: 20, burst: 20 };
        const processes = [processOn(db), processOn(db), processOn(db)];
        const spends = processes.map(() => [] as Array<number>);
        for (const [i, p] of processes.entries()) {
          yield* spendGreedily(yield* p.budget.forConnection(connectionId, policy), spends[i]!, 2);
        }
        const seconds = 10;
        yield* advance(processes, seconds * 1_000, 10);
        const all = spends.flat();
        // The bound a single bucket gives: burst + rate·T in any interval T, at every scale.
        for (const lengthMs of [1, 100, 250, 500, 1_000, 2_000, 5_000, 10_000]) {
          expect(mostIn(all, lengthMs), `spends in ${lengthMs} ms`).toBeLessThanOrEqual(20 + (20 * lengthMs) / 1_000);
        }
        // Not starved: the budget over the run is burst + rate·T = 220; leases that expire unspent lose a few.
        expect(all.length).toBeGreaterThanOrEqual(0.9 * 20 * seconds);
        // Every process gets a share, and requests cost far fewer than one round trip each.
        for (const s of spends) expect(s.length).toBeGreaterThanOrEqual(0.15 * all.length);
        const leases = processes.reduce((n, p) => n + p.leases(), 0);
        expect(leases).toBeLessThanOrEqual(all.length / 3);
        console.log(
          `3 processes, 20/s burst 20, ${seconds} s: ${all.length} spends (${spends.map((s) => s.length).join("/")}), ${leases} leases`,
        );
      }),
  );

  it.scoped("a leased token not spent within the lease window expires: the process no longer holds it", () =>
    Effect.gen(function* () {
      const db = yield* Database;
      const connectionId = crypto.randomUUID();
      const terms = leaseTerms(10, 10);
      expect(terms).toMatchObject({ windowMs: 500, maxTokens: 5 });
      const p = processOn(db);
      const bucket = yield* p.budget.forConnection(connectionId, { requestsPerSecond: 10, burst: 10 });
      yield* bucket.acquire;
      // Spending the first lease's only token took the next lease in the background.
      yield* quiesce([p]);
      expect(p.leases()).toBe(2);
      const held = yield* bucket.available;
      expect(held).toBeGreaterThan(0);
      yield* TestClock.adjust(terms.windowMs - 1);
      expect(yield* bucket.available).toBe(held);
      yield* TestClock.adjust(1);
      expect(yield* bucket.available).toBe(0);
      // The next request leases anew.
      yield* bucket.acquire;
      expect(p.leases()).toBe(3);
    }),
  );

  it.scoped("a crashed holder's share returns: after it dies the other process gets the whole rate", () =>
    Effect.gen(function* () {
      const db = yield* Database;
      const connectionId = crypto.randomUUID();
      const policy = { requestsPerSecond: 10, burst: 10 };
      const [a, b] = [processOn(db), processOn(db)];
      const spendsA: Array<number> = [];
      const spendsB: Array<number> = [];
      const crashed = yield* Effect.fork(
        Effect.scoped(
          Effect.zipRight(spendGreedily(yield* a.budget.forConnection(connectionId, policy), spendsA, 2), Effect.never),
        ),
      );
      yield* spendGreedily(yield* b.budget.forConnection(connectionId, policy), spendsB, 2);
      yield* advance([a, b], 3_000, 10);
      expect(spendsA.length).toBeGreaterThan(5);
      expect(spendsB.length).toBeGreaterThan(5);
      // A dies holding leases (its process gone: no release, no goodbye).
      yield* Fiber.interrupt(crashed);
      const diedAt = yield* TestClock.currentTimeMillis;
      const before = spendsB.length;
      yield* advance([a, b], 5_000, 10);
      // At most A's unspent leases are lost (two leases of at most maxTokens); B then has it all.
      const afterDeath = spendsB.slice(before);
      expect(afterDeath.length).toBeGreaterThanOrEqual(10 * 5 - 2 * leaseTerms(10, 10).maxTokens);
      const lastSeconds = afterDeath.filter((t) => t >= diedAt + 2_000);
      expect(lastSeconds.length).toBeGreaterThanOrEqual(10 * 3 - 1);
    }),
  );

  it.effect("when PostgreSQL is slow to answer a lease, requests wait for it: none goes out unbudgeted", () =>
    Effect.gen(function* () {
      const db = yield* Database;
      const connectionId = crypto.randomUUID();
      const policy = { requestsPerSecond: 10, burst: 10 };
      yield* (yield* processOn(db).budget.forConnection(connectionId, policy)).acquire;
      // Another session holds the connection's row: every lease waits for it, as behind a slow database.
      const holder = yield* Effect.promise(() => db.kysely.startTransaction().execute());
      yield* Effect.promise(() =>
        holder.selectFrom("rate_budgets").selectAll().where("connection_id", "=", connectionId).forUpdate().execute(),
      );
      const b = processOn(db);
      const bucket = yield* b.budget.forConnection(connectionId, policy);
      const requests = yield* Effect.fork(Effect.all([bucket.acquire, bucket.acquire, bucket.acquire]));
      yield* realSleep(1_500);
      expect(b.inFlight()).toBe(1);
      expect(yield* isDone(requests)).toBe(false);
      yield* Effect.promise(() => holder.commit().execute());
      // The late answer's lease had expired on arrival (its window is 500 ms): taken again, then spent.
      yield* Fiber.join(requests);
      expect(b.leases()).toBeGreaterThanOrEqual(2);
    }).pipe(TestServices.provideLive),
  );

  it.scoped("a 429's Retry-After seen by one process holds back every process", () =>
    Effect.gen(function* () {
      const db = yield* Database;
      const connectionId = crypto.randomUUID();
      const policy = { requestsPerSecond: 10, burst: 10 };
      const [a, b] = [processOn(db), processOn(db)];
      const bucketA = yield* a.budget.forConnection(connectionId, policy);
      yield* bucketA.acquire;
      yield* bucketA.observe(undefined, 2_000);
      yield* quiesce([a, b]);
      const bucketB = yield* b.budget.forConnection(connectionId, policy);
      const next = yield* Effect.fork(bucketB.acquire);
      yield* quiesce([a, b]);
      yield* TestClock.adjust(1_999);
      yield* quiesce([a, b]);
      expect(yield* isDone(next)).toBe(false);
      yield* TestClock.adjust(1);
      yield* quiesce([a, b]);
      yield* Fiber.join(next);
    }),
  );

  it.scoped("a vendor's 'nothing remains until the reset' seen by one process holds back every process", () =>
    Effect.gen(function* () {
      const db = yield* Database;
      const connectionId = crypto.randomUUID();
      const policy = { requestsPerSecond: 10, burst: 10 };
      const [a, b] = [processOn(db), processOn(db)];
      const bucketA = yield* a.budget.forConnection(connectionId, policy);
      yield* bucketA.acquire;
      yield* bucketA.observe({ remaining: 0, resetAfterMs: 5_000 });
      yield* quiesce([a, b]);
      const next = yield* Effect.fork(Effect.flatMap(b.budget.forConnection(connectionId, policy), (B) => B.acquire));
      yield* quiesce([a, b]);
      yield* TestClock.adjust(4_999);
      yield* quiesce([a, b]);
      expect(yield* isDone(next)).toBe(false);
      yield* TestClock.adjust(1);
      yield* quiesce([a, b]);
      yield* Fiber.join(next);
    }),
  );

  it.scoped("a low remaining count seen by one process empties the shared bucket for the others", () =>
    Effect.gen(function* () {
      const db = yield* Database;
      const policy = { requestsPerSecond: 10, burst: 10 };
      const terms = leaseTerms(10, 10);
      // Without the hint, a second process's first request goes out at once.
      const control = crypto.randomUUID();
      const [c1, c2] = [processOn(db), processOn(db)];
      yield* (yield* c1.budget.forConnection(control, policy)).acquire;
      yield* (yield* c2.budget.forConnection(control, policy)).acquire;

      const connectionId = crypto.randomUUID();
      const [a, b] = [processOn(db), processOn(db)];
      const bucketA = yield* a.budget.forConnection(connectionId, policy);
      // The vendor says nothing remains (no reset given): A's next lease tells the shared bucket.
      yield* bucketA.observe({ remaining: 0 });
      const first = yield* Effect.fork(bucketA.acquire);
      yield* quiesce([a, b]);
      expect(yield* isDone(first)).toBe(false);
      yield* TestClock.adjust(terms.costMs);
      yield* quiesce([a, b]);
      yield* Fiber.join(first);
      // B never saw the header, yet waits for the refill too (behind A's next lease, taken early).
      const second = yield* Effect.fork(Effect.flatMap(b.budget.forConnection(connectionId, policy), (B) => B.acquire));
      yield* quiesce([a, b]);
      expect(yield* isDone(second)).toBe(false);
      const asked = yield* TestClock.currentTimeMillis;
      while (!(yield* isDone(second))) {
        yield* TestClock.adjust(10);
        yield* quiesce([a, b]);
      }
      expect((yield* TestClock.currentTimeMillis) - asked).toBeLessThanOrEqual(4 * terms.costMs);
      yield* Fiber.join(second);
    }),
  );
});

for (const dialect of ["pglite", "postgres"] as const) {
  layer(RateBudgets.layer.pipe(Layer.provideMerge(testDatabaseLayer(dialect))), { timeout: 60_000 })(
    `the engine's rate budgets on ${dialect}`,
    (it) => {
      it.effect(
        dialect === "pglite"
          ? "stay in the process's memory: no row, no query"
          : "are shared through the connection's row, deleted with the connection",
        () =>
          Effect.gen(function* () {
            const db = yield* Database;
            const connectionId = crypto.randomUUID();
            // On the live clock: the shared bucket's refill (a lease that starts later) must come.
            const bucket = yield* (yield* RateBudget).forConnection(connectionId, { requestsPerSecond: 10, burst: 10 });
            for (let i = 0; i < 5; i++) yield* TestServices.provideLive(bucket.acquire);
            const rows = () =>
              db.query((k) => k.selectFrom("rate_budgets").select("connection_id").execute()).pipe(Effect.orDie);
            expect((yield* rows()).map((r) => r.connection_id)).toEqual(dialect === "pglite" ? [] : [connectionId]);
            if (dialect === "postgres") {
              yield* db.query((k) => deleteRateBudgetOf(k, connectionId)).pipe(Effect.orDie);
              expect(yield* rows()).toEqual([]);
            }
          }),
      );
    },
  );
}
