import { Schema } from "effect";

/*
 * Business Central API v2.0 wire shapes, kept apart from the normalized records in ./entities.
 * Reference: https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/
 * BC never sends null for these properties: an empty value is "" (strings) or 0 (decimals).
 */

/** Every entity carries its id (a GUID), its etag and its modification time. */
const entityFields = {
  "@odata.etag": Schema.String,
  id: Schema.String.pipe(
    Schema.pattern(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/),
  ),
  lastModifiedDateTime: Schema.String.pipe(Schema.filter((s) => !Number.isNaN(Date.parse(s)) || "not a date")),
};

/**
 * An item. `inventory` is computed from item ledger entries and read-only.
 * See https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/resources/dynamics_item
 */
export const ItemWire = Schema.Struct({
  ...entityFields,
  number: Schema.String,
  displayName: Schema.String,
  /** "Description 2"; environments older than its introduction in v2.0 leave it out. */
  displayName2: Schema.optional(Schema.String),
  type: Schema.Literal("Inventory", "Service", "Non-Inventory"),
  blocked: Schema.Boolean,
  gtin: Schema.String,
  inventory: Schema.Number,
  unitPrice: Schema.Number,
  unitCost: Schema.Number,
  baseUnitOfMeasureCode: Schema.String,
});
export type ItemWire = typeof ItemWire.Type;

/**
 * A customer. `blocked` is an option string: " " (not blocked), "Ship", "Invoice" or "All".
 * See https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/resources/dynamics_customer
 */
export const CustomerWire = Schema.Struct({
  ...entityFields,
  number: Schema.String,
  displayName: Schema.String,
  email: Schema.String,
  phoneNumber: Schema.String,
  blocked: Schema.Literal(" ", "", "Ship", "Invoice", "All"),
});
export type CustomerWire = typeof CustomerWire.Type;

/**
 * A collection page: `{ "@odata.context", value: [...], "@odata.nextLink"? }`. Entities stay
 * `Unknown` here: each is decoded on its own, so one malformed entity never fails its page.
 */
export const PageWire = Schema.Struct({
  "@odata.context": Schema.optional(Schema.String),
  value: Schema.Array(Schema.Unknown),
  "@odata.nextLink": Schema.optional(Schema.String),
});

/** `$select=id,lastModifiedDateTime` (reconciliation's listing); BC adds the etag. */
export const IdWire = Schema.Struct({ id: Schema.String, lastModifiedDateTime: Schema.optional(Schema.Unknown) });

/** BC's error envelope: `{ error: { code, message } }` (the message ends with a CorrelationId). */
export const ErrorWire = Schema.Struct({
  error: Schema.Struct({ code: Schema.String, message: Schema.String }),
});

/**
 * The identity platform's answer to the client-credentials grant.
 * See https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
 */
export const TokenWire = Schema.Struct({
  token_type: Schema.String,
  expires_in: Schema.Number,
  access_token: Schema.String,
});

/** The identity platform's error (`{ error, error_description, error_codes, ... }`). */
export const TokenErrorWire = Schema.Struct({
  error: Schema.String,
  error_description: Schema.optional(Schema.String),
});

/** A webhook subscription (`POST /api/v2.0/subscriptions`). */
export const SubscriptionWire = Schema.Struct({
  "@odata.etag": Schema.String,
  subscriptionId: Schema.String,
  notificationUrl: Schema.String,
  resource: Schema.String,
  clientState: Schema.optional(Schema.String),
  expirationDateTime: Schema.String,
});
export type SubscriptionWire = typeof SubscriptionWire.Type;

/** One notification; a delivery is `{ value: [...] }`. */
export const NotificationWire = Schema.Struct({
  subscriptionId: Schema.String,
  clientState: Schema.optional(Schema.String),
  expirationDateTime: Schema.optional(Schema.String),
  resource: Schema.String,
  changeType: Schema.Literal("created", "updated", "deleted", "collection"),
  lastModifiedDateTime: Schema.String,
});
export type NotificationWire = typeof NotificationWire.Type;

export const NotificationDeliveryWire = Schema.Struct({ value: Schema.Array(Schema.Unknown) });

/**
 * A `$batch` answer (OData's JSON batch format): one response per operation, matched by `id`,
 * each with the status and body the operation alone would have had.
 * See https://learn.microsoft.com/dynamics365/business-central/dev-itpro/webservices/use-odata-batch
 */
export const BatchResponseWire = Schema.Struct({
  responses: Schema.Array(
    Schema.Struct({
      id: Schema.String,
      status: Schema.Number,
      headers: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
      body: Schema.optional(Schema.Unknown),
    }),
  ),
});
