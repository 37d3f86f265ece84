import type { Kysely, Selectable } from "kysely";
import type { DB, WebhookDeliveriesTable } from "../db/schema.ts";

/**
 * The outbox's statements, as plain functions over Kysely: the one module that writes
 * `webhook_deliveries`.
 */

export type DeliveryRow = Selectable<WebhookDeliveriesTable>;

/** A delivery to queue: one event for one subscription. */
export interface NewDelivery {
  readonly id: string;
  readonly tenant_id: string;
  readonly subscription_id: string;
  readonly event_id: string;
  readonly event_type: string;
  /** JSON text. */
  readonly payload: string;
  /** Deliveries of one subscription with the same key are sent in insertion order (a record's events). */
  readonly ordering_key?: string | null;
}

/** Inserts deliveries, a statement per 1,000 (7 columns per row: well under the bind-parameter limit). */
export const insertMany = async (db: Kysely<DB>, rows: ReadonlyArray<NewDelivery>): Promise<void> => {
  for (let i = 0; i < rows.length; i += 1_000) {
    await db
      .insertInto("webhook_deliveries")
      .values(rows.slice(i, i + 1_000))
      .execute();
  }
};

/** Which deliveries `page` reads. */
export interface DeliveryFilter {
  readonly subscriptionId?: string;
  readonly status?: DeliveryRow["status"];
  /** The `seq` after which to read. */
  readonly cursor?: string;
}

/** Up to `limit` of the tenant's deliveries in `seq` order after the cursor. */
export const page = (
  db: Kysely<DB>,
  tenantId: string,
  filter: DeliveryFilter,
  limit: number,
): Promise<ReadonlyArray<DeliveryRow>> => {
  let q = db.selectFrom("webhook_deliveries").selectAll().where("tenant_id", "=", tenantId);
  if (filter.subscriptionId) q = q.where("subscription_id", "=", filter.subscriptionId);
  if (filter.status) q = q.where("status", "=", filter.status);
  if (filter.cursor) q = q.where("seq", ">", filter.cursor);
  return q.orderBy("seq").limit(limit).execute();
};

/** A delivery with what its attempt needs of its subscription (none when either is gone). */
export const withSubscription = (db: Kysely<DB>, deliveryId: string) =>
  db
    .selectFrom("webhook_deliveries as d")
    .innerJoin("webhook_subscriptions as s", "s.id", "d.subscription_id")
    .select([
      "d.id",
      "d.seq",
      "d.ordering_key",
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
    .executeTakeFirst();

/**
 * The pending deliveries of the subscription with the same ordering key that were queued before
 * `seq` (a record's earlier events), oldest first, at most `limit`, with what their attempt needs.
 */
export const earlierPending = (
  db: Kysely<DB>,
  delivery: { readonly subscriptionId: string; readonly orderingKey: string; readonly seq: string },
  limit: number,
) =>
  db
    .selectFrom("webhook_deliveries")
    .select(["id", "seq", "payload", "event_id", "event_type"])
    .where("subscription_id", "=", delivery.subscriptionId)
    .where("ordering_key", "=", delivery.orderingKey)
    .where("status", "=", "pending")
    .where("seq", "<", delivery.seq)
    .orderBy("seq")
    .limit(limit)
    .execute();

/** Records one attempt's answer; a 2xx marks the delivery delivered. */
export const recordAttempt = async (
  db: Kysely<DB>,
  deliveryId: string,
  attempt: {
    readonly at: Date;
    readonly status: number | null;
    readonly error: string | null;
    readonly delivered: boolean;
  },
): Promise<void> => {
  await db
    .updateTable("webhook_deliveries")
    .set((eb) => ({
      attempts: eb("attempts", "+", 1),
      last_attempt_at: attempt.at,
      last_status: attempt.status,
      last_error: attempt.error,
      ...(attempt.delivered ? { status: "delivered" as const, delivered_at: attempt.at } : {}),
    }))
    .where("id", "=", deliveryId)
    .execute();
};

/** Marks a delivery dead, whatever its state (its subscription is gone for good). */
export const setDead = async (db: Kysely<DB>, deliveryId: string): Promise<void> => {
  await db.updateTable("webhook_deliveries").set({ status: "dead" }).where("id", "=", deliveryId).execute();
};

/** Gives up on a pending delivery, with the reason. */
export const markPendingDead = async (db: Kysely<DB>, deliveryId: string, reason: string): Promise<void> => {
  await db
    .updateTable("webhook_deliveries")
    .set({ status: "dead", last_error: reason })
    .where("id", "=", deliveryId)
    .where("status", "=", "pending")
    .execute();
};

/** Puts a tenant's delivery back to pending; answers it, or undefined when there is none. */
export const setPending = (db: Kysely<DB>, tenantId: string, deliveryId: string): Promise<DeliveryRow | undefined> =>
  db
    .updateTable("webhook_deliveries")
    .set({ status: "pending" })
    .where("tenant_id", "=", tenantId)
    .where("id", "=", deliveryId)
    .returningAll()
    .executeTakeFirst();
