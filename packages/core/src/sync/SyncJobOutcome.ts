import { Effect } from "effect";
import type { JobQueueService, JobView } from "../queue/JobQueue.ts";
import { type SyncResult, SyncSourceFailed, UnknownSyncJob } from "./SyncJob.ts";

/**
 * What a job's end means to `triggerSync`: its result, or the error of its last attempt. The
 * stored error keeps the tag and message only, so a source failure reads back with its tag as
 * the `type` (`SyncSourceFailed`), and the message names the retry decision that ended it.
 */
const outcomeOf = (name: string, job: JobView): Effect.Effect<SyncResult, UnknownSyncJob | SyncSourceFailed> => {
  if (job.status === "completed") return Effect.succeed(job.result as SyncResult);
  if (job.lastError?.tag === "UnknownSyncJob") return Effect.fail(new UnknownSyncJob({ name }));
  const error =
    job.status === "cancelled"
      ? { tag: "Cancelled", message: `sync job ${job.id} was cancelled` }
      : (job.lastError ?? { tag: "Defect", message: `sync job ${job.id} ended ${job.status}` });
  return Effect.fail(new SyncSourceFailed({ name, type: error.tag, message: error.message }));
};

const isLive = (job: JobView) => job.status === "queued" || job.status === "running";

/**
 * Waits for a sync job to end, wherever it runs (the queue tells other processes when jobs are
 * claimable, not when they end), and answers its result or its last attempt's error. It polls
 * the job's row every 50 ms at first, backing off to once a second: a short run answers
 * quickly, and an hour-long one costs one small query a second.
 */
export const awaitSyncJobResult = (
  queue: JobQueueService,
  name: string,
  jobId: string,
): Effect.Effect<SyncResult, UnknownSyncJob | SyncSourceFailed> =>
  Effect.gen(function* () {
    let delayMs = 50;
    while (true) {
      // Only a finished job is pruned, after the retention period (7 days by default).
      const job = yield* queue.get(jobId).pipe(Effect.orDie);
      if (!isLive(job)) return yield* outcomeOf(name, job);
      yield* Effect.sleep(delayMs);
      delayMs = Math.min(1_000, delayMs * 2);
    }
  });
