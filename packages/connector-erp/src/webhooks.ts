import { createHash } from "node:crypto";
import {
  type ConnectorWebhooks,
  constantTimeEqual,
  type InboundWebhookRequest,
  InvalidRecord,
  shapeMismatch,
  Unavailable,
  type WebhookEvent,
} from "@tandem/connector-sdk";
import { Redacted, Schema } from "effect";
import { apiRoot, type BusinessCentralContext, businessCentralRequest, type EntitySet, failureOf } from "./client.ts";
import type { BusinessCentralConfig } from "./config.ts";
import { NotificationDeliveryWire, NotificationWire, SubscriptionWire } from "./wire.ts";

/*
 * Business Central webhooks.
 * See https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/dynamics-subscriptions
 * - Creating (and renewing) a subscription makes BC call `notificationUrl?validationToken=...`;
 *   the token must come back as the body of a 200 (`handshake`).
 * - Notifications are not signed. The only proof of origin is the subscription's `clientState`,
 *   echoed in every notification (`verify`). Serve the endpoint over HTTPS only.
 * - BC retries a delivery only on 408, 429 and 5xx; any other error status deletes the
 *   subscription. Subscriptions expire after three days: renew them (`renewBusinessCentralSubscription`).
 */

const decodeDelivery = Schema.decodeUnknownEither(NotificationDeliveryWire);
const decodeNotification = Schema.decodeUnknownEither(NotificationWire);

const notificationsOf = (request: InboundWebhookRequest): ReadonlyArray<unknown> | undefined => {
  let body: unknown;
  try {
    body = JSON.parse(request.rawBody);
  } catch {
    return undefined;
  }
  const delivery = decodeDelivery(body);
  return delivery._tag === "Right" ? delivery.right.value : undefined;
};

/**
 * True when the delivery is `{ value: [...] }` with at least one notification and every
 * notification's `clientState` equals the configured `webhookClientState` (compared in
 * constant time). False without a configured client state.
 */
export const verifyBusinessCentralWebhook = (
  ctx: { readonly config: BusinessCentralConfig; readonly now: Date },
  request: InboundWebhookRequest,
): boolean => {
  const configured = ctx.config.webhookClientState;
  if (configured === undefined) return false;
  const expected = Redacted.value(configured);
  const notifications = notificationsOf(request);
  if (notifications === undefined || notifications.length === 0) return false;
  let valid = true;
  for (const raw of notifications) {
    const clientState = (raw as { clientState?: unknown } | null)?.clientState;
    // Every notification is compared, so the time taken does not tell which one failed.
    valid = constantTimeEqual(expected, typeof clientState === "string" ? clientState : "") && valid;
  }
  return valid;
};

/** `/api/v2.0/companies(<company>)/items(<id>)` -> items, id (a GUID, maybe quoted). */
const resourcePattern = /\/(items|customers)\(\s*'?([0-9a-fA-F-]{36})'?\s*\)\s*$/;

const kinds = { created: "created", updated: "updated", deleted: "deleted" } as const;

/**
 * Normalizes a delivery: one event per notification about an item or a customer.
 * - `eventId` is derived from the notification (a hash of subscription id, resource, change type
 *   and modification time): BC sends no event id, and a retried delivery repeats these exactly.
 * - `collection` notifications ("too many changes, read them yourself") name no entity and are
 *   dropped: the scheduled delta reads the changes (its default interval is 15 minutes). The
 *   contract has no event that would start a delta now.
 * - Notifications about other resources are dropped. A body that is not `{ value: [...] }` is InvalidRecord.
 */
