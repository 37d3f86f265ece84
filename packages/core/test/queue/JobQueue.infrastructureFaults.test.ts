import { describe, expect, it, layer } from "@effect/vitest";
import {
  Database,
  DatabaseUnavailable,
  describeFailure,
  isLastAttempt,
  JobQueue,
  type JobView,
  RetryPolicy,
  RetryPolicyConfig,
  RunHistory,
  Unavailable,
} from "@tandem/core";
import { dialects, testDatabaseLayer } from "@tandem/testkit";
import {
  Cause,
  type Context,
  Deferred,
  Effect,
  Exit,
  HashMap,
  Layer,
  Logger,
  LogLevel,
  Option,
  Random,
  Scope,
  TestServices,
} from "effect";
import { sql } from "kysely";

/** Wall-clock sleep (it.effect runs on TestClock, which never advances by itself). */
const realSleep = (ms: number) => Effect.promise(() => new Promise((r) => setTimeout(r, ms)));

/** Waits (in real time) until `check` holds, failing the test after `timeoutMs`. */
const eventually = <A, R>(read: Effect.Effect<A, never, R>, check: (a: A) => boolean, timeoutMs = 15_000) =>
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

const statusOf = (id: string) => Effect.flatMap(JobQueue, (q) => Effect.orDie(q.get(id)));
const until = (id: string, status: JobView["status"]) => eventually(statusOf(id), (j) => j.status === status);
const fast = { pollMs: 50, leaseMs: 2_000, heartbeatMs: 200, shutdownTimeoutMs: 2_000 } as const;

/**
 * A statement that fails as one on a terminated backend does (SQLSTATE 57P01, admin_shutdown),
 * through the real Database service: what a handler meets when PostgreSQL fails over under it.
 */
const statementOnTerminatedBackend = (db: Context.Tag.Service<typeof Database>) =>
  db
    .query((k) =>
      sql`do $$ begin raise exception 'terminating connection due to administrator command' using errcode = 'admin_shutdown'; end $$`.execute(
        k,
      ),
    )
    .pipe(Effect.orDie);

const servicesLayer = (dialect: (typeof dialects)[number]) =>
  Layer.mergeAll(JobQueue.layerNoDeps, RunHistory.layer).pipe(
    Layer.provideMerge(RetryPolicy.layer),
    Layer.provideMerge(
      Layer.succeed(RetryPolicyConfig, {
        baseDelayMs: 10,
        maxDelayMs: 50,
        defaultMaxAttempts: 2,
        maxInfrastructureFaults: 3,
      }),
    ),
    Layer.provideMerge(testDatabaseLayer(dialect)),
  );

