import { type Context, Effect } from "effect";
import type { RunningJob } from "../queue/JobQueue.ts";
import { isLastAttempt, type RetryPolicy } from "../queue/RetryPolicy.ts";
import type { OutboundWebhooks } from "../webhooks/OutboundWebhooks.ts";
import { tagOf } from "./syncJobHandler.ts";

/**
 * Runs one outbound delivery attempt; a rejected delivery, or the last attempt, marks it dead.
 * (It sits with the sync job handlers because they registered it first; it belongs with OutboundWebhooks.)
 */
export const runDeliveryJob = (
  {
    outbound,
    policy,
  }: { readonly outbound: Context.Tag.Service<OutboundWebhooks>; readonly policy: Context.Tag.Service<RetryPolicy> },
  job: RunningJob,
) =>
  Effect.gen(function* () {
    const { deliveryId } = job.payload as { readonly deliveryId: string };
    const exit = yield* outbound.attempt(deliveryId).pipe(Effect.exit);
    if (exit._tag === "Success") return { deliveryId, delivered: true };
    const failure = tagOf(exit.cause);
    if (failure.tag === "DeliveryRejected" || isLastAttempt(policy, job, exit.cause)) {
      yield* outbound.markDead(deliveryId, `${failure.message} (after ${job.attempt} attempts)`);
    }
    return yield* Effect.failCause(exit.cause);
  });
