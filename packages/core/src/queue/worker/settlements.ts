import { type Context, Duration, Effect, Exit, Schedule, type Scope } from "effect";
import type { DatabaseService } from "../../db/Database.ts";
import * as GroupCommit from "../../db/GroupCommit.ts";
import { currentDate } from "../currentDate.ts";
import type { RunningJob } from "../JobQueue.ts";
import * as store from "../JobStore.ts";
import type { RetryPolicy } from "../RetryPolicy.ts";

/** Settlements per statement, at most. */
const maxSettlementBatch = 500;

/** A held job's attempt and how it ends, for the settlement statement. */
interface HeldSettlement {
  readonly job: RunningJob;
  readonly settlement: store.Settlement;
}

/** Settles a held job's attempt (with the next batch) and waits until it is written. */
export type Settle = (job: RunningJob, settlement: store.Settlement) => Effect.Effect<void>;

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

/** An error message as logged: bounded, on one line. */
const logged = (message: string) => message.replace(/\s+/g, " ").slice(0, 300);

/**
 * Logs how a job's attempt ended, once it is written: every attempt's outcome is in the log,
 * with the job's id, kind and attempt (also as annotations), and the error's tag and message
 * (never the payload, which may hold customer data). A completed attempt logs at debug: push
 * drains complete every half second per busy entity, and at info they buried everything else;
 * the jobs' history (`jobs.attempts`) and the metrics keep every one.
 */
const logSettled = (job: RunningJob, settlement: store.Settlement, policy: Context.Tag.Service<RetryPolicy>) => {
  const what = `job ${job.id} (${job.kind}) attempt ${job.attempt}/${job.maxAttempts}`;
  const log = (() => {
    switch (settlement._tag) {
      case "Completed":
        return Effect.logDebug(`${what}: completed`);
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

/**
 * A worker's settlements, group-committed: at one statement per job the queue spent most of its
 * time in round trips. A lost lease is logged and otherwise ignored (someone else holds the
 * job); a write that keeps failing leaves the leases to run out, and the reaper hands the jobs
 * to another attempt. Make it before the handlers' FiberSet, so its writer outlives every
 * handler (finalizers run in reverse order).
 */
export const makeSettlements = (deps: {
  readonly db: DatabaseService;
  readonly policy: Context.Tag.Service<RetryPolicy>;
  readonly workerId: string;
  readonly leaseMs: number;
  /** Tells other processes that jobs became claimable (released ones). */
  readonly announce: Effect.Effect<void>;
  /**
   * Wakes workers when a job comes due (this process's on a timer, others' by a NOTIFY): a job
   * retried after its backoff runs then, not at a worker's next poll (up to 2 s later).
   */
  readonly wakeAt: (at: Date) => Effect.Effect<void>;
}): Effect.Effect<Settle, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { db, policy, workerId, leaseMs } = deps;
    const settlements = yield* GroupCommit.make<HeldSettlement, void, never>({
      maxBatch: maxSettlementBatch,
      write: (batch) =>
        Effect.gen(function* () {
          const at = yield* currentDate;
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
          if (settled !== null) {
            const retries = new Set<number>();
            for (const h of batch) {
              if (h.settlement._tag === "Retry" && settled.has(h.job.id)) retries.add(h.settlement.runAt.getTime());
            }
            for (const at of retries) yield* deps.wakeAt(new Date(at));
          }
          return batch.map(() => Exit.void);
        }),
    });
    return (job, settlement) => settlements.submit({ job, settlement });
  });
