import { type Context, Effect } from "effect";
import type { JobQueue } from "../../queue/JobQueue.ts";

/** Job kind of one alert evaluation pass (payload `{ tenantId? }`: one tenant, or all). */
export const ALERTS_EVALUATE_JOB_KIND = "alerts.evaluate";

/**
 * Asks for an evaluation of one tenant's alert rules now rather than at the next tick of the
 * alerts schedule (a minute by default): for a change an operator must hear of at once, such
 * as deletions held for review. One evaluation per tenant waits at a time (a dedupe key): while
 * one is queued, asking again adds nothing, since it will see the change too.
 */
export const requestAlertEvaluation = (queue: Context.Tag.Service<JobQueue>, tenantId: string) =>
  queue
    .enqueue({
      kind: ALERTS_EVALUATE_JOB_KIND,
      payload: { tenantId },
      tenantId,
      priority: "onDemand",
      maxAttempts: 2,
      dedupeKey: `${ALERTS_EVALUATE_JOB_KIND}:${tenantId}`,
    })
    .pipe(
      Effect.asVoid,
      Effect.catchTags({ AlreadyRunning: () => Effect.void, InvalidInput: Effect.die }),
      Effect.withSpan("Alerts.requestEvaluation"),
    );
