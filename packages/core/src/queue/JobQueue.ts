import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import {
  Cause,
  Clock,
  Context,
  Duration,
  Effect,
  Exit,
  Fiber,
  FiberSet,
  Layer,
  Option,
  Queue,
  Schedule,
  type Scope,
} from "effect";
import { Database } from "../db/Database.ts";
import * as GroupCommit from "../db/GroupCommit.ts";
import type { JobAttemptOutcome, JobRow, JobStatus, StoredJobError } from "../db/schema.ts";
import { AlreadyRunning, type FieldIssue, InvalidInput, ResourceNotFound } from "../errors/Errors.ts";
import * as store from "./JobStore.ts";
import { listenForJobs, makeJobAnnouncer } from "./JobWakeups.ts";
import { describeFailure, type JobFailure, RetryPolicy } from "./RetryPolicy.ts";
import { onWallClock } from "./WallClock.ts";

/** Priorities, highest first: lower numbers are claimed first. */
export const JobPriority = { webhook: 0, onDemand: 1, delta: 2, backfill: 3 } as const;
/** A priority by name: `webhook`, `onDemand`, `delta`, `backfill`. */
export type JobPriorityName = keyof typeof JobPriority;

/** What to enqueue. */
export interface EnqueueInput {
  /** Which handler runs it (the key in the worker's `handlers`). */
  readonly kind: string;
  /** Any JSON value; handed to the handler as is. */
  readonly payload?: unknown;
  /** Default `onDemand`. */
  readonly priority?: JobPriorityName | number | undefined;
  readonly tenantId?: string | undefined;
  /** Jobs of one connection share its concurrency bound (`perConnectionConcurrency`). */
  readonly connectionId?: string | undefined;
  /** Not claimed before this time. Default: now. */
  readonly runAt?: Date | undefined;
  /** Attempts before the dead-letter queue. Default `RetryPolicy.maxAttemptsFor(undefined)`. */
  readonly maxAttempts?: number | undefined;
  /**
   * At most one queued or running job per key: enqueueing a second fails with
   * `AlreadyRunning` carrying the live job's id (e.g. `sync:<connection>:<entity>`).
   */
  readonly dedupeKey?: string | undefined;
}

/** A job as the API shows it. Timestamps are ISO-8601. */
export interface JobView {
  readonly id: string;
  readonly kind: string;
  readonly payload: unknown;
  readonly priority: number;
  readonly tenantId: string | null;
  readonly connectionId: string | null;
  readonly status: JobStatus;
  readonly attempts: number;
  readonly maxAttempts: number;
  readonly runAt: string;
  readonly lockedBy: string | null;
  readonly lockedUntil: string | null;
  readonly dedupeKey: string | null;
  readonly cancelRequested: boolean;
  readonly lastError: StoredJobError | null;
  readonly result: unknown;
  readonly createdAt: string;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
}

/** One attempt of a job, from its error history. */
export interface JobAttemptView {
  readonly attempt: number;
  readonly worker: string;
  readonly outcome: JobAttemptOutcome;
  readonly error: StoredJobError | null;
  readonly startedAt: string | null;
  readonly finishedAt: string;
}

/** The job a handler runs. */
export interface RunningJob {
  readonly id: string;
  readonly kind: string;
  readonly payload: unknown;
  readonly priority: number;
  /** 1-based attempt number, counting only attempts that spent the job's budget (see RetryPolicy). */
  readonly attempt: number;
  readonly maxAttempts: number;
  /** Attempts handed back uncounted after infrastructure faults so far (see RetryPolicy). */
  readonly infrastructureFaults: number;
  readonly tenantId: string | null;
  readonly connectionId: string | null;
  readonly dedupeKey: string | null;
  /** This attempt's fencing token: pass it on to anything that must reject a stale holder. */
  readonly leaseToken: string;
  readonly workerId: string;
}

/**
 * Runs one job. Fail with the connector errors (`Unavailable`, `RateLimited`,
 * `AuthExpired`, `InvalidRecord`, ...) to let the RetryPolicy decide; the success
 * value is stored as the job's `result` (JSON).
 */
export type JobHandler = (job: RunningJob) => Effect.Effect<unknown, unknown>;

/** A handler with an optional credential refresh (used once per attempt on AuthExpired). */
export interface JobHandlerSpec {
  readonly run: JobHandler;
  /** Called once when `run` fails with `AuthExpired`; `run` is then retried once. */
  readonly refreshCredentials?: (job: RunningJob) => Effect.Effect<void, unknown>;
}

/** How a worker runs: its handlers, its bounds and its timings. */
export interface WorkerOptions {
  /** Handlers by job kind; this worker claims only these kinds. */
  readonly handlers: Readonly<Record<string, JobHandler | JobHandlerSpec>>;
  /** Jobs running at once in this worker. Default 10. */
  readonly concurrency?: number;
  /** Running jobs of one connection across all processes. Default 4. */
  readonly perConnectionConcurrency?: number;
  /** Lease length; a crashed process's jobs are re-run after it. Default 30 s. */
  readonly leaseMs?: number;
  /** Heartbeat period (one UPDATE for all running jobs). Default leaseMs / 3. */
  readonly heartbeatMs?: number;
  /** Polling fallback when no wake-up arrives. Default 2 s. */
  readonly pollMs?: number;
  /** How often expired leases are taken back. Default leaseMs / 2. */
  readonly reapMs?: number;
  /** On shutdown, how long running jobs may take before they are released. Default 10 s. */
  readonly shutdownTimeoutMs?: number;
  /** Completed and cancelled jobs are deleted after this. Default 7 days. */
  readonly retentionMs?: number;
  /** Names this process in `locked_by`. Default host:pid:random. */
  readonly workerId?: string;
  /**
   * Jobs claimed ahead of a free slot and kept, under lease, until one frees up. Fewer claim
   * statements per job when jobs are short; a claimed job is not available to other processes
   * meanwhile. Released at once on shutdown. Default 0.
   */
  readonly prefetch?: number;
}

