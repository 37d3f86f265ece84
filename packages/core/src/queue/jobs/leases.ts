import { type Context, Effect } from "effect";
import type { DatabaseService } from "../../db/Database.ts";
import { currentDate } from "../currentDate.ts";
import * as store from "../JobStore.ts";
import type { RetryPolicy } from "../RetryPolicy.ts";

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

/** Takes back jobs whose lease expired, logging each; answers how many. */
export const reapExpiredLeases = (
  db: DatabaseService,
  policy: Context.Tag.Service<RetryPolicy>,
): Effect.Effect<number> =>
  Effect.gen(function* () {
    const at = yield* currentDate;
    const reaped = yield* db.query((k) => store.reapExpired(k, at, policy.maxInfrastructureFaults)).pipe(Effect.orDie);
    for (const job of reaped) yield* logReaped(job, policy.maxInfrastructureFaults);
    return reaped.length;
  }).pipe(Effect.withSpan("JobQueue.reapExpiredLeases"));

/** Deletes completed and cancelled jobs finished more than `retentionMs` ago. */
export const pruneFinishedJobs = Effect.fn("JobQueue.prune")(function* (db: DatabaseService, retentionMs: number) {
  const at = yield* currentDate;
  return yield* db.query((k) => store.prune(k, new Date(at.getTime() - retentionMs))).pipe(Effect.orDie);
});
