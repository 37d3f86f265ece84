import { Schema } from "effect";

/** An Effect Schema as tRPC input: tRPC accepts Standard Schema, which Effect Schema implements. */
export const input = <A, I>(schema: Schema.Schema<A, I, never>) => Schema.standardSchemaV1(schema);

export const Id = Schema.UUID.annotations({ message: () => "must be a UUID" });
export const Name = Schema.Trim.pipe(Schema.minLength(1), Schema.maxLength(200)).annotations({
  message: () => "must be 1 to 200 characters",
});