/** A running worker (alive while its Scope is open). */
export interface JobWorker {
  readonly id: string;
  /** Ids of the jobs this worker is running now. */
  readonly running: Effect.Effect<ReadonlyArray<string>>;
}

/** Which jobs `list` returns (newest first, at most `limit`, default 100). */
export interface JobListFilter {
  readonly status?: JobStatus | undefined;
  readonly kind?: string | undefined;
  readonly tenantId?: string | undefined;
  readonly connectionId?: string | undefined;
  readonly limit?: number | undefined;
}

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

const toView = (row: JobRow): JobView => ({
  id: row.id,
  kind: row.kind,
  payload: row.payload,
  priority: row.priority,
  tenantId: row.tenant_id,
  connectionId: row.connection_id,
  status: row.status,
  attempts: row.attempts,
  maxAttempts: row.max_attempts,
  runAt: row.run_at.toISOString(),
  lockedBy: row.locked_by,
  lockedUntil: iso(row.locked_until),
  dedupeKey: row.dedupe_key,
  cancelRequested: row.cancel_requested,
  lastError: row.last_error,
  result: row.result,
  createdAt: row.created_at.toISOString(),
  startedAt: iso(row.started_at),
  finishedAt: iso(row.finished_at),
});

/** A priority by name or number, as stored (`fallback` when absent). */
export const priorityValue = (
  p: JobPriorityName | number | undefined,
  fallback: number = JobPriority.onDemand,
): number => (p === undefined ? fallback : typeof p === "number" ? p : JobPriority[p]);

const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms));

/** Checks what the database would otherwise reject with a less helpful message. */
const validate = (input: EnqueueInput, path = ""): ReadonlyArray<FieldIssue> => {
  const issues: FieldIssue[] = [];
  if (typeof input.kind !== "string" || input.kind.trim() === "") {
    issues.push({ path: `${path}kind`, message: "a job needs a kind (the handler that runs it)" });
  }
  const priority = priorityValue(input.priority);
  if (!Number.isInteger(priority) || priority < 0 || priority > 3) {
    issues.push({ path: `${path}priority`, message: "priority is webhook, onDemand, delta, backfill or 0..3" });
  }
  if (input.maxAttempts !== undefined && (!Number.isInteger(input.maxAttempts) || input.maxAttempts < 1)) {
    issues.push({ path: `${path}maxAttempts`, message: "maxAttempts must be a whole number, at least 1" });
  }
  if (input.runAt !== undefined && Number.isNaN(input.runAt.getTime?.())) {
    issues.push({ path: `${path}runAt`, message: "runAt must be a valid date" });
  }
  return issues;
};

/**
 * Statements that must outlive a database restart (settling a finished job) are
 * retried on infrastructure failures, which `Database.query` raises as defects.
 */
const retryingDefects = <A, E>(effect: Effect.Effect<A, E>, within: Duration.DurationInput) =>
  effect.pipe(
    Effect.catchAllDefect((defect) => Effect.fail({ _tag: "Defect" as const, defect })),
    Effect.retry({
      schedule: Schedule.exponential("100 millis").pipe(
        Schedule.union(Schedule.spaced("2 seconds")),
        Schedule.upTo(within),
      ),
      while: (e) => (e as { _tag?: string })._tag === "Defect",
    }),
    Effect.catchIf(
      (e): e is { _tag: "Defect"; defect: unknown } => (e as { _tag?: string })._tag === "Defect",
      (e) => Effect.die(e.defect),
    ),
  );

