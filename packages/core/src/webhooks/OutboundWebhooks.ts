import { randomBytes, randomUUID } from "node:crypto";
import { RateLimited, Unavailable } from "@tandem/connector-sdk";
import { EgressPolicy, isEgressRefused, makeConnectorHttp } from "@tandem/connector-sdk/runtime";
import { Context, Data, Effect, Layer, Schema } from "effect";
import type { Selectable } from "kysely";
import { Database } from "../db/Database.ts";
import type { WebhookDeliveriesTable, WebhookSubscriptionsTable } from "../db/schema.ts";
import { pageLimit, seqPage } from "../db/seqPage.ts";
import { InvalidInput, ResourceNotFound } from "../errors/Errors.ts";
import { JobQueue } from "../queue/JobQueue.ts";
import { CredentialCipher } from "../tenancy/CredentialCipher.ts";
import { SIGNATURE_HEADER, signPayload } from "./WebhookSignature.ts";

/** Job kind of one outbound delivery attempt (the worker's handler lives in SyncJobHandlers). */
export const WEBHOOK_DELIVERY_JOB_KIND = "webhook.deliver";

/** Attempts per delivery before it is dead (backoff is the queue's: full jitter, capped). */
const DELIVERY_ATTEMPTS = 10;

/** The events a subscription can ask for. */
export const OutboundEventType = Schema.Literal(
  "record.created",
  "record.updated",
  "record.deleted",
  "sync.completed",
  "sync.failed",
  "conflict.detected",
  "alert.triggered",
  "alert.resolved",
);
export type OutboundEventType = typeof OutboundEventType.Type;

export interface SubscriptionView {
  readonly id: string;
  readonly url: string;
  readonly events: ReadonlyArray<string>;
  readonly createdAt: string;
  readonly disabledAt: string | null;
  readonly disabledReason: string | null;
}

export interface DeliveryView {
  readonly id: string;
  readonly subscriptionId: string;
  readonly eventId: string;
  readonly eventType: string;
  readonly status: "pending" | "delivered" | "dead";
  readonly attempts: number;
  readonly lastStatus: number | null;
  readonly lastError: string | null;
  readonly lastAttemptAt: string | null;
  readonly deliveredAt: string | null;
  readonly createdAt: string;
}

/** The receiver refused for good (410 Gone): the subscription is disabled and nothing retries. */
export class DeliveryRejected extends Data.TaggedError("DeliveryRejected")<{ readonly message: string }> {}

const toSubscription = (row: Selectable<WebhookSubscriptionsTable>): SubscriptionView => ({
  id: row.id,
  url: row.url,
  events: row.events,
  createdAt: row.created_at.toISOString(),
  disabledAt: row.disabled_at?.toISOString() ?? null,
  disabledReason: row.disabled_reason,
});

const toDelivery = (row: Selectable<WebhookDeliveriesTable>): DeliveryView => ({
  id: row.id,
  subscriptionId: row.subscription_id,
  eventId: row.event_id,
  eventType: row.event_type,
  status: row.status,
  attempts: row.attempts,
  lastStatus: row.last_status,
  lastError: row.last_error,
  lastAttemptAt: row.last_attempt_at?.toISOString() ?? null,
  deliveredAt: row.delivered_at?.toISOString() ?? null,
  createdAt: row.created_at.toISOString(),
});

const aad = (id: string) => `webhook-subscription:${id}`;

/**
 * Outbound webhooks: subscriptions by event type, and a transactional outbox.
 * `emit` writes one delivery row per matching subscription in the caller's
 * transaction, so an event exists exactly when the change that caused it
 * committed. `attempt` POSTs one delivery, signed (HMAC-SHA256 over timestamp
 * and body), and records the outcome; the job queue decides retries from the
 * typed failure (RateLimited honours Retry-After, Unavailable backs off).
 */