/** Log lines written while `effect` runs (its forked fibers included). */
const capturingLogs = <A, E, R>(effect: (lines: ReadonlyArray<string>) => Effect.Effect<A, E, R>) => {
  const lines: string[] = [];
  const logger = Logger.make(({ message, logLevel, annotations }) => {
    const text = Array.isArray(message) ? message.map(String).join(" ") : String(message);
    const notes = HashMap.toEntries(annotations)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(" ");
    lines.push(`${logLevel.label} ${text} [${notes}]`);
  });
  // At debug: a completed attempt logs there.
  return effect(lines).pipe(
    Logger.withMinimumLogLevel(LogLevel.Debug),
    Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
  );
};

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
  layer(servicesLayer(dialect), { timeout: 60_000 })(`JobQueue infrastructure faults on ${dialect}`, (it) => {
    const live = <E>(
      name: string,
      body: () => Effect.Effect<void, E, JobQueue | Database | RetryPolicy | RunHistory>,
    ) => it.effect(name, () => TestServices.provideLive(body()));

    live("a lost database connection does not spend the job's attempts: it completes after 3 of them", () =>
      Effect.gen(function* () {
        const queue = yield* JobQueue;
        const db = yield* Database;
        const kind = `infra-${crypto.randomUUID()}`;
        let runs = 0;
        const { id } = yield* queue.enqueue({ kind, maxAttempts: 2 });
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* queue.worker({
              ...fast,
              handlers: {
                [kind]: () =>
                  Effect.suspend(() => (++runs <= 3 ? Effect.asVoid(statementOnTerminatedBackend(db)) : Effect.void)),
              },
            });
            yield* until(id, "completed");
          }),
        );
        const history = yield* queue.attempts(id);
        expect(history.map((a) => [a.attempt, a.outcome, a.error?.tag ?? null])).toEqual([
          [1, "failed", "DatabaseUnavailable"],
          [1, "failed", "DatabaseUnavailable"],
          [1, "failed", "DatabaseUnavailable"],
          [1, "completed", null],
        ]);
        expect((yield* statusOf(id)).attempts).toBe(1);
      }),
    );

    live("infrastructure faults are bounded: past maxInfrastructureFaults the job is dead-lettered", () =>
      Effect.gen(function* () {
        const queue = yield* JobQueue;
        const db = yield* Database;
        const kind = `infra-forever-${crypto.randomUUID()}`;
        const { id } = yield* queue.enqueue({ kind, maxAttempts: 2 });
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* queue.worker({ ...fast, handlers: { [kind]: () => statementOnTerminatedBackend(db) } });
            yield* until(id, "dead");
          }),
        );
        const history = yield* queue.attempts(id);
        // Three faults handed back uncounted, the fourth gives up.
        expect(history.map((a) => a.outcome)).toEqual(["failed", "failed", "failed", "failed"]);
        expect((yield* statusOf(id)).lastError?.message).toContain("gave up after 4 infrastructure faults");
      }),
    );

    live("the job's own errors still spend its attempts", () =>
      Effect.gen(function* () {
        const queue = yield* JobQueue;
        const kind = `own-${crypto.randomUUID()}`;
        const { id } = yield* queue.enqueue({ kind, maxAttempts: 2 });
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* queue.worker({
              ...fast,
              handlers: { [kind]: () => Effect.fail(new Unavailable({ message: "vendor down" })) },
            });
            yield* until(id, "dead");
          }),
        );
        expect((yield* queue.attempts(id)).map((a) => [a.attempt, a.outcome])).toEqual([
          [1, "failed"],
          [2, "failed"],
        ]);
      }),
    );

    live("a lease lost with its process does not spend the job's last attempt; its run is closed as failed", () =>
      Effect.gen(function* () {
        const queue = yield* JobQueue;
        const runs = yield* RunHistory;
        const { tenantId, connectionId } = yield* makeConnection;
        const kind = `lease-${crypto.randomUUID()}`;
        const started = yield* Deferred.make<void>();
        const { id } = yield* queue.enqueue({ kind, maxAttempts: 1, tenantId, connectionId });
        const openRun = (job: { id: string; attempt: number }) =>
          runs.start({
            tenantId,
            connectionId,
            entity: "contacts",
            mode: "full",
            trigger: "api",
            jobId: job.id,
            attempt: job.attempt,
          });
        // A process that stops renewing its lease (killed, or cut off from the database).
        const deadScope = yield* Scope.make();
        yield* queue
          .worker({
            concurrency: 1,
            pollMs: 50,
            leaseMs: 100,
            heartbeatMs: 60_000,
            reapMs: 60_000,
            shutdownTimeoutMs: 100,
            handlers: {
              [kind]: (job) =>
                openRun(job).pipe(Effect.zipRight(Deferred.succeed(started, undefined)), Effect.zipRight(Effect.never)),
            },
          })
          .pipe(Scope.extend(deadScope));
        yield* Deferred.await(started);
        yield* realSleep(150);
        expect(yield* queue.reapExpiredLeases).toBe(1);
        const [interrupted] = yield* runs.ofJob(id);
        expect(interrupted?.status).toBe("failed");
        expect(interrupted?.errorType).toBe("system");
        expect(interrupted?.errorMessage).toContain("LeaseExpired");
        expect(interrupted?.finishedAt).not.toBeNull();
        expect((yield* statusOf(id)).status).toBe("queued");
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* queue.worker({
              ...fast,
              handlers: {
                [kind]: (job) =>
                  Effect.flatMap(openRun(job), (runId) =>
                    runs.succeed(runId, {
                      name: "contacts",
                      mode: "full",
                      pages: 1,
                      resumed: false,
                      created: 0,
                      updated: 0,
                      unchanged: 0,
                      deleted: 0,
                      errors: [],
                      durationMs: 1,
                    }),
                  ),
              },
            });
            yield* until(id, "completed");
          }),
        );
        yield* Scope.close(deadScope, Exit.void);
        expect((yield* runs.ofJob(id)).map((r) => r.status)).toEqual(["failed", "succeeded"]);
      }),
    );

    live("a run is closed when its attempt ends without the handler closing it: failure, release at shutdown", () =>
      Effect.gen(function* () {
        const queue = yield* JobQueue;
        const runs = yield* RunHistory;
        const { tenantId, connectionId } = yield* makeConnection;
        const failing = `run-fails-${crypto.randomUUID()}`;
        const hanging = `run-hangs-${crypto.randomUUID()}`;
        const started = yield* Deferred.make<void>();
        const openRun = (job: { id: string; attempt: number }) =>
          runs.start({
            tenantId,
            connectionId,
            entity: "contacts",
            mode: "delta",
            trigger: "api",
            jobId: job.id,
            attempt: job.attempt,
          });
        const failed = (yield* queue.enqueue({ kind: failing, maxAttempts: 1, tenantId, connectionId })).id;
        const released = (yield* queue.enqueue({ kind: hanging, tenantId, connectionId })).id;
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* queue.worker({
              ...fast,
              shutdownTimeoutMs: 100,
              handlers: {
                [failing]: (job) =>
                  Effect.zipRight(openRun(job), Effect.fail(new Unavailable({ message: "vendor down" }))),
                [hanging]: (job) =>
                  openRun(job).pipe(
                    Effect.zipRight(Deferred.succeed(started, undefined)),
                    Effect.zipRight(Effect.never),
                  ),
              },
            });
            yield* until(failed, "dead");
            yield* Deferred.await(started);
          }),
        );
        const [failedRun] = yield* runs.ofJob(failed);
        expect([failedRun?.status, failedRun?.errorType]).toEqual(["failed", "transient"]);
        expect(failedRun?.errorMessage).toContain("Unavailable: vendor down");
        expect((yield* statusOf(released)).status).toBe("queued");
        const [releasedRun] = yield* runs.ofJob(released);
        expect(releasedRun?.status).toBe("cancelled");
        expect(releasedRun?.errorMessage).toContain("released");
        yield* queue.cancel(released);
      }),
    );

    live("every attempt's outcome is logged with the job's id, kind and attempt", () =>
      capturingLogs((lines) =>
        Effect.gen(function* () {
          const queue = yield* JobQueue;
          const kind = `logged-${crypto.randomUUID()}`;
          let runs = 0;
          const retried = (yield* queue.enqueue({ kind, maxAttempts: 2, payload: { fail: 1 } })).id;
          const dead = (yield* queue.enqueue({ kind, maxAttempts: 1, payload: { fail: 9 } })).id;
          yield* Effect.scoped(
            Effect.gen(function* () {
              yield* queue.worker({
                ...fast,
                handlers: {
                  [kind]: (job) =>
                    Effect.suspend(() =>
                      job.id === retried && ++runs > 1
                        ? Effect.void
                        : Effect.fail(new Unavailable({ message: "vendor down" })),
                    ),
                },
              });
              yield* until(retried, "completed");
              yield* until(dead, "dead");
            }),
          );
          const of = (id: string) => lines.filter((l) => l.includes(`jobId=${id}`));
          expect(of(retried)).toEqual([
            expect.stringMatching(
              new RegExp(
                `^WARN job ${retried} \\(${kind}\\) attempt 1/2: failed \\(Unavailable: vendor down\\); retrying at .+, attempt counted`,
              ),
            ),
            expect.stringMatching(new RegExp(`^DEBUG job ${retried} \\(${kind}\\) attempt 2/2: completed`)),
          ]);
          expect(of(dead)).toEqual([
            expect.stringMatching(
              new RegExp(
                `^ERROR job ${dead} \\(${kind}\\) attempt 1/1: failed \\(Unavailable: vendor down.*\\); dead-lettered`,
              ),
            ),
          ]);
          for (const note of [`jobKind=${kind}`, "attempt=1", "outcome=Dead"]) expect(of(dead)[0]).toContain(note);
        }),
      ),
    );
  });
}

