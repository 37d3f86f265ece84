import { Cause, Clock, type Context, Effect, Option } from "effect";
import type { Database } from "../db/Database.ts";
import { recordRunMetrics } from "../ops/MetricsReport.ts";
import type { RunHistory } from "../ops/RunHistory.ts";
import type { RunningJob } from "../queue/JobQueue.ts";
import { type Locks, syncLockKey } from "../queue/Locks.ts";
import { isLastAttempt, type RetryPolicy } from "../queue/RetryPolicy.ts";
import type { OutboundWebhooks } from "../webhooks/OutboundWebhooks.ts";
import type { EntitySync, SyncProgress, SyncRunResult } from "./EntitySync.ts";
import type { TriggeredSyncPayload } from "./SyncTriggers.ts";

/** Progress is written at most this often per run (each write is one UPDATE). */
const PROGRESS_INTERVAL_MS = 250;

/** A failure's tag and message, as run history and subscribers see it. */
export const tagOf = (cause: Cause.Cause<unknown>) => {
  const failure = Cause.failureOption(cause);
  const error = Option.isSome(failure) ? failure.value : Cause.squash(cause);
  const tag = (error as { _tag?: unknown } | null)?._tag;
  const message = (error as { message?: unknown } | null)?.message;
  return {
    tag: typeof tag === "string" ? tag : "Defect",
    message: typeof message === "string" ? message : String(error),
  };
};

export interface SyncJobHandlerDeps {
  readonly db: Context.Tag.Service<Database>;
  readonly engine: Context.Tag.Service<EntitySync>;
  readonly runs: Context.Tag.Service<RunHistory>;
  readonly policy: Context.Tag.Service<RetryPolicy>;
  readonly outbound: Context.Tag.Service<OutboundWebhooks>;
  readonly locks: Context.Tag.Service<Locks>;
}

/** Throttled progress writes: a run reports per batch, the database sees at most one write per interval. */
const progressWriter = (runs: SyncJobHandlerDeps["runs"], runId: string) => {
  let last = 0;
  return (p: SyncProgress) =>
    Effect.flatMap(Clock.currentTimeMillis, (at) => {
      if (p.phase !== "done" && at - last < PROGRESS_INTERVAL_MS) return Effect.void;
      last = at;
      return runs.progress(runId, p);
    });
};

/**
 * Runs one sync job: a run row per attempt, the connection x entity lock around the engine's run,
 * then history, metrics and `sync.completed` (or `sync.failed` on the last attempt). The run's
 * `record.*` events come from the change feed, like every other path's (webhooks/RecordEvents.ts).
 */
export const runSyncJob = (deps: SyncJobHandlerDeps, job: RunningJob) =>
  Effect.gen(function* () {
    const { engine, runs, policy, outbound, locks } = deps;
    const payload = job.payload as TriggeredSyncPayload;
    const tenantId = job.tenantId;
    if (tenantId === null) return yield* Effect.die(new Error(`sync job ${job.id} has no tenant`));
    const target = { tenantId, connectionId: payload.connectionId, entity: payload.entity };
    const runId = yield* runs.start({
      ...target,
      mode: payload.mode,
      trigger: payload.trigger ?? "schedule",
      jobId: job.id,
      attempt: job.attempt,
    });
    // The queue's dedupe key keeps one live job per connection x entity; the lock row
    // also fences a run whose lease was lost (another process took the job over).
    const exit = yield* locks
      .withLock(syncLockKey(target.connectionId, target.entity), { jobId: job.id, waitMs: 5_000 }, () =>
        engine.run({ ...target, mode: payload.mode, options: { onProgress: progressWriter(runs, runId) } }),
      )
      .pipe(Effect.exit);
    if (exit._tag === "Success") {
      const result: SyncRunResult = exit.value;
      yield* runs.succeed(runId, result);
      yield* runs.get(tenantId, runId).pipe(Effect.flatMap(recordRunMetrics));
      yield* outbound.emit(tenantId, "sync.completed", {
        runId,
        jobId: job.id,
        ...target,
        mode: payload.mode,
        created: result.created,
        updated: result.updated,
        unchanged: result.unchanged,
        deleted: result.deleted,
        errors: result.errors.length,
        durationMs: result.durationMs,
        ...(result.drifted !== undefined ? { drifted: result.drifted } : {}),
        ...(result.quarantine ? { quarantine: result.quarantine } : {}),
      });
      return { runId, ...result, errors: result.errors.slice(0, 100) };
    }
    const failure = tagOf(exit.cause);
    yield* runs.fail(runId, failure);
    yield* runs.get(tenantId, runId).pipe(Effect.flatMap(recordRunMetrics));
    // The queue decides whether this attempt is the last; tell subscribers only then.
    if (isLastAttempt(policy, job, exit.cause)) {
      yield* outbound.emit(tenantId, "sync.failed", {
        runId,
        jobId: job.id,
        ...target,
        mode: payload.mode,
        error: failure,
      });
    }
    return yield* Effect.failCause(exit.cause);
  });
