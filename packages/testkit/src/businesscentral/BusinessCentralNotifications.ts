import type { InboundWebhookRequest } from "@tandem/connector-sdk";
import type { BusinessCentralNotification } from "./BusinessCentralApi.ts";
import type { BusinessCentralEntitySet } from "./BusinessCentralStore.ts";

/**
 * The `resource` BC names in a subscription (`/api/v2.0/companies({companyId})/items`) or, with
 * an id, in a notification about one entity (`.../items({id})`).
 */
export const businessCentralResource = (companyId: string, entitySet: BusinessCentralEntitySet, id?: string) =>
  `/api/v2.0/companies(${companyId})/${entitySet}${id === undefined ? "" : `(${id})`}`;

/**
 * One notification as BC sends it. Defaults: a subscription id of 32 hex digits, an expiry
 * three days after `lastModifiedDateTime`.
 *
 * @example
 * businessCentralNotification({ clientState: "s3cret", resource: businessCentralResource(companyId, "items", id),
 *   changeType: "deleted", lastModifiedDateTime: "2026-03-01T10:00:00.000Z" })
 */
export const businessCentralNotification = (
  input: Omit<BusinessCentralNotification, "subscriptionId" | "expirationDateTime"> &
    Partial<Pick<BusinessCentralNotification, "subscriptionId" | "expirationDateTime">>,
): BusinessCentralNotification => ({
  subscriptionId: input.subscriptionId ?? "c670ea73cacb459bb51dc1740da2f1db",
  clientState: input.clientState,
  expirationDateTime:
    input.expirationDateTime ??
    new Date(Date.parse(input.lastModifiedDateTime) + 3 * 24 * 60 * 60 * 1000).toISOString(),
  resource: input.resource,
  changeType: input.changeType,
  lastModifiedDateTime: input.lastModifiedDateTime,
});

/** A delivery of `notifications` to `url` as the receiver sees it: `POST { value: [...] }`. */
export const businessCentralNotificationRequest = (
  url: string,
  notifications: ReadonlyArray<BusinessCentralNotification>,
): InboundWebhookRequest => ({
  method: "POST",
  url,
  headers: new Headers({ "content-type": "application/json" }),
  rawBody: JSON.stringify({ value: notifications }),
});
