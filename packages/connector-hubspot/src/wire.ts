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

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * `CrmObjectWire`'s rules checked by hand, for the read path: decoding every property of every
 * record through the schema was about 15% of an import's time (CPU profile of the bench's
 * import, 50,000 contacts). The same rules as the schema (a test holds them together); answers
 * the object, with `archived` defaulted, or why it does not match.
 */
export const checkCrmObjectWire = (
  raw: unknown,
): { readonly ok: CrmObjectWire; readonly error?: undefined } | { readonly error: string } => {
  if (!isObject(raw)) return { error: "expected an object" };
  if (typeof raw.id !== "string" || !/^\d+$/.test(raw.id)) return { error: "id must be a string of digits" };
  if (!isObject(raw.properties)) return { error: "properties must be an object" };
  for (const [name, value] of Object.entries(raw.properties)) {
    if (value !== null && typeof value !== "string") return { error: `property ${name} must be a string or null` };
  }
  if (typeof raw.createdAt !== "string") return { error: "createdAt must be a string" };
  if (typeof raw.updatedAt !== "string") return { error: "updatedAt must be a string" };
  if (raw.archived !== undefined && typeof raw.archived !== "boolean") return { error: "archived must be a boolean" };
  if (raw.archivedAt !== undefined && typeof raw.archivedAt !== "string") {
    return { error: "archivedAt must be a string" };
  }
  return {
    ok: {
      id: raw.id,
      properties: raw.properties as Record<string, string | null>,
      createdAt: raw.createdAt,
      updatedAt: raw.updatedAt,
      archived: raw.archived ?? false,
      ...(raw.archivedAt !== undefined ? { archivedAt: raw.archivedAt } : {}),
    },
  };
};

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
