import { randomBytes, randomUUID } from "node:crypto";
import type { RateLimited, Unavailable } from "@tandem/connector-sdk";
import { EgressPolicy, makeConnectorHttp } from "@tandem/connector-sdk/runtime";
import { Context, Data, Effect, Layer, Schema } from "effect";
import { Database } from "../db/Database.ts";
import { pageLimit, seqPage } from "../db/seqPage.ts";
import { InvalidInput, ResourceNotFound } from "../errors/Errors.ts";
import { JobQueue } from "../queue/JobQueue.ts";
import { CredentialCipher } from "../tenancy/CredentialCipher.ts";
import { attemptDelivery } from "./outbound/attemptDelivery.ts";
import { emitEvents, liveSubscriptions, scheduleAttempts } from "./outbound/emitEvents.ts";
import * as recordCursors from "./RecordEventCursors.ts";
import { RECORD_EVENT_TYPES } from "./RecordEventCursors.ts";
import * as deliveries from "./WebhookDeliveryStore.ts";
import * as subscriptions from "./WebhookSubscriptionStore.ts";

/** Job kind of one outbound delivery attempt (the worker's handler lives in SyncJobHandlers). */
export const WEBHOOK_DELIVERY_JOB_KIND = "webhook.deliver";

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

const toSubscription = (row: subscriptions.SubscriptionRow): SubscriptionView => ({
  id: row.id,
  url: row.url,
  events: row.events,
  createdAt: row.created_at.toISOString(),
  disabledAt: row.disabled_at?.toISOString() ?? null,
  disabledReason: row.disabled_reason,
});

const toDelivery = (row: deliveries.DeliveryRow): DeliveryView => ({
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

/** The associated data a subscription's secret is encrypted under. */
export const subscriptionSecretAad = (id: string) => `webhook-subscription:${id}`;

/** How outbound deliveries are made. */
export interface OutboundWebhooksOptions {
  /** Per delivery request. Default 10 s. */
  readonly timeoutMs?: number;
  /** The time deliveries are stamped and signed with. Default: the wall clock. */
  readonly clock?: () => Date;
}

/** Outbound webhooks' options; a runtime that provides none gets the defaults. */
export class OutboundWebhooksConfig extends Context.Reference<OutboundWebhooksConfig>()(
  "@tandem/core/OutboundWebhooksConfig",
  { defaultValue: (): OutboundWebhooksOptions => ({}) },
) {}

/** The outbox's operations; see OutboundWebhooks. */
export interface OutboundWebhooksService {
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
  OutboundWebhooksService
>() {
  /** Configured by `OutboundWebhooksConfig`; needs Database, CredentialCipher, EgressPolicy and JobQueue. */
  static readonly layerNoDeps = Layer.effect(
    OutboundWebhooks,
    Effect.suspend(() => makeOutboundWebhooks),
  );

  /** Needs Database and CredentialCipher (EgressPolicy defaults to the strict policy). */
  static readonly layer = OutboundWebhooks.layerNoDeps.pipe(Layer.provide(JobQueue.layer));
}

const makeOutboundWebhooks = Effect.gen(function* () {
  const db = yield* Database;
  const cipher = yield* CredentialCipher;
  const queue = yield* JobQueue;
  const egress = yield* EgressPolicy;
  const options = yield* OutboundWebhooksConfig;
  const http = makeConnectorHttp({ timeoutMs: options.timeoutMs ?? 10_000, egress });
  const now = options.clock ?? (() => new Date());
  const emitMany: OutboundWebhooksService["emitMany"] = (tenantId, events) =>
    emitEvents({ db, queue, now }, tenantId, events);

  return {
    create: Effect.fn("OutboundWebhooks.create")(function* (tenantId, input) {
      // Judged again before each delivery (and on the resolved address): this is the early, clear answer.
      const refusal = egress.refusal(input.url);
      if (refusal !== undefined) return yield* new InvalidInput({ issues: [{ path: "url", message: refusal }] });
      const id = randomUUID();
      const secret = `whsec_${randomBytes(24).toString("base64url")}`;
      const wantsRecords = input.events.some((e) => (RECORD_EVENT_TYPES as ReadonlyArray<string>).includes(e));
      const row = yield* db
        .query(async (k) => {
          const row = await subscriptions.insert(k, {
            id,
            tenant_id: tenantId,
            url: input.url,
            events: JSON.stringify([...new Set(input.events)].sort()),
            secret_ciphertext: cipher.encrypt(secret, subscriptionSecretAad(id)),
          });
          // The tenant's first `record.*` subscription hears of changes from now on (see RecordEvents);
          // with others already live, the cursors are theirs and already current.
          if (wantsRecords && !(await recordCursors.othersSubscribed(k, tenantId, id))) {
            await recordCursors.startAtHead(k, tenantId);
          }
          return row;
        })
        .pipe(db.transaction, Effect.orDie);
      return { ...toSubscription(row), secret };
    }),
    list: Effect.fn("OutboundWebhooks.list")(function* (tenantId: string) {
      return (yield* db.query((k) => subscriptions.ofTenant(k, tenantId)).pipe(Effect.orDie)).map(toSubscription);
    }),
    delete: Effect.fn("OutboundWebhooks.delete")(function* (tenantId: string, id: string) {
      const deleted = yield* db.query((k) => subscriptions.remove(k, tenantId, id)).pipe(Effect.orDie);
      if (deleted === undefined) return yield* new ResourceNotFound({ resource: "webhook subscription", id });
      return { id: deleted };
    }),
    deliveries: Effect.fn("OutboundWebhooks.deliveries")(function* (tenantId, filter) {
      const limit = pageLimit(filter.limit);
      const rows = yield* db.query((k) => deliveries.page(k, tenantId, filter, limit + 1)).pipe(Effect.orDie);
      return seqPage(rows, limit, toDelivery);
    }),
    emit: (tenantId, type, data) => emitMany(tenantId, [{ type, data }]),
    emitMany,
    wants: Effect.fn("OutboundWebhooks.wants")(function* (tenantId: string, types: ReadonlyArray<OutboundEventType>) {
      const live = yield* liveSubscriptions(db, tenantId);
      return live.some((s) => types.some((t) => s.events.includes(t)));
    }),
    attempt: (deliveryId) => attemptDelivery({ db, cipher, http, now }, deliveryId),
    markDead: Effect.fn("OutboundWebhooks.markDead")(function* (deliveryId: string, reason: string) {
      yield* db.query((k) => deliveries.markPendingDead(k, deliveryId, reason)).pipe(Effect.orDie);
    }),
    replay: Effect.fn("OutboundWebhooks.replay")(function* (tenantId: string, deliveryId: string) {
      const row = yield* db.query((k) => deliveries.setPending(k, tenantId, deliveryId)).pipe(Effect.orDie);
      if (row === undefined) return yield* new ResourceNotFound({ resource: "webhook delivery", id: deliveryId });
      yield* scheduleAttempts(queue, tenantId, [row.id]);
      return toDelivery(row);
    }),
  } satisfies OutboundWebhooksService;
});
