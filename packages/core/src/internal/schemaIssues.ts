import { ParseResult } from "effect";
import { type FieldIssue, InvalidInput } from "../Errors.ts";

/**
 * Flattens a Schema parse error into field issues with dotted paths (`config.token`).
 * One issue per path: an optional field fails both branches of its union
 * ("expected a URL" and "expected undefined"), and only the first one helps.
 */
export const toFieldIssues = (error: ParseResult.ParseError, prefix: ReadonlyArray<PropertyKey> = []) => {
  const byPath = new Map<string, FieldIssue>();
  for (const issue of ParseResult.ArrayFormatter.formatErrorSync(error)) {
    const path = [...prefix, ...issue.path].map(String).join(".");
    if (!byPath.has(path)) byPath.set(path, { path, message: issue.message });
  }
  return [...byPath.values()];
};

export const invalidInput = (error: ParseResult.ParseError, prefix: ReadonlyArray<PropertyKey> = []) =>
  new InvalidInput({ issues: toFieldIssues(error, prefix) });
