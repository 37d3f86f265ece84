import { describe, expect, it, layer } from "@effect/vitest";
import {
  AlreadyRunning,
  AuthExpired,
  Database,
  type InvalidInput,
  InvalidRecord,
  JobQueue,
  type JobView,
  RateLimited,
  RetryPolicy,
  RetryPolicyConfig,
  Unavailable,
} from "@tandem/core";
import { dialects, testDatabaseLayer } from "@tandem/testkit";
import { Context, Deferred, Effect, Exit, Fiber, Layer, Random, Scope, TestClock, TestServices } from "effect";

/** Wall-clock sleep (it.effect runs on TestClock, which never advances by itself). */
const realSleep = (ms: number) => Effect.promise(() => new Promise((r) => setTimeout(r, ms)));

/** Waits (in real time) until `check` holds, failing the test after `timeoutMs`. */
const eventually = <A, R>(read: Effect.Effect<A, never, R>, check: (a: A) => boolean, timeoutMs = 10_000) =>
  Effect.gen(function* () {
    const started = performance.now();
    while (true) {
      const value = yield* read;
      if (check(value)) return value;
      if (performance.now() - started > timeoutMs) {
        return yield* Effect.die(new Error(`condition not met in ${timeoutMs} ms: ${JSON.stringify(value)}`));
      }
      yield* realSleep(20);
    }
  });

/** A worker in a scope of its own, running until the returned fiber is interrupted (which shuts it down). */
const forkWorker = (options: Parameters<Context.Tag.Service<typeof JobQueue>["worker"]>[0]) =>
  Effect.flatMap(JobQueue, (queue) => Effect.fork(Effect.scoped(Effect.zipRight(queue.worker(options), Effect.never))));

const statusOf = (id: string) => Effect.flatMap(JobQueue, (q) => Effect.orDie(q.get(id)));
const until = (id: string, status: JobView["status"]) => eventually(statusOf(id), (j) => j.status === status);

/** Fast worker settings for tests; leases and polls in tens of milliseconds. */
const fast = { pollMs: 50, leaseMs: 2_000, heartbeatMs: 200, shutdownTimeoutMs: 2_000 } as const;

