import { randomUUID } from "node:crypto";
import { type Context, Effect } from "effect";
import type { DatabaseService } from "../../db/Database.ts";
import type { JobQueue } from "../../queue/JobQueue.ts";
import { type OutboundEventType, WEBHOOK_DELIVERY_JOB_KIND } from "../OutboundWebhooks.ts";
import * as deliveries from "../WebhookDeliveryStore.ts";
import * as subscriptions from "../WebhookSubscriptionStore.ts";

/** Attempts per delivery before it is dead (backoff is the queue's: full jitter, capped). */
const DELIVERY_ATTEMPTS = 10;

/** What emitting and scheduling deliveries needs. */
export interface EmitDeps {
  readonly db: DatabaseService;
  readonly queue: Context.Tag.Service<JobQueue>;
  readonly now: () => Date;
}

/** One attempt job per delivery, in the caller's transaction when there is one. */
export const scheduleAttempts = (
  queue: Context.Tag.Service<JobQueue>,
  tenantId: string,
  deliveryIds: ReadonlyArray<string>,
) =>
  queue
    .enqueueMany(
      deliveryIds.map((deliveryId) => ({
        kind: WEBHOOK_DELIVERY_JOB_KIND,
        payload: { deliveryId },
        tenantId,
        maxAttempts: DELIVERY_ATTEMPTS,
      })),
    )
    .pipe(Effect.orDie);

/** The tenant's live subscriptions. */
export const liveSubscriptions = (db: DatabaseService, tenantId: string) =>
  db.query((k) => subscriptions.live(k, tenantId)).pipe(Effect.orDie);

/** One outbox row per (event, subscription that wants it), with its attempt job, in one transaction. */
export const emitEvents = Effect.fn("OutboundWebhooks.emitMany")(function* (
  deps: EmitDeps,
  tenantId: string,
  events: ReadonlyArray<{ readonly type: OutboundEventType; readonly data: unknown }>,
) {
  if (events.length === 0) return [];
  const wanting = yield* liveSubscriptions(deps.db, tenantId);
  const createdAt = deps.now().toISOString();
  const rows = events.flatMap((event) => {
    const wanted = wanting.filter((s) => s.events.includes(event.type));
    if (wanted.length === 0) return [];
    const eventId = randomUUID();
    const payload = JSON.stringify({ id: eventId, type: event.type, createdAt, data: event.data });
    return wanted.map(
      (s): deliveries.NewDelivery => ({
        id: randomUUID(),
        tenant_id: tenantId,
        subscription_id: s.id,
        event_id: eventId,
        event_type: event.type,
        payload,
      }),
    );
  });
  if (rows.length === 0) return [];
  yield* deps.db.transaction(
    Effect.gen(function* () {
      yield* deps.db.query((k) => deliveries.insertMany(k, rows)).pipe(Effect.orDie);
      yield* scheduleAttempts(
        deps.queue,
        tenantId,
        rows.map((r) => r.id),
      );
    }),
  );
  return rows.map((r) => r.id);
});
