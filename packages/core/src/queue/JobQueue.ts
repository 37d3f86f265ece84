import { Context, Effect, Layer, Queue, type Scope } from "effect";
import { Database } from "../db/Database.ts";
import type { JobAttemptOutcome, JobStatus, StoredJobError } from "../db/schema.ts";
import type { AlreadyRunning, InvalidInput, ResourceNotFound } from "../errors/Errors.ts";
import type { JobListFilter, NewJob, QueuedJobMatch } from "./JobStore.ts";
import * as store from "./JobStore.ts";
import { makeDueAnnouncer, makeJobAnnouncer, wakeWhenDue } from "./JobWakeups.ts";
import { cancelJob } from "./jobs/cancelJob.ts";
import { discardDeadJob, replayDeadJob } from "./jobs/deadLetters.ts";
import { enqueue, enqueueMany, prepare } from "./jobs/enqueue.ts";
import { jobRow, toAttemptView, toView } from "./jobs/jobViews.ts";
import { pruneFinishedJobs, reapExpiredLeases } from "./jobs/leases.ts";
import type { JobPriorityName } from "./jobs/priority.ts";
import type { QueueDeps } from "./jobs/QueueDeps.ts";
import { RetryPolicy } from "./RetryPolicy.ts";
import { runWorker } from "./worker/runWorker.ts";

export type { JobListFilter, QueuedJobMatch } from "./JobStore.ts";
export { JobPriority, type JobPriorityName, priorityValue } from "./jobs/priority.ts";

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
  ) => Effect.Effect<ReadonlyArray<NewJob>, InvalidInput>;
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
  /**
   * A queued job of `match`, share-locked until the current transaction ends (see
   * `JobStore.holdQueued`): a writer that finds one needs no other job for its rows, and that job
   * cannot start before the rows are committed. Outside a transaction the hold ends at once.
   */
  readonly holdQueued: (match: QueuedJobMatch) => Effect.Effect<string | undefined>;
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

  /** With the RetryPolicy of `RetryPolicyConfig`; needs Database. */
  static readonly layer = JobQueue.layerNoDeps.pipe(Layer.provide(RetryPolicy.layer));
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
  const wakeLocalWorkers = Effect.sync(() => {
    for (const q of wakers) Queue.unsafeOffer(q, undefined);
  });
  const wake = db.afterCommit(Effect.zipRight(wakeLocalWorkers, announce));
  const scope = yield* Effect.scope;
  const announceDue = makeDueAnnouncer(db);
  /** A job comes due at `at`: once it is committed, this process's workers and every other's wake then. */
  const wakeAt = (at: Date) =>
    db.afterCommit(Effect.zipRight(wakeWhenDue(at, wakeLocalWorkers, scope), announceDue(at)));
  const deps: QueueDeps = { db, policy, wake, wakeAt };
  const list = Effect.fn("JobQueue.list")(function* (filter: JobListFilter = {}) {
    return (yield* db.query((k) => store.list(k, filter)).pipe(Effect.orDie)).map(toView);
  });
  const reapExpired = reapExpiredLeases(db, policy);
  const prune = (retentionMs: number) => pruneFinishedJobs(db, retentionMs);

  return {
    enqueue: (input) => enqueue(deps, input),
    enqueueMany: (inputs) => enqueueMany(deps, inputs),
    prepare: (inputs) => prepare(policy, inputs),
    get: Effect.fn("JobQueue.get")(function* (id: string, tenantId?: string) {
      return toView(yield* jobRow(db, id, tenantId));
    }),
    list,
    counts: Effect.fn("JobQueue.counts")(function* (filter: Omit<JobListFilter, "status" | "limit"> = {}) {
      return yield* db.query((k) => store.countByStatus(k, filter)).pipe(Effect.orDie);
    }),
    attempts: Effect.fn("JobQueue.attempts")(function* (id: string) {
      return (yield* db.query((k) => store.attemptsOf(k, id)).pipe(Effect.orDie)).map(toAttemptView);
    }),
    cancel: (id, tenantId) => cancelJob(db, id, tenantId),
    deadLetters: (filter = {}) => list({ ...filter, status: "dead" }),
    replay: (id, tenantId) => replayDeadJob(deps, id, tenantId),
    discard: (id, tenantId) => discardDeadJob(db, id, tenantId),
    reapExpiredLeases: reapExpired,
    prune,
    holdQueued: Effect.fn("JobQueue.holdQueued")((match: QueuedJobMatch) =>
      db.query((k) => store.holdQueued(k, match)).pipe(Effect.orDie),
    ),
    nudge: wake,
    worker: (options) =>
      runWorker(options, { db, policy, reapExpiredLeases: reapExpired, prune, wakers, announce, wakeAt }).pipe(
        Effect.withSpan("JobQueue.worker"),
      ),
  } satisfies JobQueueService;
});