const queueLayer = (dialect: (typeof dialects)[number]) =>
  JobQueue.layerNoDeps.pipe(
    Layer.provideMerge(RetryPolicy.layer),
    Layer.provideMerge(Layer.succeed(RetryPolicyConfig, { baseDelayMs: 10, maxDelayMs: 50, defaultMaxAttempts: 3 })),
    Layer.provideMerge(testDatabaseLayer(dialect)),
  );

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
  layer(queueLayer(dialect), { timeout: 60_000 })(`JobQueue on ${dialect}`, (it) => {
    /** A test on the real clock: workers poll and lease in wall-clock time. */
    const live = <E>(name: string, body: () => Effect.Effect<void, E, JobQueue | Database | RetryPolicy>) =>
      it.effect(name, () => TestServices.provideLive(body()));

    live("runs every job once, highest priority first", () =>
      Effect.gen(function* () {
        const queue = yield* JobQueue;
        const seen: string[] = [];
        const kind = `order-${crypto.randomUUID()}`;
        const ids = [];
        for (const priority of ["backfill", "delta", "webhook", "onDemand"] as const) {
          ids.push((yield* queue.enqueue({ kind, payload: { priority }, priority })).id);
        }
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* queue.worker({
              ...fast,
              concurrency: 1,
              handlers: {
                [kind]: (job) => Effect.sync(() => seen.push((job.payload as { priority: string }).priority)),
              },
            });
            yield* eventually(
              Effect.sync(() => seen.length),
              (n) => n === 4,
            );
          }),
        );
        expect(seen).toEqual(["webhook", "onDemand", "delta", "backfill"]);
        for (const id of ids) {
          const job = yield* statusOf(id);
          expect(job.status).toBe("completed");
          const history = yield* queue.attempts(id);
          expect(history.map((a) => a.outcome)).toEqual(["completed"]);
        }
      }),
    );

    live(
      "wakes idle workers at once, once the jobs are committed (another process's by NOTIFY on PostgreSQL, a nudge on PGlite)",
      () =>
        Effect.gen(function* () {
          const queue = yield* JobQueue;
          const db = yield* Database;
          const kind = `wake-${crypto.randomUUID()}`;
          yield* Effect.scoped(
            Effect.gen(function* () {
              yield* queue.worker({ pollMs: 60_000, leaseMs: 5_000, handlers: { [kind]: () => Effect.void } });
              yield* realSleep(300); // the worker's first poll is over; it now sleeps for a minute
              // On PostgreSQL the job comes from another process: a second queue on its own pool,
              // whose only way to reach this worker is its announcement.
              const enqueuer =
                db.connectionUrl === undefined
                  ? queue
                  : Context.get(
                      yield* Layer.build(
                        JobQueue.layer.pipe(
                          Layer.provide(
                            Database.layer({ kind: "postgres", url: db.connectionUrl }, { migrate: false }),
                          ),
                        ),
                      ),
                      JobQueue,
                    );
              // Enqueued in a transaction that stays open for a while: nothing may be announced
              // before its commit (a worker woken early would find nothing and sleep on).
              const id = yield* db.transaction(
                Effect.gen(function* () {
                  const job = yield* Effect.orDie(enqueuer.enqueue({ kind }));
                  yield* realSleep(300);
                  return job.id;
                }),
              );
              yield* eventually(statusOf(id), (j) => j.status === "completed", 3_000);
            }),
          );
        }),
    );

    live(
      "wakes idle workers when a job queued for later comes due (another process's by the due time its NOTIFY carries)",
      () =>
        Effect.gen(function* () {
          const queue = yield* JobQueue;
          const db = yield* Database;
          const kind = `due-${crypto.randomUUID()}`;
          const startedAt: Array<number> = [];
          yield* Effect.scoped(
            Effect.gen(function* () {
              yield* queue.worker({
                pollMs: 60_000,
                leaseMs: 5_000,
                handlers: { [kind]: () => Effect.sync(() => void startedAt.push(Date.now())) },
              });
              yield* realSleep(300); // the worker's first poll is over; it now sleeps for a minute
              // On PostgreSQL the job comes from another process (a second queue on its own pool):
              // only its announcements reach this worker, and the job is not due when it is queued.
              const enqueuer =
                db.connectionUrl === undefined
                  ? queue
                  : Context.get(
                      yield* Layer.build(
                        JobQueue.layer.pipe(
                          Layer.provide(
                            Database.layer({ kind: "postgres", url: db.connectionUrl }, { migrate: false }),
                          ),
                        ),
                      ),
                      JobQueue,
                    );
              const runAt = new Date(Date.now() + 800);
              const { id } = yield* Effect.orDie(enqueuer.enqueue({ kind, runAt }));
              yield* eventually(statusOf(id), (j) => j.status === "completed", 5_000);
              expect(startedAt[0]).toBeGreaterThanOrEqual(runAt.getTime());
            }),
          );
        }),
    );

    live("wakes its worker when a retried job's backoff is over, not at the next poll", () =>
      Effect.gen(function* () {
        const queue = yield* JobQueue;
        const kind = `backoff-${crypto.randomUUID()}`;
        const startedAt: Array<number> = [];
        const { id } = yield* queue.enqueue({ kind });
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* queue.worker({
              // The worker polls once a minute: only a wake-up can run the retry within seconds.
              pollMs: 60_000,
              leaseMs: 5_000,
              handlers: {
                [kind]: () =>
                  Effect.suspend(() => {
                    startedAt.push(Date.now());
                    return startedAt.length === 1
                      ? Effect.fail(new RateLimited({ message: "slow down", retryAfterMs: 600 }))
                      : Effect.succeed({ ok: 1 });
                  }),
              },
            });
            yield* eventually(statusOf(id), (j) => j.status === "completed", 5_000);
          }),
        );
        expect(startedAt).toHaveLength(2);
        expect(startedAt[1]! - startedAt[0]!).toBeGreaterThanOrEqual(600);
      }),
    );

    live("retries transient errors with their history, then completes", () =>
      Effect.gen(function* () {
        const queue = yield* JobQueue;
        const kind = `flaky-${crypto.randomUUID()}`;
        let calls = 0;
        const { id } = yield* queue.enqueue({ kind });
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* queue.worker({
              ...fast,
              handlers: {
                [kind]: () =>
                  ++calls < 3 ? Effect.fail(new Unavailable({ message: `down ${calls}` })) : Effect.succeed({ ok: 1 }),
              },
            });
            yield* until(id, "completed");
          }),
        );
        const job = yield* statusOf(id);
        expect(job.attempts).toBe(3);
        expect(job.result).toEqual({ ok: 1 });
        const history = yield* queue.attempts(id);
        expect(history.map((a) => [a.attempt, a.outcome, a.error?.tag ?? null])).toEqual([
          [1, "failed", "Unavailable"],
          [2, "failed", "Unavailable"],
          [3, "completed", null],
        ]);
      }),
    );

    live("dead-letters after the last attempt, keeps the error history, replays and discards", () =>
      Effect.gen(function* () {
        const queue = yield* JobQueue;
        const kind = `doomed-${crypto.randomUUID()}`;
        let fail = true;
        const exhausted = (yield* queue.enqueue({ kind, maxAttempts: 2 })).id;
        const invalid = (yield* queue.enqueue({ kind: `${kind}-invalid` })).id;
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* queue.worker({
              ...fast,
              handlers: {
                [kind]: () => (fail ? Effect.fail(new Unavailable({ message: "still down" })) : Effect.void),
                [`${kind}-invalid`]: () => Effect.fail(new InvalidRecord({ message: "bad email", externalId: "7" })),
              },
            });
            yield* until(exhausted, "dead");
            yield* until(invalid, "dead");
            const history = yield* queue.attempts(exhausted);
            expect(history.map((a) => [a.attempt, a.outcome, a.error?.message])).toEqual([
              [1, "failed", "still down"],
              [2, "failed", "still down (gave up after 2 attempts)"],
            ]);
            // InvalidRecord is never retried: one attempt, straight to the dead-letter queue.
            expect((yield* statusOf(invalid)).attempts).toBe(1);
            const dead = yield* queue.deadLetters();
            expect(dead.map((j) => j.id)).toEqual(expect.arrayContaining([exhausted, invalid]));

            fail = false;
            yield* queue.replay(exhausted);
            yield* until(exhausted, "completed");
            expect((yield* queue.attempts(exhausted)).map((a) => a.outcome)).toEqual(["failed", "failed", "completed"]);
            yield* queue.discard(invalid);
            expect((yield* queue.get(invalid).pipe(Effect.flip))._tag).toBe("ResourceNotFound");
          }),
        );
      }),
    );

    live("refreshes credentials once on AuthExpired, and gives up if they are refused again", () =>
      Effect.gen(function* () {
        const queue = yield* JobQueue;
        const kind = `auth-${crypto.randomUUID()}`;
        let token = "old";
        let refreshes = 0;
        // Run in this order (priorities): each refreshes once.
        const recovers = (yield* queue.enqueue({ kind, payload: { recovers: true }, priority: "webhook" })).id;
        const refused = (yield* queue.enqueue({ kind, payload: { recovers: false }, priority: "backfill" })).id;
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* queue.worker({
              ...fast,
              concurrency: 1,
              handlers: {
                [kind]: {
                  run: (job) =>
                    (job.payload as { recovers: boolean }).recovers && token === "new"
                      ? Effect.succeed("ok")
                      : Effect.fail(new AuthExpired({})),
                  refreshCredentials: () =>
                    Effect.sync(() => {
                      refreshes++;
                      token = "new";
                    }),
                },
              },
            });
            yield* until(recovers, "completed");
            yield* until(refused, "dead");
          }),
        );
        expect(refreshes).toBe(2);
        expect((yield* statusOf(recovers)).attempts).toBe(1);
        expect((yield* statusOf(refused)).attempts).toBe(1);
      }),
    );

    live("a second job with a live dedupe key answers AlreadyRunning with the live job's id", () =>
      Effect.gen(function* () {
        const queue = yield* JobQueue;
        const key = `sync:${crypto.randomUUID()}:contacts`;
        const first = yield* queue.enqueue({ kind: "never-handled", dedupeKey: key });
        const error = yield* queue.enqueue({ kind: "never-handled", dedupeKey: key }).pipe(Effect.flip);
        expect(error).toBeInstanceOf(AlreadyRunning);
        expect((error as AlreadyRunning).jobId).toBe(first.id);
        // Inside a caller's transaction the refusal leaves the transaction usable.
        const db = yield* Database;
        const inTx = `${key}:tx`;
        const [kept, refused] = yield* db.transaction(
          Effect.all([
            queue.enqueue({ kind: "never-handled", dedupeKey: inTx }),
            queue.enqueue({ kind: "never-handled", dedupeKey: inTx }).pipe(Effect.flip),
          ]),
        );
        expect((refused as AlreadyRunning).jobId).toBe(kept.id);
        expect((yield* statusOf(kept.id)).status).toBe("queued");
        yield* queue.cancel(kept.id);
        const invalid = yield* queue.enqueue({ kind: " ", maxAttempts: 0, priority: 7 }).pipe(Effect.flip);
        expect(invalid._tag).toBe("InvalidInput");
        expect((invalid as InvalidInput).issues.map((i) => i.path)).toEqual(["kind", "priority", "maxAttempts"]);
        // Once the first is finished, the key is free again.
        yield* queue.cancel(first.id);
        const second = yield* queue.enqueue({ kind: "never-handled", dedupeKey: key });
        expect(second.id).not.toBe(first.id);
        yield* queue.cancel(second.id);
      }),
    );

    live("cancels a queued job at once and a running job at its next heartbeat", () =>
      Effect.gen(function* () {
        const queue = yield* JobQueue;
        const kind = `cancel-${crypto.randomUUID()}`;
        const queued = (yield* queue.enqueue({ kind: `${kind}-later` })).id;
        expect((yield* queue.cancel(queued)).status).toBe("cancelled");
        const started = yield* Deferred.make<void>();
        let finished = false;
        const running = (yield* queue.enqueue({ kind })).id;
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* queue.worker({
              ...fast,
              handlers: {
                [kind]: () =>
                  Deferred.succeed(started, undefined).pipe(
                    Effect.zipRight(Effect.never),
                    Effect.ensuring(Effect.sync(() => (finished = true))),
                  ),
              },
            });
            yield* Deferred.await(started);
            yield* queue.cancel(running);
            yield* until(running, "cancelled");
          }),
        );
        expect(finished).toBe(true);
        expect((yield* queue.attempts(running)).map((a) => a.outcome)).toEqual(["cancelled"]);
      }),
    );

    live("fencing: a holder whose lease expired cannot complete the job someone else holds", () =>
      Effect.gen(function* () {
        const queue = yield* JobQueue;
        const kind = `fenced-${crypto.randomUUID()}`;
        const release = yield* Deferred.make<void>();
        const started = yield* Deferred.make<void>();
        const runs: string[] = [];
        const { id } = yield* queue.enqueue({ kind });
        const staleScope = yield* Scope.make();
        // A worker that never renews its lease in time (a stalled process).
        const stale = yield* queue
          .worker({
            concurrency: 1,
            pollMs: 50,
            leaseMs: 100,
            heartbeatMs: 60_000,
            reapMs: 60_000,
            handlers: {
              [kind]: (job) =>
                Effect.gen(function* () {
                  runs.push(job.workerId);
                  yield* Deferred.succeed(started, undefined);
                  yield* Deferred.await(release);
                }),
            },
          })
          .pipe(Scope.extend(staleScope));
        yield* Deferred.await(started);
        yield* realSleep(150);
        expect(yield* queue.reapExpiredLeases).toBe(1);
        yield* Effect.scoped(
          Effect.gen(function* () {
            const fresh = yield* queue.worker({
              ...fast,
              handlers: { [kind]: (job) => Effect.sync(() => runs.push(job.workerId)) },
            });
            yield* until(id, "completed");
            expect(runs).toEqual([stale.id, fresh.id]);
          }),
        );
        yield* Deferred.succeed(release, undefined);
        yield* Scope.close(staleScope, Exit.void);
        const history = yield* queue.attempts(id);
        // A lease expiry is an infrastructure fault: it does not spend the attempt, which runs again.
        expect(history.map((a) => [a.attempt, a.outcome])).toEqual([
          [1, "lease_expired"],
          [1, "completed"],
        ]);
        expect((yield* statusOf(id)).status).toBe("completed");
      }),
    );

    live("bounds running jobs per connection", () =>
      Effect.gen(function* () {
        const queue = yield* JobQueue;
        const { connectionId, tenantId } = yield* makeConnection;
        const kind = `per-conn-${crypto.randomUUID()}`;
        let running = 0;
        let peak = 0;
        yield* queue.enqueueMany(Array.from({ length: 6 }, () => ({ kind, connectionId, tenantId })));
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* queue.worker({
              ...fast,
              concurrency: 10,
              perConnectionConcurrency: 2,
              handlers: {
                [kind]: () =>
                  Effect.acquireUseRelease(
                    Effect.sync(() => {
                      running++;
                      peak = Math.max(peak, running);
                    }),
                    () => realSleep(40),
                    () => Effect.sync(() => running--),
                  ),
              },
            });
            yield* eventually(queue.list({ kind, status: "completed" }), (jobs) => jobs.length === 6);
            expect(yield* queue.counts({ kind })).toEqual({
              queued: 0,
              running: 0,
              completed: 6,
              dead: 0,
              cancelled: 0,
            });
          }),
        );
        expect(peak).toBe(2);
      }),
    );

    live("shutdown lets running jobs finish within the deadline and releases the rest", () =>
      Effect.gen(function* () {
        const queue = yield* JobQueue;
        const kind = `shutdown-${crypto.randomUUID()}`;
        const started = yield* Deferred.make<void>();
        const quick = (yield* queue.enqueue({ kind, payload: { ms: 100 } })).id;
        const slow = (yield* queue.enqueue({ kind, payload: { ms: 60_000 } })).id;
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* queue.worker({
              ...fast,
              shutdownTimeoutMs: 400,
              handlers: {
                [kind]: (job) =>
                  Deferred.succeed(started, undefined).pipe(
                    Effect.zipRight(realSleep((job.payload as { ms: number }).ms)),
                  ),
              },
            });
            yield* eventually(queue.list({ kind, status: "running" }), (jobs) => jobs.length === 2);
          }),
        );
        expect((yield* statusOf(quick)).status).toBe("completed");
        const released = yield* statusOf(slow);
        expect(released.status).toBe("queued");
        expect(released.lockedBy).toBeNull();
        expect(released.attempts).toBe(0);
        expect((yield* queue.attempts(slow)).map((a) => a.outcome)).toEqual(["released"]);
        yield* queue.cancel(slow);
      }),
    );

    live("prunes completed jobs after the retention period, never live or dead ones", () =>
      Effect.gen(function* () {
        const queue = yield* JobQueue;
        const kind = `prune-${crypto.randomUUID()}`;
        const { id } = yield* queue.enqueue({ kind });
        const waiting = (yield* queue.enqueue({ kind: `${kind}-unhandled` })).id;
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* queue.worker({ ...fast, handlers: { [kind]: () => Effect.void } });
            yield* until(id, "completed");
          }),
        );
        yield* queue.prune(3_600_000);
        expect((yield* statusOf(id)).status).toBe("completed");
        yield* realSleep(20);
        expect(yield* queue.prune(10)).toBeGreaterThanOrEqual(1);
        expect((yield* queue.get(id).pipe(Effect.flip))._tag).toBe("ResourceNotFound");
        expect((yield* statusOf(waiting)).status).toBe("queued");
        yield* queue.cancel(waiting);
      }),
    );

    live("a burst of outcomes is settled together: each job once, with its own outcome and history", () =>
      Effect.gen(function* () {
        const queue = yield* JobQueue;
        const kind = `burst-${crypto.randomUUID()}`;
        const ids = yield* queue.enqueueMany(
          Array.from({ length: 40 }, (_, i) => ({ kind, payload: { i }, maxAttempts: 1 })),
        );
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* queue.worker({
              ...fast,
              concurrency: 20,
              handlers: {
                [kind]: (job) => {
                  const i = (job.payload as { i: number }).i;
                  // Odd jobs are rejected records: dead at once, never retried.
                  return i % 2 === 1
                    ? Effect.fail(new InvalidRecord({ message: `record ${i} is malformed` }))
                    : Effect.succeed({ i, doubled: i * 2 });
                },
              },
            });
            yield* eventually(
              Effect.map(queue.counts({ kind }), (c) => c.completed + c.dead),
              (n) => n >= 40,
            );
          }),
        );
        for (const [i, id] of ids.entries()) {
          const job = yield* statusOf(id);
          const history = yield* queue.attempts(id);
          if (i % 2 === 0) {
            expect([job.status, job.result]).toEqual(["completed", { i, doubled: i * 2 }]);
            expect(history.map((a) => [a.attempt, a.outcome, a.error])).toEqual([[1, "completed", null]]);
          } else {
            expect(job.status).toBe("dead");
            expect(job.lastError?.message).toContain(`record ${i} is malformed`);
            expect(history.map((a) => [a.attempt, a.outcome, a.error?.tag])).toEqual([[1, "failed", "InvalidRecord"]]);
          }
          expect(job.lockedBy).toBeNull();
          expect(job.finishedAt).not.toBeNull();
        }
      }),
    );

    live("a result holding a NUL character is stored with U+FFFD in its place; an escaped one stays text", () =>
      Effect.gen(function* () {
        const queue = yield* JobQueue;
        const kind = `nul-${crypto.randomUUID()}`;
        const { id } = yield* queue.enqueue({ kind });
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* queue.worker({
              ...fast,
              handlers: { [kind]: () => Effect.succeed({ raw: "a\u0000b", text: "c\\u0000d" }) },
            });
            yield* until(id, "completed");
          }),
        );
        expect((yield* statusOf(id)).result).toEqual({ raw: "a\ufffdb", text: "c\\u0000d" });
      }),
    );

    live(
      "prefetch: jobs are claimed ahead, run at most `concurrency` at a time, and shutdown hands the waiting ones back uncounted",
      () =>
        Effect.gen(function* () {
          const queue = yield* JobQueue;
          const kind = `prefetch-${crypto.randomUUID()}`;
          const ids = yield* queue.enqueueMany(Array.from({ length: 6 }, () => ({ kind })));
          const gate = yield* Deferred.make<void>();
          let running = 0;
          let mostAtOnce = 0;
          const scope = yield* Scope.make();
          const worker = yield* queue
            .worker({
              ...fast,
              concurrency: 1,
              prefetch: 3,
              shutdownTimeoutMs: 300,
              handlers: {
                [kind]: () =>
                  Effect.gen(function* () {
                    running++;
                    mostAtOnce = Math.max(mostAtOnce, running);
                    yield* Deferred.await(gate);
                  }).pipe(Effect.ensuring(Effect.sync(() => running--))),
              },
            })
            .pipe(Scope.extend(scope));
          // One running and three waiting: four leased to this worker, two left for others.
          const leased = yield* eventually(
            Effect.map(queue.list({ kind, status: "running" }), (jobs) => jobs),
            (jobs) => jobs.length === 4,
          );
          expect(leased.every((j) => j.lockedBy === worker.id)).toBe(true);
          expect((yield* worker.running).length).toBe(4);
          yield* realSleep(200);
          expect(mostAtOnce).toBe(1);
          expect((yield* queue.counts({ kind })).queued).toBe(2);
          // Shutdown: the three waiting are released at once, the running one after the timeout.
          yield* Scope.close(scope, Exit.void);
          expect(mostAtOnce).toBe(1);
          for (const id of ids) {
            const job = yield* statusOf(id);
            expect([job.status, job.attempts, job.lockedBy]).toEqual(["queued", 0, null]);
          }
          const released = yield* Effect.forEach(leased, (j) => queue.attempts(j.id));
          expect(released.map((h) => h.map((a) => a.outcome))).toEqual([
            ["released"],
            ["released"],
            ["released"],
            ["released"],
          ]);
          yield* Effect.forEach(ids, (id) => queue.cancel(id), { discard: true });
        }),
    );

    it.effect("backoff follows the TestClock: a rate-limited job waits its Retry-After, not a moment less", () =>
      Effect.gen(function* () {
        const queue = yield* JobQueue;
        const kind = `backoff-${crypto.randomUUID()}`;
        const runs: number[] = [];
        const { id } = yield* queue.enqueue({ kind });
        const fiber = yield* forkWorker({
          pollMs: 1_000,
          leaseMs: 600_000,
          handlers: {
            [kind]: () =>
              Effect.gen(function* () {
                runs.push(yield* TestClock.currentTimeMillis);
                if (runs.length === 1) return yield* new RateLimited({ retryAfterMs: 5_000 });
              }),
          },
        });
        yield* eventually(statusOf(id), (j) => j.status === "queued" && j.attempts === 1);
        // Polls at 1 s, 2 s, 3 s, 4 s find nothing due.
        for (let s = 0; s < 4; s++) {
          yield* TestClock.adjust("1 second");
          yield* realSleep(30);
        }
        expect(runs).toEqual([0]);
        expect((yield* statusOf(id)).runAt).toBe(new Date(5_000).toISOString());
        yield* TestClock.adjust("1 second");
        yield* until(id, "completed");
        expect(runs).toEqual([0, 5_000]);
        yield* Fiber.interrupt(fiber);
      }),
    );

    it.effect(
      "shutdown's deadline is wall-clock time: under a TestClock a job still running is released, not waited for",
      () =>
        Effect.gen(function* () {
          const queue = yield* JobQueue;
          const kind = `stuck-${crypto.randomUUID()}`;
          const { id } = yield* queue.enqueue({ kind });
          const fiber = yield* forkWorker({
            pollMs: 1_000,
            leaseMs: 600_000,
            shutdownTimeoutMs: 200,
            handlers: { [kind]: () => Effect.never },
          });
          yield* eventually(statusOf(id), (j) => j.status === "running");
          const started = performance.now();
          yield* Fiber.interrupt(fiber);
          // 200 ms of waiting, then the release; on the TestClock the wait never ended.
          expect(performance.now() - started).toBeLessThan(5_000);
          const released = yield* statusOf(id);
          expect([released.status, released.lockedBy]).toEqual(["queued", null]);
          yield* queue.cancel(id);
        }),
    );
  });
}