/** The queue's operations; see JobQueue. */
export interface JobQueueService {
  /**
   * Adds a job. Fails with AlreadyRunning when its `dedupeKey` is held by a live job,
   * and with InvalidInput for an empty kind, an unknown priority or `maxAttempts` < 1.
   */
  readonly enqueue: (input: EnqueueInput) => Effect.Effect<{ readonly id: string }, AlreadyRunning | InvalidInput>;
  /** Adds many jobs in one statement (no dedupe keys: use `enqueue` for those). */
  readonly enqueueMany: (
    inputs: ReadonlyArray<Omit<EnqueueInput, "dedupeKey">>,
  ) => Effect.Effect<ReadonlyArray<string>, InvalidInput>;
  /**
   * Jobs validated and built as `enqueueMany` would insert them, for a caller that inserts them
   * in a statement of its own: InboundWebhooks stores events and their jobs in one. The caller
   * wakes workers afterwards (`nudge`).
   */
  readonly prepare: (
    inputs: ReadonlyArray<Omit<EnqueueInput, "dedupeKey">>,
  ) => Effect.Effect<ReadonlyArray<store.NewJob>, InvalidInput>;
  /** A job; with `tenantId`, only that tenant's. */
  readonly get: (id: string, tenantId?: string) => Effect.Effect<JobView, ResourceNotFound>;
  readonly list: (filter?: JobListFilter) => Effect.Effect<ReadonlyArray<JobView>>;
  /** Jobs per status (queue depth for metrics), optionally of one tenant or connection. */
  readonly counts: (filter?: Omit<JobListFilter, "status" | "limit">) => Effect.Effect<Record<JobStatus, number>>;
  /** The job's attempts, oldest first, with each one's error: its error history. */
  readonly attempts: (id: string) => Effect.Effect<ReadonlyArray<JobAttemptView>>;
  /**
   * Cancels a queued job at once; a running one is flagged, interrupted by its
   * worker at the next heartbeat, and ends `cancelled`.
   */
  readonly cancel: (id: string, tenantId?: string) => Effect.Effect<JobView, ResourceNotFound>;
  /** The dead-letter queue: jobs whose last attempt failed. */
  readonly deadLetters: (filter?: Omit<JobListFilter, "status">) => Effect.Effect<ReadonlyArray<JobView>>;
  /** Sends a dead job back to the queue with a fresh set of attempts (its history stays). */
  readonly replay: (id: string, tenantId?: string) => Effect.Effect<JobView, ResourceNotFound | AlreadyRunning>;
  /** Deletes a dead job and its history. */
  readonly discard: (id: string, tenantId?: string) => Effect.Effect<{ readonly id: string }, ResourceNotFound>;
  /** Takes back jobs whose lease expired. Workers run it periodically. */
  readonly reapExpiredLeases: Effect.Effect<number>;
  /** Deletes completed and cancelled jobs finished more than `retentionMs` ago. */
  readonly prune: (retentionMs: number) => Effect.Effect<number>;
  /** Wakes this process's workers (they also wake on NOTIFY, and poll). */
  readonly nudge: Effect.Effect<void>;
  /**
   * Starts a worker in this process. It stops when the Scope closes: no more claims,
   * running jobs get `shutdownTimeoutMs` to finish, the rest are released to others.
   */
  readonly worker: (options: WorkerOptions) => Effect.Effect<JobWorker, never, Scope.Scope>;
}

/**
 * The durable job queue: rows in `jobs`, claimed with `FOR UPDATE SKIP LOCKED`,
 * leased with fencing tokens, retried by the RetryPolicy, shared by every process
 * on the database.
 */
export class JobQueue extends Context.Tag("@tandem/core/JobQueue")<JobQueue, JobQueueService>() {
  /** Needs Database and RetryPolicy. */
  static readonly layerNoDeps = Layer.scoped(
    JobQueue,
    Effect.suspend(() => makeJobQueue),
  );

  /** With the default RetryPolicy (1 s base, 5 min cap, 5 attempts); needs Database. */
  static readonly layer = JobQueue.layerNoDeps.pipe(Layer.provide(RetryPolicy.layer()));
}

