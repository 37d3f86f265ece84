import { Schema } from "effect";

/*
 * HubSpot's wire shapes (CRM v3), kept apart from the normalized records in ./entities.
 * Reference: https://developers.hubspot.com/docs/api/crm/contacts and .../crm/companies
 */

/** A CRM object as list, search, get and batch endpoints return it. Property values are strings or null. */
export const CrmObjectWire = Schema.Struct({
  id: Schema.String.pipe(Schema.pattern(/^\d+$/)),
  properties: Schema.Record({ key: Schema.String, value: Schema.NullOr(Schema.String) }),
  createdAt: Schema.String,
  updatedAt: Schema.String,
  archived: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  archivedAt: Schema.optional(Schema.String),
});
export type CrmObjectWire = typeof CrmObjectWire.Type;

const Paging = Schema.Struct({
  next: Schema.optional(Schema.Struct({ after: Schema.String, link: Schema.optional(Schema.String) })),
});

/**
 * `GET /crm/v3/objects/{type}` and `POST .../search`. Records stay `Unknown` here: each is
 * decoded on its own so one malformed record never fails its page.
 */
export const PageWire = Schema.Struct({
  total: Schema.optional(Schema.Number),
  results: Schema.Array(Schema.Unknown),
  paging: Schema.optional(Paging),
});

/** HubSpot's error envelope: `{ status: "error", message, correlationId, category, errors?, context? }`. */
export const ErrorWire = Schema.Struct({
  status: Schema.optional(Schema.String),
  message: Schema.optionalWith(Schema.String, { default: () => "HubSpot error" }),
  correlationId: Schema.optional(Schema.String),
  category: Schema.optional(Schema.String),
  context: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Array(Schema.String) })),
});
export type ErrorWire = typeof ErrorWire.Type;

/** Batch answers (200/201, or 207 with `errors[]` on partial failure). */
export const BatchWire = Schema.Struct({
  status: Schema.optional(Schema.String),
  results: Schema.Array(Schema.Unknown),
  numErrors: Schema.optional(Schema.Number),
  errors: Schema.optionalWith(Schema.Array(ErrorWire), { default: () => [] }),
});

/** `POST /oauth/v1/token` (refresh-token grant). */
export const TokenWire = Schema.Struct({
  access_token: Schema.String,
  refresh_token: Schema.optional(Schema.String),
  expires_in: Schema.Number,
  token_type: Schema.optional(Schema.String),
});

/** One webhook event; a delivery's body is a JSON array of these. */
export const WebhookEventWire = Schema.Struct({
  eventId: Schema.Union(Schema.Number, Schema.String),
  subscriptionType: Schema.String,
  objectId: Schema.Union(Schema.Number, Schema.String),
  occurredAt: Schema.Number,
  /** Set by the generic `object.*` subscriptions: "0-1" contacts, "0-2" companies. */
  objectTypeId: Schema.optional(Schema.String),
  propertyName: Schema.optional(Schema.String),
  propertyValue: Schema.optional(Schema.String),
  mergedObjectIds: Schema.optional(Schema.Array(Schema.Union(Schema.Number, Schema.String))),
  primaryObjectId: Schema.optional(Schema.Union(Schema.Number, Schema.String)),
  newObjectId: Schema.optional(Schema.Union(Schema.Number, Schema.String)),
  attemptNumber: Schema.optional(Schema.Number),
});
export type WebhookEventWire = typeof WebhookEventWire.Type;