describe("RetryPolicy", () => {
  const policy = RetryPolicy.make({ baseDelayMs: 1_000, maxDelayMs: 8_000, maxAttemptsByConnector: { hubspot: 8 } });
  const decide = (tag: string, attempt: number, extra: { retryAfterMs?: number; refreshed?: boolean } = {}) =>
    policy.decide({
      failure: { tag, message: tag, retryAfterMs: extra.retryAfterMs },
      attempt,
      maxAttempts: 5,
      credentialsRefreshed: extra.refreshed ?? false,
    });

  it.effect("backs off exponentially with full jitter under a cap", () =>
    Effect.gen(function* () {
      // Random at its top (just under 1) gives the ceiling of each attempt's window.
      const top = (attempt: number) => Effect.withRandom(decide("Unavailable", attempt), Random.fixed([0.999999]));
      expect(yield* top(1)).toEqual({ _tag: "Retry", delayMs: 999 });
      expect(yield* top(2)).toEqual({ _tag: "Retry", delayMs: 1_999 });
      expect(yield* top(3)).toEqual({ _tag: "Retry", delayMs: 3_999 });
      expect(yield* top(4)).toEqual({ _tag: "Retry", delayMs: 7_999 });
      const low = yield* Effect.withRandom(decide("Unavailable", 4), Random.fixed([0.25]));
      expect(low).toEqual({ _tag: "Retry", delayMs: 2_000 });
    }),
  );

  it.effect("caps the window, honours retryAfterMs, and stops at max attempts", () =>
    Effect.gen(function* () {
      const capped = yield* Effect.withRandom(
        policy.decide({
          failure: { tag: "Unavailable", message: "" },
          attempt: 9,
          maxAttempts: 20,
          credentialsRefreshed: false,
        }),
        Random.fixed([0.999999]),
      );
      expect(capped).toEqual({ _tag: "Retry", delayMs: 7_999 });
      const rateLimited = yield* Effect.withRandom(
        decide("RateLimited", 1, { retryAfterMs: 30_000 }),
        Random.fixed([0.5]),
      );
      expect(rateLimited).toEqual({ _tag: "Retry", delayMs: 30_000 });
      expect((yield* decide("Unavailable", 5))._tag).toBe("GiveUp");
      expect((yield* decide("Defect", 1))._tag).toBe("Retry");
    }),
  );

  it.effect("never retries invalid records; refreshes credentials exactly once", () =>
    Effect.gen(function* () {
      expect(yield* decide("InvalidRecord", 1)).toEqual({ _tag: "GiveUp", reason: "InvalidRecord is never retried" });
      expect(yield* decide("AuthExpired", 1)).toEqual({ _tag: "RefreshCredentials" });
      expect((yield* decide("AuthExpired", 1, { refreshed: true }))._tag).toBe("GiveUp");
      expect(policy.maxAttemptsFor("hubspot")).toBe(8);
      expect(policy.maxAttemptsFor("salesforce")).toBe(5);
    }),
  );
});

describe("JobQueue shutdown", () => {
  for (const dialect of dialects) {
    it(`a job due in half a minute does not hold the queue's shutdown for its wake-up on ${dialect}`, async () => {
      const closing = Effect.gen(function* () {
        const scope = yield* Scope.make();
        const context = yield* Layer.buildWithScope(queueLayer(dialect), scope);
        const queue = Context.get(context, JobQueue);
        // Due within the queue's wake-up horizon: the enqueue arms a timer that wakes this process's
        // workers then, once its transaction commits (as a local change's push drain is queued).
        const db = Context.get(context, Database);
        yield* db.transaction(queue.enqueue({ kind: "later", runAt: new Date(Date.now() + 30_000) }));
        const started = performance.now();
        yield* Scope.close(scope, Exit.void);
        return performance.now() - started;
      });
      // Closing drops the test database; before the timer was interruptible it waited the 30 s.
      expect(await Effect.runPromise(closing)).toBeLessThan(15_000);
    }, 60_000);
  }
});