const makeJobQueue = Effect.gen(function* () {
  const db = yield* Database;
  const policy = yield* RetryPolicy;
  /** Wake-up queues of this process's workers. */
  const wakers = new Set<Queue.Queue<void>>();
  const announce = yield* makeJobAnnouncer(db);
  /**
   * Jobs became claimable: once they are committed, wake this process's workers and announce
   * them to every other process's (NOTIFY; they also poll).
   */
  const wake = db.afterCommit(
    Effect.zipRight(
      Effect.sync(() => {
        for (const q of wakers) Queue.unsafeOffer(q, undefined);
      }),
      announce,
    ),
  );

  const findLive = (key: string) =>
    db.query((k) =>
      k
        .selectFrom("jobs")
        .select("id")
        .where("dedupe_key", "=", key)
        .where("status", "in", ["queued", "running"])
        .executeTakeFirst(),
    );

  const row = (id: string, tenantId?: string) =>
    db
      .query((k) =>
        k
          .selectFrom("jobs")
          .selectAll()
          .where("id", "=", id)
          .$if(tenantId !== undefined, (q) => q.where("tenant_id", "=", tenantId!))
          .executeTakeFirst(),
      )
      .pipe(
        Effect.orDie,
        Effect.flatMap((r) =>
          r === undefined ? Effect.fail(new ResourceNotFound({ resource: "job", id })) : Effect.succeed(r),
        ),
      );

  const newJob = (input: EnqueueInput, at: Date): store.NewJob => ({
    id: randomUUID(),
    kind: input.kind,
    payload: input.payload,
    priority: priorityValue(input.priority),
    tenant_id: input.tenantId ?? null,
    connection_id: input.connectionId ?? null,
    run_at: input.runAt ?? at,
    max_attempts: input.maxAttempts ?? policy.maxAttemptsFor(undefined),
    created_at: at,
  });

  const enqueue = Effect.fn("JobQueue.enqueue")(function* (input: EnqueueInput) {
    const issues = validate(input);
    if (issues.length > 0) return yield* new InvalidInput({ issues });
    // A live job with the key may finish between our insert and our lookup: try again then.
    for (let i = 0; i < 3; i++) {
      const at = yield* now;
      const job = newJob(input, at);
      const v = {
        ...job,
        payload: store.json(job.payload ?? {}) ?? "{}",
        dedupe_key: input.dedupeKey ?? null,
        updated_at: at,
      };
      // ON CONFLICT rather than a caught violation: inside a caller's transaction, an error
      // would abort the whole transaction on PostgreSQL.
      const inserted = yield* db
        .query((k) =>
          k
            .insertInto("jobs")
            .values(v)
            .onConflict((oc) => oc.column("dedupe_key").where("status", "in", ["queued", "running"]).doNothing())
            .returning("id")
            .executeTakeFirst(),
        )
        .pipe(Effect.orDie);
      if (inserted !== undefined) {
        yield* wake;
        return { id: v.id };
      }
      const live = yield* findLive(input.dedupeKey!).pipe(Effect.orDie);
      if (live !== undefined) return yield* new AlreadyRunning({ jobId: live.id, key: input.dedupeKey! });
    }
    return yield* Effect.die(new Error(`dedupe key ${input.dedupeKey} kept changing hands`));
  });

  /**
   * After a bulk enqueue that at least doubled the queue, statistics are stale until autovacuum
   * (up to a minute): the planner then believes the queue holds a few dozen rows and claims by
   * sorting every queued job instead of reading the claim index in order (EXPLAIN ANALYZE with
   * 50,000 queued: 450 ms per claim against 0.8 ms). One ANALYZE per doubling is a handful for
   * any backlog, and a no-op for everyday enqueues.
   */
  const refreshStatisticsAfterBulkInsert = (inserted: number) =>
    Effect.gen(function* () {
      if (inserted < 1_000) return;
      // The estimate predates this insert (that is the point), so it is the queue before it.
      const before = yield* db.query(store.estimatedRows);
      if (inserted >= before) yield* db.query(store.analyze);
    }).pipe(Effect.orDie);

  const prepare = (inputs: ReadonlyArray<Omit<EnqueueInput, "dedupeKey">>) =>
    Effect.gen(function* () {
      const issues = inputs.flatMap((input, i) => validate(input, `${i}.`));
      if (issues.length > 0) return yield* new InvalidInput({ issues });
      const at = yield* now;
      return inputs.map((input) => newJob(input, at));
    });

  const enqueueMany = Effect.fn("JobQueue.enqueueMany")(function* (
    inputs: ReadonlyArray<Omit<EnqueueInput, "dedupeKey">>,
  ) {
    if (inputs.length === 0) return [];
    const rows = yield* prepare(inputs);
    // Chunked to bound the size of one statement's parameter.
    for (let i = 0; i < rows.length; i += 5_000) {
      const chunk = rows.slice(i, i + 5_000);
      yield* db.query((k) => store.insertMany(k, chunk)).pipe(Effect.orDie);
    }
    yield* refreshStatisticsAfterBulkInsert(rows.length);
    yield* wake;
    return rows.map((r) => r.id);
  });

  const get = Effect.fn("JobQueue.get")(function* (id: string, tenantId?: string) {
    return toView(yield* row(id, tenantId));
  });

  const list = Effect.fn("JobQueue.list")(function* (filter: JobListFilter = {}) {
    const rows = yield* db
      .query((k) =>
        k
          .selectFrom("jobs")
          .selectAll()
          .$if(filter.status !== undefined, (q) => q.where("status", "=", filter.status!))
          .$if(filter.kind !== undefined, (q) => q.where("kind", "=", filter.kind!))
          .$if(filter.tenantId !== undefined, (q) => q.where("tenant_id", "=", filter.tenantId!))
          .$if(filter.connectionId !== undefined, (q) => q.where("connection_id", "=", filter.connectionId!))
          .orderBy("created_at", "desc")
          .orderBy("id")
          .limit(filter.limit ?? 100)
          .execute(),
      )
      .pipe(Effect.orDie);
    return rows.map(toView);
  });

  const counts = Effect.fn("JobQueue.counts")(function* (filter: Omit<JobListFilter, "status" | "limit"> = {}) {
    const rows = yield* db
      .query((k) =>
        k
          .selectFrom("jobs")
          .select(["status", (eb) => eb.fn.countAll<string>().as("n")])
          .$if(filter.kind !== undefined, (q) => q.where("kind", "=", filter.kind!))
          .$if(filter.tenantId !== undefined, (q) => q.where("tenant_id", "=", filter.tenantId!))
          .$if(filter.connectionId !== undefined, (q) => q.where("connection_id", "=", filter.connectionId!))
          .groupBy("status")
          .execute(),
      )
      .pipe(Effect.orDie);
    const result: Record<JobStatus, number> = { queued: 0, running: 0, completed: 0, dead: 0, cancelled: 0 };
    for (const r of rows) result[r.status] = Number(r.n);
    return result;
  });

  const attempts = Effect.fn("JobQueue.attempts")(function* (id: string) {
    const rows = yield* db
      .query((k) => k.selectFrom("job_attempts").selectAll().where("job_id", "=", id).orderBy("id").execute())
      .pipe(Effect.orDie);
    return rows.map(
      (r): JobAttemptView => ({
        attempt: r.attempt,
        worker: r.worker,
        outcome: r.outcome,
        error: r.error,
        startedAt: iso(r.started_at),
        finishedAt: r.finished_at.toISOString(),
      }),
    );
  });

  const cancel = Effect.fn("JobQueue.cancel")(function* (id: string, tenantId?: string) {
    yield* row(id, tenantId);
    const at = yield* now;
    yield* db
      .query((k) =>
        k
          .updateTable("jobs")
          .set({ status: "cancelled", finished_at: at, updated_at: at })
          .where("id", "=", id)
          .where("status", "=", "queued")
          .execute(),
      )
      .pipe(Effect.orDie);
    yield* db
      .query((k) =>
        k
          .updateTable("jobs")
          .set({ cancel_requested: true, updated_at: at })
          .where("id", "=", id)
          .where("status", "=", "running")
          .execute(),
      )
      .pipe(Effect.orDie);
    return toView(yield* row(id, tenantId));
  });

  const deadLetters = (filter: Omit<JobListFilter, "status"> = {}) => list({ ...filter, status: "dead" });

  const replay = Effect.fn("JobQueue.replay")(function* (id: string, tenantId?: string) {
    const job = yield* row(id, tenantId);
    if (job.status !== "dead") return yield* new ResourceNotFound({ resource: "dead letter", id });
    const at = yield* now;
    // The view is the row as this update left it: once the workers are woken, one may claim the
    // job before a second read, and the caller would see it running.
    const [replayed] = yield* db
      .query((k) =>
        k
          .updateTable("jobs")
          .set({
            status: "queued",
            attempts: 0,
            infrastructure_faults: 0,
            run_at: at,
            finished_at: null,
            updated_at: at,
          })
          .where("id", "=", id)
          .where("status", "=", "dead")
          .returningAll()
          .execute(),
      )
      .pipe(
        Effect.catchTag("ConstraintViolation", (e) =>
          e.constraint === "jobs_dedupe"
            ? Effect.flatMap(findLive(job.dedupe_key!).pipe(Effect.orDie), (live) =>
                Effect.fail(new AlreadyRunning({ jobId: live?.id ?? "", key: job.dedupe_key! })),
              )
            : Effect.die(e),
        ),
      );
    yield* wake;
    return toView(replayed ?? (yield* row(id, tenantId)));
  });

  const discard = Effect.fn("JobQueue.discard")(function* (id: string, tenantId?: string) {
    const job = yield* row(id, tenantId);
    if (job.status !== "dead") return yield* new ResourceNotFound({ resource: "dead letter", id });
    yield* db
      .query((k) => k.deleteFrom("jobs").where("id", "=", id).where("status", "=", "dead").execute())
      .pipe(Effect.orDie);
    return { id };
  });

  const reapExpiredLeases = Effect.gen(function* () {
    const at = yield* now;
    const reaped = yield* db.query((k) => store.reapExpired(k, at, policy.maxInfrastructureFaults)).pipe(Effect.orDie);
    for (const job of reaped) yield* logReaped(job, policy.maxInfrastructureFaults);
    return reaped.length;
  }).pipe(Effect.withSpan("JobQueue.reapExpiredLeases"));

  const prune = Effect.fn("JobQueue.prune")(function* (retentionMs: number) {
    const at = yield* now;
    return yield* db.query((k) => store.prune(k, new Date(at.getTime() - retentionMs))).pipe(Effect.orDie);
  });

  const worker = (options: WorkerOptions) =>
    runWorker(options, { db, policy, reapExpiredLeases, prune, wakers, announce }).pipe(
      Effect.withSpan("JobQueue.worker"),
    );

  return {
    enqueue,
    enqueueMany,
    prepare,
    get,
    list,
    counts,
    attempts,
    cancel,
    deadLetters,
    replay,
    discard,
    reapExpiredLeases,
    prune,
    nudge: wake,
    worker,
  } satisfies JobQueueService;
});

