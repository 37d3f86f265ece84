import { Clock, type Context, Duration, Effect, FiberSet, Queue, Schedule, type Scope } from "effect";
import type { DatabaseService } from "../../db/Database.ts";
import type { JobWorker, WorkerOptions } from "../JobQueue.ts";
import { listenForJobs, wakeWhenDue } from "../JobWakeups.ts";
import type { RetryPolicy } from "../RetryPolicy.ts";
import { onWallClock } from "../WallClock.ts";
import { claimLoop } from "./claims.ts";
import { heartbeatOnce } from "./heartbeat.ts";
import { stopExpired, stopHeld, type WorkerState, waitingJobs } from "./heldJobs.ts";
import { makeSettlements } from "./settlements.ts";
import { workerSettings } from "./WorkerSettings.ts";

/** What a worker needs from its queue. */
export interface WorkerDeps {
  readonly db: DatabaseService;
  readonly policy: Context.Tag.Service<RetryPolicy>;
  readonly reapExpiredLeases: Effect.Effect<number>;
  readonly prune: (retentionMs: number) => Effect.Effect<number>;
  /** Wake-up queues of this process's workers: a worker adds its own while it runs. */
  readonly wakers: Set<Queue.Queue<void>>;
  /** Tells other processes that jobs became claimable (see makeJobAnnouncer). */
  readonly announce: Effect.Effect<void>;
  /** Wakes every process's workers when a job comes due (JobQueue's, as for a job queued for later). */
  readonly wakeAt: (at: Date) => Effect.Effect<void>;
}

/** Takes back expired leases; wakes the claimers (here and elsewhere) when there were any. */
const maintenance = (deps: WorkerDeps, signal: Effect.Effect<void>) =>
  Effect.gen(function* () {
    const reaped = yield* deps.reapExpiredLeases;
    if (reaped > 0) {
      yield* Effect.logInfo(`took back ${reaped} job(s) whose lease expired`);
      yield* signal;
      yield* deps.announce;
    }
  });

const repeatEvery = (effect: Effect.Effect<void>, ms: number, label: string) =>
  effect.pipe(
    Effect.catchAllCause((cause) => Effect.logWarning(`${label} failed`, cause)),
    Effect.repeat(Schedule.spaced(Duration.millis(ms))),
    Effect.forkScoped,
  );

/**
 * At shutdown: no more claims; prefetched jobs are released at once; running ones get
 * `shutdownTimeoutMs` to finish, and those still running then are released to other workers.
 */
const shutDown = (state: WorkerState) =>
  Effect.gen(function* () {
    state.lifecycle.stopping = true;
    // Prefetched jobs have not started: other workers can have them at once.
    yield* Effect.forEach(waitingJobs(state), (e) => stopHeld(state, e, "released"), {
      concurrency: "unbounded",
      discard: true,
    });
    // Finalizers are uninterruptible, so the deadline is checked rather than imposed by a
    // timeout; on the wall clock (under a TestClock, a job still settling at shutdown held
    // the shutdown up for good).
    yield* onWallClock(
      Effect.gen(function* () {
        const deadline = (yield* Clock.currentTimeMillis) + state.settings.shutdownTimeoutMs;
        while (state.held.size > 0 && (yield* Clock.currentTimeMillis) < deadline) yield* Effect.sleep("20 millis");
      }),
    );
    if (state.held.size > 0) {
      const left = [...state.held.values()].filter((e) => e.stop === undefined);
      yield* Effect.logInfo(`shutdown: releasing ${left.length} unfinished job(s) to other workers`);
      yield* Effect.forEach(left, (e) => stopHeld(state, e, "released"), { concurrency: "unbounded", discard: true });
    }
  });

/** Starts a worker in the current Scope (see `JobQueueService.worker`). */
export const runWorker = (options: WorkerOptions, deps: WorkerDeps): Effect.Effect<JobWorker, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { db } = deps;
    const settings = workerSettings(options);

    const wake = yield* Queue.sliding<void>(1);
    deps.wakers.add(wake);
    yield* Effect.addFinalizer(() => Effect.sync(() => deps.wakers.delete(wake)));
    const signal = Effect.sync(() => Queue.unsafeOffer(wake, undefined));

    // Made before the handlers' FiberSet, so its writer outlives every handler (finalizers run
    // in reverse order).
    const settle = yield* makeSettlements({
      db,
      policy: deps.policy,
      workerId: settings.workerId,
      leaseMs: settings.leaseMs,
      announce: deps.announce,
      wakeAt: deps.wakeAt,
    });
    const state: WorkerState = {
      settings,
      policy: deps.policy,
      held: new Map(),
      lifecycle: { stopping: false },
      settle,
      slots: yield* Effect.makeSemaphore(settings.concurrency),
      fibers: yield* FiberSet.make<void>(),
      signal,
    };

    if (db.connectionUrl !== undefined) {
      const scope = yield* Effect.scope;
      // A job another process queued for later wakes this worker when it comes due.
      yield* Effect.forkScoped(listenForJobs(db.connectionUrl, signal, (at) => wakeWhenDue(at, signal, scope)));
    }
    yield* repeatEvery(
      heartbeatOnce(db, state).pipe(
        Effect.catchAllCause((cause) =>
          Effect.zipRight(Effect.logWarning("job heartbeat failed", cause), stopExpired(state)),
        ),
      ),
      settings.heartbeatMs,
      "job heartbeat",
    );
    yield* repeatEvery(maintenance(deps, signal), settings.reapMs, "lease reaper");
    yield* repeatEvery(
      Effect.asVoid(deps.prune(settings.retentionMs)),
      Math.max(60_000, Math.min(settings.retentionMs, 3_600_000)),
      "job pruning",
    );

    // Runs before the fibers above are interrupted (finalizers run in reverse order),
    // so heartbeats keep the leases alive while running jobs finish.
    yield* Effect.addFinalizer(() => shutDown(state));
    yield* Effect.forkScoped(claimLoop(db, state, wake));

    return {
      id: settings.workerId,
      running: Effect.sync(() => [...state.held.keys()]),
    } satisfies JobWorker;
  });
