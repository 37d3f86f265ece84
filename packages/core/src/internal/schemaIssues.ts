import { ParseResult } from "effect";
import { type FieldIssue, InvalidInput } from "../Errors.ts";

/** Flattens a Schema parse error into field issues with dotted paths (`config.token`). */
export const toFieldIssues = (error: ParseResult.ParseError, prefix: ReadonlyArray<PropertyKey> = []) =>
  ParseResult.ArrayFormatter.formatErrorSync(error).map(
    (issue): FieldIssue => ({
      path: [...prefix, ...issue.path].map(String).join("."),
      message: issue.message,
    }),
  );

export const invalidInput = (error: ParseResult.ParseError, prefix: ReadonlyArray<PropertyKey> = []) =>
  new InvalidInput({ issues: toFieldIssues(error, prefix) });
