import {
  decodeFeedPosition,
  fieldIssuesOfParseIssue,
  isStorableDate,
  MAX_IDENTIFIER_LENGTH,
  textIssue,
} from "@tandem/core";
import { Either, ParseResult, Schema } from "effect";
import { inputShapeIssue } from "./inputShape.ts";

/**
 * An Effect Schema as tRPC input (tRPC accepts Standard Schema). Effect's own adapter
 * (`Schema.standardSchemaV1`) quotes each rejected value ("actual <value>": a 10 MB push
 * answered 26.5 MB) and answers a decoder crash with its stack trace; here the raw input is
 * first checked for what no procedure accepts (`inputShapeIssue`: depth, unstorable text), and
 * issues name the field and what is wrong, never the value.
 */
export const input = <A, I>(schema: Schema.Schema<A, I, never>) => {
  const standard = Schema.standardSchemaV1(schema);
  const decode = ParseResult.decodeUnknownEither(schema, { errors: "all" });
  const validate: (typeof standard)["~standard"]["validate"] = (value) => {
    const shapeIssue = inputShapeIssue(value);
    if (shapeIssue !== undefined)
      return { issues: [{ path: pathSegments(shapeIssue.path), message: shapeIssue.message }] };
    let decoded: ReturnType<typeof decode>;
    try {
      decoded = decode(value);
    } catch {
      // A schema that throws (a defect of ours): the input is refused, without the error's stack.
      return { issues: [{ message: "could not be validated" }] };
    }
    if (Either.isRight(decoded)) return { value: decoded.right };
    return {
      issues: fieldIssuesOfParseIssue(decoded.left).map((i) => ({ path: pathSegments(i.path), message: i.message })),
    };
  };
  // Still the Schema (openapi.ts reads its JSON Schema), with this validation.
  return class extends standard {
    static override "~standard" = { ...standard["~standard"], validate };
  };
};

const pathSegments = (path: string) => (path === "" ? [] : path.split("."));

/** A string PostgreSQL can store (no NUL, well-formed Unicode) of at most `maxLength` characters. */
const storableText = (maxLength: number) =>
  Schema.String.pipe(Schema.filter((text) => textIssue(text, maxLength) ?? true));

export const Id = Schema.UUID.annotations({ message: () => "must be a UUID" });
export const Name = Schema.Trim.pipe(
  Schema.minLength(1),
  Schema.maxLength(200),
  // A name is shown in lists and logs: no control characters (NUL, newlines, escapes).
  Schema.pattern(/^[^\p{Cc}]*$/u),
).annotations({
  message: () => "must be 1 to 200 characters, without control characters",
});

export const EntityName = Schema.String.pipe(
  Schema.maxLength(100),
  Schema.pattern(/^[A-Za-z][A-Za-z0-9_-]*$/),
).annotations({ message: () => "must be an entity name of the connector" });

/** A record's id at its vendor: indexed, so bounded (see MAX_IDENTIFIER_LENGTH). */
export const ExternalId = storableText(MAX_IDENTIFIER_LENGTH)
  .pipe(Schema.minLength(1))
  .annotations({
    message: () => `must be 1 to ${MAX_IDENTIFIER_LENGTH} characters of well-formed text`,
  });

/** A record's id in the host application (its `localId`): indexed like an external id, so bounded the same. */
export const LocalId = storableText(MAX_IDENTIFIER_LENGTH)
  .pipe(Schema.minLength(1))
  .annotations({
    message: () => `must be 1 to ${MAX_IDENTIFIER_LENGTH} characters of well-formed text`,
  });

/** Free text filters (a job kind): bounded, storable. */
export const ShortText = storableText(200);

/** A person's note kept with a decision (why a deletion was rejected): bounded, storable. */
export const Note = storableText(2_000);

/** The largest cursor: cursors are bigint sequence numbers (PostgreSQL's int8). */
const MAX_CURSOR = 9_223_372_036_854_775_807n;

/** An opaque page cursor handed out by a previous call. */
export const Cursor = Schema.String.pipe(
  Schema.pattern(/^\d{1,19}$/),
  Schema.filter((text) => BigInt(text) <= MAX_CURSOR),
).annotations({
  message: () => "must be a cursor returned by a previous page",
});

/**
 * A change-feed cursor handed out by `records.list`: `<xid>.<seq>` (a transaction id and a
 * sequence value, see the core's FeedPosition), or a bare sequence value as cursors were before.
 */
export const FeedCursor = Schema.String.pipe(
  Schema.maxLength(41),
  Schema.filter((text) => decodeFeedPosition(text) !== undefined),
).annotations({
  message: () => "must be a cursor returned by a previous page",
});

export const Limit = Schema.Int.pipe(Schema.between(1, 500)).annotations({
  message: () => "must be between 1 and 500",
});

/** An ISO-8601 timestamp on the wire, a Date inside: one every column can store (years 1 to 9999). */
export const Timestamp = Schema.Date.pipe(Schema.filter(isStorableDate)).annotations({
  message: () => "must be an ISO-8601 timestamp between years 1 and 9999",
});
