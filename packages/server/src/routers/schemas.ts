import { Schema } from "effect";

/** An Effect Schema as tRPC input: tRPC accepts Standard Schema, which Effect Schema implements. */
export const input = <A, I>(schema: Schema.Schema<A, I, never>) => Schema.standardSchemaV1(schema);

export const Id = Schema.UUID.annotations({ message: () => "must be a UUID" });
export const Name = Schema.Trim.pipe(Schema.minLength(1), Schema.maxLength(200)).annotations({
  message: () => "must be 1 to 200 characters",
});

export const EntityName = Schema.String.pipe(Schema.pattern(/^[A-Za-z][A-Za-z0-9_-]*$/)).annotations({
  message: () => "must be an entity name of the connector",
});

/** An opaque page cursor handed out by a previous call. */
export const Cursor = Schema.String.pipe(Schema.pattern(/^\d{1,20}$/)).annotations({
  message: () => "must be a cursor returned by a previous page",
});

export const Limit = Schema.Int.pipe(Schema.between(1, 500)).annotations({
  message: () => "must be between 1 and 500",
});

/** An ISO-8601 timestamp on the wire, a Date inside. */
export const Timestamp = Schema.Date.annotations({ message: () => "must be an ISO-8601 timestamp" });