describe("RetryPolicy and infrastructure faults", () => {
  const policy = RetryPolicy.make({ baseDelayMs: 1_000, maxDelayMs: 8_000, maxInfrastructureFaults: 2 });
  const lostConnection = Cause.die(
    new DatabaseUnavailable({ message: "database connection failed", connectionFailure: true }),
  );
  const rejectedStatement = Cause.die(
    new DatabaseUnavailable({ message: 'relation "x" does not exist', connectionFailure: false }),
  );

  it.effect("a lost connection is retried uncounted until the budget is spent; a rejected statement is a Defect", () =>
    Effect.gen(function* () {
      const failure = Option.getOrThrow(describeFailure(lostConnection));
      expect(failure.tag).toBe("DatabaseUnavailable");
      expect(Option.getOrThrow(describeFailure(rejectedStatement)).tag).toBe("Defect");
      const decide = (infrastructureFaults: number) =>
        Effect.withRandom(
          policy.decide({ failure, attempt: 5, maxAttempts: 5, credentialsRefreshed: false, infrastructureFaults }),
          Random.fixed([0.999999]),
        );
      expect(yield* decide(0)).toEqual({ _tag: "RetryUncounted", delayMs: 999 });
      expect(yield* decide(1)).toEqual({ _tag: "RetryUncounted", delayMs: 1_999 });
      expect((yield* decide(2))._tag).toBe("GiveUp");
    }),
  );

  it("a sync's last attempt, for sync.failed: an infrastructure fault spends only its own budget", () => {
    const job = { attempt: 5, maxAttempts: 5, infrastructureFaults: 0 };
    expect(isLastAttempt(policy, job, lostConnection)).toBe(false);
    expect(isLastAttempt(policy, { ...job, infrastructureFaults: 2 }, lostConnection)).toBe(true);
    expect(isLastAttempt(policy, job, rejectedStatement)).toBe(true);
    expect(isLastAttempt(policy, { ...job, attempt: 4 }, rejectedStatement)).toBe(false);
  });
});
