import type { Kysely, Selectable } from "kysely";
import type { DB, WebhookSubscriptionsTable } from "../db/schema.ts";

/**
 * The subscriptions' statements, as plain functions over Kysely: the one module that writes
 * `webhook_subscriptions`.
 */

export type SubscriptionRow = Selectable<WebhookSubscriptionsTable>;

export const insert = (
  db: Kysely<DB>,
  row: {
    readonly id: string;
    readonly tenant_id: string;
    readonly url: string;
    /** JSON text of the sorted event types. */
    readonly events: string;
    readonly secret_ciphertext: string;
  },
): Promise<SubscriptionRow> =>
  db.insertInto("webhook_subscriptions").values(row).returningAll().executeTakeFirstOrThrow();

/** The tenant's subscriptions, oldest first. */
export const ofTenant = (db: Kysely<DB>, tenantId: string): Promise<ReadonlyArray<SubscriptionRow>> =>
  db.selectFrom("webhook_subscriptions").selectAll().where("tenant_id", "=", tenantId).orderBy("created_at").execute();

/** The tenant's subscriptions that are not disabled, with the events each wants. */
export const live = (
  db: Kysely<DB>,
  tenantId: string,
): Promise<ReadonlyArray<Pick<SubscriptionRow, "id" | "events">>> =>
  db
    .selectFrom("webhook_subscriptions")
    .select(["id", "events"])
    .where("tenant_id", "=", tenantId)
    .where("disabled_at", "is", null)
    .execute();

/** Deletes a tenant's subscription; answers its id, or undefined when there was none. */
export const remove = async (db: Kysely<DB>, tenantId: string, id: string): Promise<string | undefined> => {
  const row = await db
    .deleteFrom("webhook_subscriptions")
    .where("tenant_id", "=", tenantId)
    .where("id", "=", id)
    .returning("id")
    .executeTakeFirst();
  return row?.id;
};

/** Disables a subscription for good (its receiver is gone). */
export const disable = async (db: Kysely<DB>, id: string, at: Date, reason: string): Promise<void> => {
  await db
    .updateTable("webhook_subscriptions")
    .set({ disabled_at: at, disabled_reason: reason })
    .where("id", "=", id)
    .execute();
};