export const parseBusinessCentralWebhook = (request: InboundWebhookRequest): ReadonlyArray<WebhookEvent> => {
  const notifications = notificationsOf(request);
  if (notifications === undefined) {
    throw new InvalidRecord({ message: "Business Central notification body is not { value: [...] }" });
  }
  const events: Array<WebhookEvent> = [];
  for (const raw of notifications) {
    const decoded = decodeNotification(raw);
    if (decoded._tag === "Left") continue;
    const notification = decoded.right;
    if (notification.changeType === "collection") continue;
    const match = resourcePattern.exec(notification.resource);
    const occurredAt = new Date(notification.lastModifiedDateTime);
    if (match === null || Number.isNaN(occurredAt.getTime())) continue;
    const eventId = createHash("sha256")
      .update(
        [
          notification.subscriptionId,
          notification.resource,
          notification.changeType,
          notification.lastModifiedDateTime,
        ].join("\u0000"),
      )
      .digest("hex");
    events.push({
      eventId: `bc:${eventId}`,
      entity: match[1]!,
      externalId: match[2]!.toLowerCase(),
      kind: kinds[notification.changeType],
      occurredAt,
    });
  }
  return events;
};

/**
 * Answers BC's validation request: `notificationUrl?validationToken=...` (GET or POST) gets
 * the token back as text with 200. Any other request is not a handshake (null).
 */
export const businessCentralHandshake = (
  request: InboundWebhookRequest,
): { readonly status: number; readonly body: string } | null => {
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    return null;
  }
  const token = url.searchParams.get("validationToken");
  if (token === null) return null;
  return { status: 200, body: token };
};

/** The connector's `webhooks` member. */
export const businessCentralWebhooks: ConnectorWebhooks<BusinessCentralConfig> = {
  verify: verifyBusinessCentralWebhook,
  parse: parseBusinessCentralWebhook,
  handshake: businessCentralHandshake,
};

/** A webhook subscription as BC answers it. */
export type BusinessCentralSubscription = typeof SubscriptionWire.Type;

const decodeSubscription = (body: unknown) => {
  const decoded = Schema.decodeUnknownEither(SubscriptionWire)(body);
  if (decoded._tag === "Left") {
    throw new Unavailable({ message: `subscriptions: ${shapeMismatch(decoded.left)}` });
  }
  return decoded.right;
};

/**
 * Subscribes `notificationUrl` (Tandem's `/webhooks/erp/{connectionId}`) to changes of an
 * entity set, with the configured `webhookClientState`. BC performs the handshake before it
 * answers, so the endpoint must already be reachable. Expires after three days.
 *
 * @example
 * await subscribeBusinessCentral(ctx, { entity: "items", notificationUrl: "https://sync.example.com/webhooks/erp/conn_1" })
 */
export const subscribeBusinessCentral = async (
  ctx: BusinessCentralContext,
  input: { readonly entity: EntitySet; readonly notificationUrl: string },
): Promise<BusinessCentralSubscription> => {
  const clientState = ctx.config.webhookClientState;
  if (clientState === undefined) {
    throw new InvalidRecord({
      message: "set webhookClientState before subscribing: notifications are verified with it",
    });
  }
  const response = await businessCentralRequest(ctx, {
    method: "POST",
    url: `${apiRoot(ctx.config)}/subscriptions`,
    body: {
      notificationUrl: input.notificationUrl,
      resource: `/api/v2.0/companies(${ctx.config.companyId})/${input.entity}`,
      clientState: Redacted.value(clientState),
    },
  });
  if (response.status !== 201) throw failureOf(response);
  return decodeSubscription(response.body);
};

/** Renews a subscription for three more days (`PATCH subscriptions('{id}')` with its etag; BC repeats the handshake). */
export const renewBusinessCentralSubscription = async (
  ctx: BusinessCentralContext,
  subscription: Pick<BusinessCentralSubscription, "subscriptionId" | "@odata.etag">,
): Promise<BusinessCentralSubscription> => {
  const response = await businessCentralRequest(ctx, {
    method: "PATCH",
    url: `${apiRoot(ctx.config)}/subscriptions('${encodeURIComponent(subscription.subscriptionId)}')`,
    body: {},
    headers: { "if-match": subscription["@odata.etag"] },
  });
  if (response.status !== 200) throw failureOf(response);
  return decodeSubscription(response.body);
};