interface WorkerDeps {
  readonly db: Context.Tag.Service<Database>;
  readonly policy: Context.Tag.Service<RetryPolicy>;
  readonly reapExpiredLeases: Effect.Effect<number>;
  readonly prune: (retentionMs: number) => Effect.Effect<number>;
  readonly wakers: Set<Queue.Queue<void>>;
  /** Tells other processes that jobs became claimable (see makeJobAnnouncer). */
  readonly announce: Effect.Effect<void>;
}

/** An error message as logged: bounded, on one line. */
const logged = (message: string) => message.replace(/\s+/g, " ").slice(0, 300);

/**
 * Logs how a job's attempt ended, once it is written: every attempt's outcome is in the log,
 * with the job's id, kind and attempt (also as annotations), and the error's tag and message
 * (never the payload, which may hold customer data).
 */
const logSettled = (job: RunningJob, settlement: store.Settlement, policy: Context.Tag.Service<RetryPolicy>) => {
  const what = `job ${job.id} (${job.kind}) attempt ${job.attempt}/${job.maxAttempts}`;
  const log = (() => {
    switch (settlement._tag) {
      case "Completed":
        return Effect.logInfo(`${what}: completed`);
      case "Retry": {
        const error = `${settlement.error.tag}: ${logged(settlement.error.message)}`;
        const counted = settlement.infrastructure
          ? `not counted (infrastructure fault ${job.infrastructureFaults + 1}/${policy.maxInfrastructureFaults})`
          : "counted";
        return Effect.logWarning(
          `${what}: failed (${error}); retrying at ${settlement.runAt.toISOString()}, attempt ${counted}`,
        );
      }
      case "Dead":
        return Effect.logError(
          `${what}: failed (${settlement.error.tag}: ${logged(settlement.error.message)}); dead-lettered`,
        );
      case "Cancelled":
        return Effect.logInfo(`${what}: cancelled`);
      case "Released":
        return Effect.logInfo(`${what}: released unfinished at shutdown; requeued, attempt not counted`);
    }
  })();
  return log.pipe(
    Effect.annotateLogs({ jobId: job.id, jobKind: job.kind, attempt: job.attempt, outcome: settlement._tag }),
  );
};