export class OutboundWebhooks extends Context.Tag("@tandem/core/OutboundWebhooks")<
  OutboundWebhooks,
  {
    readonly create: (
      tenantId: string,
      input: { readonly url: string; readonly events: ReadonlyArray<OutboundEventType> },
    ) => Effect.Effect<SubscriptionView & { readonly secret: string }, InvalidInput>;
    readonly list: (tenantId: string) => Effect.Effect<ReadonlyArray<SubscriptionView>>;
    readonly delete: (tenantId: string, id: string) => Effect.Effect<{ readonly id: string }, ResourceNotFound>;
    readonly deliveries: (
      tenantId: string,
      filter: {
        readonly subscriptionId?: string;
        readonly status?: DeliveryView["status"];
        readonly cursor?: string;
        readonly limit?: number;
      },
    ) => Effect.Effect<{ readonly items: ReadonlyArray<DeliveryView>; readonly nextCursor: string | null }>;
    /** Queues the event for every live subscription of the tenant that wants it; returns the delivery ids. */
    readonly emit: (tenantId: string, type: OutboundEventType, data: unknown) => Effect.Effect<ReadonlyArray<string>>;
    /** Many events at once: one subscription read, batched inserts, one transaction. */
    readonly emitMany: (
      tenantId: string,
      events: ReadonlyArray<{ readonly type: OutboundEventType; readonly data: unknown }>,
    ) => Effect.Effect<ReadonlyArray<string>>;
    /** Whether any live subscription of the tenant wants one of these types (to skip work that nobody reads). */
    readonly wants: (tenantId: string, types: ReadonlyArray<OutboundEventType>) => Effect.Effect<boolean>;
    /** One delivery attempt. Succeeds when the receiver answered 2xx (or the delivery is no longer pending). */
    readonly attempt: (deliveryId: string) => Effect.Effect<void, RateLimited | Unavailable | DeliveryRejected>;
    /** Gives up on a delivery (the queue's last attempt failed). */
    readonly markDead: (deliveryId: string, reason: string) => Effect.Effect<void>;
    /** Puts a dead or delivered delivery back to pending, for another round of attempts. */
    readonly replay: (tenantId: string, deliveryId: string) => Effect.Effect<DeliveryView, ResourceNotFound>;
  }
