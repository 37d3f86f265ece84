import { Cause, type Context, Effect, Exit, Option } from "effect";
import type { StoredJobError } from "../../db/schema.ts";
import { currentDate } from "../currentDate.ts";
import type { JobHandlerSpec, RunningJob } from "../JobQueue.ts";
import type { Settlement } from "../JobStore.ts";
import { describeFailure, type JobFailure, type RetryPolicy } from "../RetryPolicy.ts";

const stored = (f: JobFailure): StoredJobError => ({ tag: f.tag, message: f.message });

/**
 * Runs the handler, with one credential refresh on AuthExpired, and answers how the attempt
 * ends, as the RetryPolicy decides; undefined when it was interrupted from outside (the
 * interrupter settles it: cancel, release; or nobody may: lease lost). `restore` makes the
 * handler interruptible inside the worker's uninterruptible attempt.
 */
export const attemptOutcome = (
  policy: Context.Tag.Service<RetryPolicy>,
  spec: JobHandlerSpec,
  job: RunningJob,
  restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>,
): Effect.Effect<Settlement | undefined> =>
  Effect.gen(function* () {
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
        const at = yield* currentDate;
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