/** Logs a job the reaper took back after its lease expired. */
const logReaped = (job: store.ReapedJob, maxInfrastructureFaults: number) => {
  const what = `job ${job.id} (${job.kind}) attempt ${job.attempt}: lease expired (held by ${job.worker || "?"})`;
  const log =
    job.status === "queued"
      ? Effect.logWarning(
          `${what}; requeued, attempt not counted (infrastructure fault ${job.infrastructure_faults}/${maxInfrastructureFaults})`,
        )
      : job.status === "dead"
        ? Effect.logError(`${what}; dead-lettered after ${job.infrastructure_faults} infrastructure faults`)
        : Effect.logInfo(`${what}; cancelled as requested`);
  return log.pipe(
    Effect.annotateLogs({
      jobId: job.id,
      jobKind: job.kind,
      attempt: job.attempt,
      outcome: `LeaseExpired:${job.status}`,
    }),
  );
};

/** Settlements per statement, at most. */
const maxSettlementBatch = 500;

/** A held job's attempt and how it ends, for the settlement statement. */
interface HeldSettlement {
  readonly job: RunningJob;
  readonly settlement: store.Settlement;
}

/** Why a running job's fiber was interrupted from outside. */
type StopReason = "cancelled" | "released" | "lease_lost";

/**
 * Where a held job is: claimed and waiting for a slot (prefetched), its handler running,
 * or its outcome waiting for the next settlement statement.
 */
type HeldPhase = "waiting" | "running" | "settling";

/** Shared by a held job's fiber, which moves it along, and the worker, which reads it. */
interface HeldProgress {
  phase: HeldPhase;
}

interface Held {
  readonly job: RunningJob;
  readonly fiber: Fiber.RuntimeFiber<void>;
  readonly progress: HeldProgress;
  stop: StopReason | undefined;
  /** When the lease was last known to run until (claim or heartbeat), by this process's clock. */
  leasedUntil: number;
}