>() {
  static layer(options: { readonly timeoutMs?: number; readonly clock?: () => Date } = {}) {
    return Layer.effect(
      OutboundWebhooks,
      Effect.gen(function* () {
        const db = yield* Database;
        const cipher = yield* CredentialCipher;
        const queue = yield* JobQueue;
        /** One attempt job per delivery, in the caller's transaction when there is one. */
        const schedule = (tenantId: string, deliveryIds: ReadonlyArray<string>) =>
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
        const egress = yield* EgressPolicy;
        const http = makeConnectorHttp({ timeoutMs: options.timeoutMs ?? 10_000, egress });
        const now = options.clock ?? (() => new Date());

        const liveSubscriptions = (tenantId: string) =>
          db
            .query((k) =>
              k
                .selectFrom("webhook_subscriptions")
                .select(["id", "events"])
                .where("tenant_id", "=", tenantId)
                .where("disabled_at", "is", null)
                .execute(),
            )
            .pipe(Effect.orDie);

        /** One outbox row per (event, subscription that wants it), with its attempt job, in one transaction. */
        const emitMany = Effect.fn("OutboundWebhooks.emitMany")(function* (
          tenantId: string,
          events: ReadonlyArray<{ readonly type: OutboundEventType; readonly data: unknown }>,
        ) {
          if (events.length === 0) return [];
          const subscriptions = yield* liveSubscriptions(tenantId);
          const createdAt = now().toISOString();
          const rows = events.flatMap((event) => {
            const wanted = subscriptions.filter((s) => s.events.includes(event.type));
            if (wanted.length === 0) return [];
            const eventId = randomUUID();
            const payload = JSON.stringify({ id: eventId, type: event.type, createdAt, data: event.data });
            return wanted.map((s) => ({
              id: randomUUID(),
              tenant_id: tenantId,
              subscription_id: s.id,
              event_id: eventId,
              event_type: event.type,
              payload,
            }));
          });
          if (rows.length === 0) return [];
          yield* db.transaction(
            Effect.gen(function* () {
              // Chunked to stay well under the bind-parameter limit (6 columns per row).
              for (let i = 0; i < rows.length; i += 1_000) {
                const chunk = rows.slice(i, i + 1_000);
                yield* db.query((k) => k.insertInto("webhook_deliveries").values(chunk).execute()).pipe(Effect.orDie);
              }
              yield* schedule(
                tenantId,
                rows.map((r) => r.id),
              );
            }),
          );
          return rows.map((r) => r.id);
        });

        return {
          create: Effect.fn("OutboundWebhooks.create")(function* (tenantId, input) {
            // Judged again before each delivery (and on the resolved address): this is the early, clear answer.
            const refusal = egress.refusal(input.url);
            if (refusal !== undefined) return yield* new InvalidInput({ issues: [{ path: "url", message: refusal }] });
            const id = randomUUID();
            const secret = `whsec_${randomBytes(24).toString("base64url")}`;
            const row = yield* db
              .query((k) =>
                k
                  .insertInto("webhook_subscriptions")
                  .values({
                    id,
                    tenant_id: tenantId,
                    url: input.url,
                    events: JSON.stringify([...new Set(input.events)].sort()),
                    secret_ciphertext: cipher.encrypt(secret, aad(id)),
                  })
                  .returningAll()
                  .executeTakeFirstOrThrow(),
              )
              .pipe(Effect.orDie);
            return { ...toSubscription(row), secret };
          }),

          list: Effect.fn("OutboundWebhooks.list")(function* (tenantId: string) {
            const rows = yield* db
              .query((k) =>
                k
                  .selectFrom("webhook_subscriptions")
                  .selectAll()
                  .where("tenant_id", "=", tenantId)
                  .orderBy("created_at")
                  .execute(),
              )
              .pipe(Effect.orDie);
            return rows.map(toSubscription);
          }),

          delete: Effect.fn("OutboundWebhooks.delete")(function* (tenantId: string, id: string) {
            const row = yield* db
              .query((k) =>
                k
                  .deleteFrom("webhook_subscriptions")
                  .where("tenant_id", "=", tenantId)
                  .where("id", "=", id)
                  .returning("id")
                  .executeTakeFirst(),
              )
              .pipe(Effect.orDie);
            if (row === undefined) return yield* new ResourceNotFound({ resource: "webhook subscription", id });
            return { id: row.id };
          }),

          deliveries: Effect.fn("OutboundWebhooks.deliveries")(function* (tenantId, filter) {
            const limit = pageLimit(filter.limit);
            const rows = yield* db
              .query((k) => {
                let q = k.selectFrom("webhook_deliveries").selectAll().where("tenant_id", "=", tenantId);
                if (filter.subscriptionId) q = q.where("subscription_id", "=", filter.subscriptionId);
                if (filter.status) q = q.where("status", "=", filter.status);
                if (filter.cursor) q = q.where("seq", ">", filter.cursor);
                return q
                  .orderBy("seq")
                  .limit(limit + 1)
                  .execute();
              })
              .pipe(Effect.orDie);
            return seqPage(rows, limit, toDelivery);
          }),

          emit: (tenantId: string, type: OutboundEventType, data: unknown) => emitMany(tenantId, [{ type, data }]),
          emitMany,
          wants: Effect.fn("OutboundWebhooks.wants")(function* (
            tenantId: string,
            types: ReadonlyArray<OutboundEventType>,
          ) {
            const subscriptions = yield* liveSubscriptions(tenantId);
            return subscriptions.some((s) => types.some((t) => s.events.includes(t)));
          }),

          attempt: Effect.fn("OutboundWebhooks.attempt")(function* (deliveryId: string) {
            const delivery = yield* db
              .query((k) =>
                k
                  .selectFrom("webhook_deliveries as d")
                  .innerJoin("webhook_subscriptions as s", "s.id", "d.subscription_id")
                  .select([
                    "d.id",
                    "d.status",
                    "d.payload",
                    "d.event_id",
                    "d.event_type",
                    "s.id as subscription_id",
                    "s.url",
                    "s.secret_ciphertext",
                    "s.disabled_at",
                  ])
                  .where("d.id", "=", deliveryId)
                  .executeTakeFirst(),
              )
              .pipe(Effect.orDie);
            // Deleted subscription, already delivered, or given up: nothing to do.
            if (delivery === undefined || delivery.status !== "pending" || delivery.disabled_at !== null) return;
            const secret = yield* cipher
              .decrypt(delivery.secret_ciphertext, aad(delivery.subscription_id))
              .pipe(Effect.orDie);
            const body = JSON.stringify(delivery.payload);
            const at = now();
            const outcome = yield* Effect.tryPromise({
              try: () =>
                http.request({
                  method: "POST",
                  url: delivery.url,
                  headers: {
                    "content-type": "application/json",
                    [SIGNATURE_HEADER]: signPayload(secret, body, Math.floor(at.getTime() / 1000)),
                    "tandem-event-id": delivery.event_id,
                    "tandem-event-type": delivery.event_type,
                    "tandem-delivery-id": delivery.id,
                  },
                  body,
                }),
              catch: (e) =>
                e instanceof RateLimited || e instanceof Unavailable || isEgressRefused(e)
                  ? e
                  : new Unavailable({ message: e instanceof Error ? e.message : String(e) }),
            }).pipe(Effect.either);
            if (outcome._tag === "Left" && isEgressRefused(outcome.left)) {
              // No status and no connection detail: the delivery log must not tell a tenant which
              // internal ports answer. A refusal does not heal by retrying, so the delivery is dead.
              const reason = "refused by the egress policy (private, loopback or link-local address, or a redirect)";
              yield* db
                .query((k) =>
                  k
                    .updateTable("webhook_deliveries")
                    .set((eb) => ({
                      attempts: eb("attempts", "+", 1),
                      last_attempt_at: at,
                      last_status: null,
                      last_error: reason,
                    }))
                    .where("id", "=", deliveryId)
                    .execute(),
                )
                .pipe(Effect.orDie);
              return yield* new DeliveryRejected({ message: reason });
            }
            if (outcome._tag === "Left") {
              const error = outcome.left as RateLimited | Unavailable;
              yield* db
                .query((k) =>
                  k
                    .updateTable("webhook_deliveries")
                    .set((eb) => ({
                      attempts: eb("attempts", "+", 1),
                      last_attempt_at: at,
                      last_status: error._tag === "RateLimited" ? 429 : (error.status ?? null),
                      last_error: error.message,
                    }))
                    .where("id", "=", deliveryId)
                    .execute(),
                )
                .pipe(Effect.orDie);
              return yield* error;
            }
            const status = outcome.right.status;
            yield* db
              .query((k) =>
                k
                  .updateTable("webhook_deliveries")
                  .set((eb) => ({
                    attempts: eb("attempts", "+", 1),
                    last_attempt_at: at,
                    last_status: status,
                    last_error: status >= 200 && status < 300 ? null : `receiver answered ${status}`,
                    ...(status >= 200 && status < 300 ? { status: "delivered" as const, delivered_at: at } : {}),
                  }))
                  .where("id", "=", deliveryId)
                  .execute(),
              )
              .pipe(Effect.orDie);
            if (status >= 200 && status < 300) return;
            if (status === 410) {
              yield* db
                .query((k) =>
                  k
                    .updateTable("webhook_subscriptions")
                    .set({ disabled_at: at, disabled_reason: "receiver answered 410 Gone" })
                    .where("id", "=", delivery.subscription_id)
                    .execute(),
                )
                .pipe(Effect.orDie);
              yield* db
                .query((k) =>
                  k.updateTable("webhook_deliveries").set({ status: "dead" }).where("id", "=", deliveryId).execute(),
                )
                .pipe(Effect.orDie);
              return yield* new DeliveryRejected({ message: "receiver answered 410 Gone; subscription disabled" });
            }
            // Any other answer may be a misconfigured receiver that gets fixed: retry with backoff.
            return yield* new Unavailable({ message: `receiver answered ${status}`, status });
          }),

          markDead: Effect.fn("OutboundWebhooks.markDead")(function* (deliveryId: string, reason: string) {
            yield* db
              .query((k) =>
                k
                  .updateTable("webhook_deliveries")
                  .set({ status: "dead", last_error: reason })
                  .where("id", "=", deliveryId)
                  .where("status", "=", "pending")
                  .execute(),
              )
              .pipe(Effect.orDie);
          }),

          replay: Effect.fn("OutboundWebhooks.replay")(function* (tenantId: string, deliveryId: string) {
            const row = yield* db
              .query((k) =>
                k
                  .updateTable("webhook_deliveries")
                  .set({ status: "pending" })
                  .where("tenant_id", "=", tenantId)
                  .where("id", "=", deliveryId)
                  .returningAll()
                  .executeTakeFirst(),
              )
              .pipe(Effect.orDie);
            if (row === undefined) return yield* new ResourceNotFound({ resource: "webhook delivery", id: deliveryId });
            yield* schedule(tenantId, [row.id]);
            return toDelivery(row);
          }),
        };
      }),
    );
  }
}
