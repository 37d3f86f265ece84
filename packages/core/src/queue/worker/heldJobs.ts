import { Clock, type Context, Effect, Fiber, FiberSet } from "effect";
import type { RunningJob } from "../JobQueue.ts";
import type { ClaimedRow } from "../JobStore.ts";
import type { RetryPolicy } from "../RetryPolicy.ts";
import { attemptOutcome } from "./attemptOutcome.ts";
import type { Settle } from "./settlements.ts";
import type { WorkerSettings } from "./WorkerSettings.ts";

/** Why a running job's fiber was interrupted from outside. */
export type StopReason = "cancelled" | "released" | "lease_lost";

/**
 * Where a held job is: claimed and waiting for a slot (prefetched), its handler running,
 * or its outcome waiting for the next settlement statement.
 */
type HeldPhase = "waiting" | "running" | "settling";

/** Shared by a held job's fiber, which moves it along, and the worker, which reads it. */
interface HeldProgress {
  phase: HeldPhase;
}

/** A job this worker holds, and the fiber running it. */
export interface Held {
  readonly job: RunningJob;
  readonly fiber: Fiber.RuntimeFiber<void>;
  readonly progress: HeldProgress;
  stop: StopReason | undefined;
  /** When the lease was last known to run until (claim or heartbeat), by this process's clock. */
  leasedUntil: number;
}

/**
 * A running worker's own state: the jobs it holds (its bookkeeping of the fibers it runs; the
 * database decides who holds a job), the slots they run in, and how each ends.
 */
export interface WorkerState {
  readonly settings: WorkerSettings;
  readonly policy: Context.Tag.Service<RetryPolicy>;
  readonly held: Map<string, Held>;
  /** Set at shutdown: no more claims. */
  readonly lifecycle: { stopping: boolean };
  readonly settle: Settle;
  /** Slots for running handlers: prefetched jobs wait here, in claim order. */
  readonly slots: Effect.Semaphore;
  readonly fibers: FiberSet.FiberSet<void>;
  /** Wakes this worker's claim loop. */
  readonly signal: Effect.Effect<void>;
}

/**
 * Waits for a slot, runs the handler in it, frees the slot and settles. Uninterruptible
 * but for the wait and the handler, so an outcome, once reached, is always written.
 */
const runHeld = (state: WorkerState, job: RunningJob, progress: HeldProgress) =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function* () {
      yield* restore(state.slots.take(1));
      progress.phase = "running";
      const spec = state.settings.handlers.get(job.kind)!;
      const outcome = yield* attemptOutcome(state.policy, spec, job, restore).pipe(
        Effect.ensuring(state.slots.release(1)),
      );
      progress.phase = "settling";
      yield* state.signal; // a slot is free: claim while this one settles
      if (outcome !== undefined) yield* state.settle(job, outcome);
    }),
  );

/** Starts a claimed job's fiber and holds it. */
export const startHeld = (state: WorkerState, row: ClaimedRow, leasedUntil: Date) =>
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
      workerId: state.settings.workerId,
    };
    const progress: HeldProgress = { phase: "waiting" };
    // Forked from the uninterruptible claim: made interruptible again, or nothing could stop it.
    const fiber = yield* FiberSet.run(
      state.fibers,
      Effect.interruptible(runHeld(state, job, progress)).pipe(
        // No stack trace: it would name this line for every job, and capturing it cost more
        // than the rest of a no-op job's span (CPU profile of the queue bench).
        Effect.withSpan("JobQueue.job", {
          attributes: { "job.id": job.id, "job.kind": job.kind },
          captureStackTrace: false,
        }),
        Effect.ensuring(
          Effect.sync(() => {
            if (state.held.get(job.id)?.job.leaseToken === job.leaseToken) state.held.delete(job.id);
          }).pipe(Effect.zipRight(state.signal)),
        ),
      ),
    );
    state.held.set(job.id, { job, fiber, progress, stop: undefined, leasedUntil: leasedUntil.getTime() });
  });

/** Interrupts a job's handler and settles it as the reason says. */
export const stopHeld = (state: Pick<WorkerState, "settle">, entry: Held, reason: StopReason) =>
  Effect.gen(function* () {
    entry.stop = reason;
    yield* Fiber.interrupt(entry.fiber);
    if (reason === "cancelled") yield* state.settle(entry.job, { _tag: "Cancelled" });
    if (reason === "released") yield* state.settle(entry.job, { _tag: "Released" });
  });

/**
 * Handlers whose lease ran out while the database was unreachable are stopped:
 * another process may already be running the job, and we could not finish it anyway.
 */
export const stopExpired = (state: WorkerState) =>
  Effect.gen(function* () {
    const at = yield* Clock.currentTimeMillis;
    for (const entry of state.held.values()) {
      if (entry.stop === undefined && entry.leasedUntil < at) {
        yield* Effect.logWarning(`job ${entry.job.id}: lease expired without renewal; stopping its handler`);
        yield* Effect.fork(stopHeld(state, entry, "lease_lost"));
      }
    }
  });

/** Jobs of this worker that take a slot or wait for one (settling ones no longer do). */
export const activeCount = (state: WorkerState): number => {
  let active = 0;
  for (const entry of state.held.values()) if (entry.progress.phase !== "settling") active++;
  return active;
};

/** Held jobs that wait for a slot (prefetched, not started) and are not being stopped. */
export const waitingJobs = (state: WorkerState): ReadonlyArray<Held> =>
  [...state.held.values()].filter((e) => e.progress.phase === "waiting" && e.stop === undefined);