const runWorker = (options: WorkerOptions, deps: WorkerDeps) =>
  Effect.gen(function* () {
    const { db, policy } = deps;
    const workerId = options.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    const concurrency = Math.max(1, options.concurrency ?? 10);
    const perConnection = Math.max(1, options.perConnectionConcurrency ?? 4);
    const leaseMs = Math.max(100, options.leaseMs ?? 30_000);
    const heartbeatMs = options.heartbeatMs ?? Math.floor(leaseMs / 3);
    const pollMs = options.pollMs ?? 2_000;
    const reapMs = options.reapMs ?? Math.floor(leaseMs / 2);
    const shutdownTimeoutMs = options.shutdownTimeoutMs ?? 10_000;
    const prefetch = Math.max(0, Math.floor(options.prefetch ?? 0));
    const retentionMs = options.retentionMs ?? 7 * 24 * 3_600_000;
    const handlers = new Map(
      Object.entries(options.handlers).map(([kind, h]) => [kind, typeof h === "function" ? { run: h } : h] as const),
    );
    const kinds = [...handlers.keys()];
    /** This worker's own bookkeeping of the fibers it runs; the database decides who holds a job. */
    const held = new Map<string, Held>();
    let stopping = false;

    const wake = yield* Queue.sliding<void>(1);
    deps.wakers.add(wake);
    yield* Effect.addFinalizer(() => Effect.sync(() => deps.wakers.delete(wake)));
    const signal = Effect.sync(() => Queue.unsafeOffer(wake, undefined));

    /**
     * Settlements are group-committed: at one statement per job the queue spent most of its
     * time in round trips. A lost lease is logged and otherwise ignored (someone else holds the
     * job); a write that keeps failing leaves the leases to run out, and the reaper hands the jobs
     * to another attempt. Made before the handlers' FiberSet, so its writer outlives every
     * handler (finalizers run in reverse order).
     */
    const settlements = yield* GroupCommit.make<HeldSettlement, void, never>({
      maxBatch: maxSettlementBatch,
      write: (batch) =>
        Effect.gen(function* () {
          const at = yield* now;
          const rows = batch.map((h) => ({ id: h.job.id, leaseToken: h.job.leaseToken, settlement: h.settlement }));
          const settled = yield* retryingDefects(
            db.query((k) => store.settleMany(k, workerId, rows, at)),
            Duration.millis(leaseMs * 2),
          ).pipe(
            Effect.orDie,
            Effect.catchAllDefect((d) =>
              Effect.as(Effect.logError(`could not settle ${batch.length} job(s)`, d), null),
            ),
          );
          for (const h of batch) {
            const tag = h.settlement._tag;
            if (settled === null) continue; // not written: logged above
            if (settled.has(h.job.id)) yield* logSettled(h.job, h.settlement, policy);
            else if (tag !== "Released" && tag !== "Cancelled") {
              yield* Effect.logWarning(`job ${h.job.id}: lease lost before it could be settled (${tag}); discarded`);
            }
          }
          // Released jobs (a shutdown) are claimable now, by other processes.
          if (batch.some((h) => h.settlement._tag === "Released")) yield* deps.announce;
          return batch.map(() => Exit.void);
        }),
    });

    /** Settles a held job's attempt (with the next batch) and waits until it is written. */
    const settle = (job: RunningJob, settlement: store.Settlement) => settlements.submit({ job, settlement });

    const stored = (f: JobFailure): StoredJobError => ({ tag: f.tag, message: f.message });

    /** Slots for running handlers: prefetched jobs wait here, in claim order. */
    const slots = yield* Effect.makeSemaphore(concurrency);

    /**
     * Runs the handler, with one credential refresh on AuthExpired, and answers how the
     * attempt ends; undefined when it was interrupted from outside (the interrupter settles
     * it: cancel, release; or nobody may: lease lost).
     */
    const outcomeOf = (
      job: RunningJob,
      restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>,
    ): Effect.Effect<store.Settlement | undefined> =>
      Effect.gen(function* () {
        const spec = handlers.get(job.kind)!;
        // Suspended, so a handler that builds its effect eagerly still sees the refreshed state.
        const run = Effect.suspend(() => spec.run(job));
        let exit = yield* restore(run).pipe(Effect.exit);
        let refreshed = false;
        while (true) {
          const current = exit;
          if (Exit.isSuccess(current)) return { _tag: "Completed", result: current.value } as const;
          if (Cause.isInterruptedOnly(current.cause)) return undefined;
          const failure = Option.getOrElse(describeFailure(current.cause), () => ({
            tag: "Defect",
            message: Cause.pretty(current.cause),
          }));
          const decision = yield* policy.decide({
            failure,
            attempt: job.attempt,
            maxAttempts: job.maxAttempts,
            credentialsRefreshed: refreshed,
            infrastructureFaults: job.infrastructureFaults,
          });
          if (decision._tag === "RefreshCredentials" && spec.refreshCredentials !== undefined) {
            refreshed = true;
            yield* Effect.logInfo(`job ${job.id}: credentials refused; refreshing and retrying once`);
            exit = yield* restore(Effect.zipRight(spec.refreshCredentials(job), run)).pipe(Effect.exit);
            continue;
          }
          if (decision._tag === "Retry" || decision._tag === "RetryUncounted") {
            const at = yield* now;
            return {
              _tag: "Retry",
              error: stored(failure),
              runAt: new Date(at.getTime() + decision.delayMs),
              infrastructure: decision._tag === "RetryUncounted",
            } as const;
          }
          const reason = decision._tag === "GiveUp" ? decision.reason : "no credential refresh available";
          return { _tag: "Dead", error: { ...stored(failure), message: `${failure.message} (${reason})` } } as const;
        }
      });

    /**
     * Waits for a slot, runs the handler in it, frees the slot and settles. Uninterruptible
     * but for the wait and the handler, so an outcome, once reached, is always written.
     */
    const execute = (job: RunningJob, progress: HeldProgress) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function* () {
          yield* restore(slots.take(1));
          progress.phase = "running";
          const outcome = yield* outcomeOf(job, restore).pipe(Effect.ensuring(slots.release(1)));
          progress.phase = "settling";
          yield* signal; // a slot is free: claim while this one settles
          if (outcome !== undefined) yield* settle(job, outcome);
        }),
      );

    const fibers = yield* FiberSet.make<void>();

    const start = (row: store.ClaimedRow, leasedUntil: Date) =>
      Effect.gen(function* () {
        const job: RunningJob = {
          id: row.id,
          kind: row.kind,
          payload: row.payload,
          priority: row.priority,
          attempt: row.attempts,
          maxAttempts: row.max_attempts,
          infrastructureFaults: row.infrastructure_faults,
          tenantId: row.tenant_id,
          connectionId: row.connection_id,
          dedupeKey: row.dedupe_key,
          leaseToken: row.lease_token,
          workerId,
        };
        const progress: HeldProgress = { phase: "waiting" };
        // Forked from the uninterruptible claim: made interruptible again, or nothing could stop it.
        const fiber = yield* FiberSet.run(
          fibers,
          Effect.interruptible(execute(job, progress)).pipe(
            // No stack trace: it would name this line for every job, and capturing it cost more
            // than the rest of a no-op job's span (CPU profile of the queue bench).
            Effect.withSpan("JobQueue.job", {
              attributes: { "job.id": job.id, "job.kind": job.kind },
              captureStackTrace: false,
            }),
            Effect.ensuring(
              Effect.sync(() => {
                if (held.get(job.id)?.job.leaseToken === job.leaseToken) held.delete(job.id);
              }).pipe(Effect.zipRight(signal)),
            ),
          ),
        );
        held.set(job.id, { job, fiber, progress, stop: undefined, leasedUntil: leasedUntil.getTime() });
      });

    /** Interrupts a job's handler and settles it as the reason says. */
    const stop = (entry: Held, reason: StopReason) =>
      Effect.gen(function* () {
        entry.stop = reason;
        yield* Fiber.interrupt(entry.fiber);
        if (reason === "cancelled") yield* settle(entry.job, { _tag: "Cancelled" });
        if (reason === "released") yield* settle(entry.job, { _tag: "Released" });
      });

    const claimOnce = Effect.gen(function* () {
      // Jobs settling no longer take a slot; waiting (prefetched) ones count against the prefetch.
      let active = 0;
      for (const entry of held.values()) if (entry.progress.phase !== "settling") active++;
      const free = concurrency + prefetch - active;
      if (free <= 0 || stopping) return 0;
      const at = yield* now;
      const lockedUntil = new Date(at.getTime() + leaseMs);
      const rows = yield* db
        .query((k) => store.claim(k, { worker: workerId, kinds, limit: free, perConnection, now: at, lockedUntil }))
        .pipe(Effect.orDie);
      // Started uninterruptibly with the claim's result, so a shutdown never loses a claimed row.
      for (const r of rows) yield* start(r, lockedUntil);
      return rows.length === free ? rows.length : 0;
    }).pipe(Effect.uninterruptible);

    const claimLoop = Effect.gen(function* () {
      while (!stopping) {
        const full = yield* claimOnce.pipe(
          Effect.catchAllCause((cause) =>
            Effect.as(Effect.logWarning("job claim failed; retrying after the poll interval", cause), 0),
          ),
        );
        if (full > 0) continue; // a full batch: there may be more waiting
        yield* Effect.raceFirst(Queue.take(wake), Effect.sleep(Duration.millis(pollMs)));
      }
    });

    /**
     * Handlers whose lease ran out while the database was unreachable are stopped:
     * another process may already be running the job, and we could not finish it anyway.
     */
    const stopExpired = Effect.gen(function* () {
      const at = yield* Clock.currentTimeMillis;
      for (const entry of held.values()) {
        if (entry.stop === undefined && entry.leasedUntil < at) {
          yield* Effect.logWarning(`job ${entry.job.id}: lease expired without renewal; stopping its handler`);
          yield* Effect.fork(stop(entry, "lease_lost"));
        }
      }
    });

    const heartbeatOnce = Effect.gen(function* () {
      const entries = [...held.values()].filter((e) => e.stop === undefined);
      if (entries.length === 0) return;
      const at = yield* now;
      const lockedUntil = new Date(at.getTime() + leaseMs);
      const rows = yield* db
        .query((k) => store.heartbeat(k, { worker: workerId, ids: entries.map((e) => e.job.id), now: at, lockedUntil }))
        .pipe(Effect.orDie);
      const renewed = new Map(rows.map((r) => [r.id, r]));
      for (const entry of entries) {
        const r = renewed.get(entry.job.id);
        if (r !== undefined && r.lease_token === entry.job.leaseToken) entry.leasedUntil = lockedUntil.getTime();
        if (r === undefined || r.lease_token !== entry.job.leaseToken) {
          // Still ours in memory only: the database gave the job to someone else.
          if (held.get(entry.job.id) === entry) {
            yield* Effect.logWarning(`job ${entry.job.id}: lease lost; stopping its handler`);
            yield* Effect.fork(stop(entry, "lease_lost"));
          }
        } else if (r.cancel_requested) {
          yield* Effect.fork(stop(entry, "cancelled"));
        }
      }
    });

    const maintenance = Effect.gen(function* () {
      const reaped = yield* deps.reapExpiredLeases;
      if (reaped > 0) {
        yield* Effect.logInfo(`took back ${reaped} job(s) whose lease expired`);
        yield* signal;
        yield* deps.announce;
      }
    });

    if (db.connectionUrl !== undefined) {
      yield* Effect.forkScoped(listenForJobs(db.connectionUrl, signal));
    }
    const repeatEvery = (effect: Effect.Effect<void>, ms: number, label: string) =>
      effect.pipe(
        Effect.catchAllCause((cause) => Effect.logWarning(`${label} failed`, cause)),
        Effect.repeat(Schedule.spaced(Duration.millis(ms))),
        Effect.forkScoped,
      );
    yield* repeatEvery(
      heartbeatOnce.pipe(
        Effect.catchAllCause((cause) => Effect.zipRight(Effect.logWarning("job heartbeat failed", cause), stopExpired)),
      ),
      heartbeatMs,
      "job heartbeat",
    );
    yield* repeatEvery(maintenance, reapMs, "lease reaper");
    yield* repeatEvery(
      Effect.asVoid(deps.prune(retentionMs)),
      Math.max(60_000, Math.min(retentionMs, 3_600_000)),
      "job pruning",
    );

    // Runs before the fibers above are interrupted (finalizers run in reverse order),
    // so heartbeats keep the leases alive while running jobs finish.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        stopping = true;
        // Prefetched jobs have not started: other workers can have them at once.
        const waiting = [...held.values()].filter((e) => e.progress.phase === "waiting" && e.stop === undefined);
        yield* Effect.forEach(waiting, (e) => stop(e, "released"), { concurrency: "unbounded", discard: true });
        // Finalizers are uninterruptible, so the deadline is checked rather than imposed by a
        // timeout; on the wall clock (under a TestClock, a job still settling at shutdown held
        // the shutdown up for good).
        yield* onWallClock(
          Effect.gen(function* () {
            const deadline = (yield* Clock.currentTimeMillis) + shutdownTimeoutMs;
            while (held.size > 0 && (yield* Clock.currentTimeMillis) < deadline) yield* Effect.sleep("20 millis");
          }),
        );
        if (held.size > 0) {
          const left = [...held.values()].filter((e) => e.stop === undefined);
          yield* Effect.logInfo(`shutdown: releasing ${left.length} unfinished job(s) to other workers`);
          yield* Effect.forEach(left, (e) => stop(e, "released"), { concurrency: "unbounded", discard: true });
        }
      }),
    );
    yield* Effect.forkScoped(claimLoop);

    return {
      id: workerId,
      running: Effect.sync(() => [...held.keys()]),
    } satisfies JobWorker;
  });
