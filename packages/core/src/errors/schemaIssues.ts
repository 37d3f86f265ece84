import { Option, ParseResult, SchemaAST } from "effect";
import { type FieldIssue, InvalidInput } from "./Errors.ts";

/** Issues reported, at most: a 10,000-item push with one bad field each needs the first few. */
const MAX_ISSUES = 20;
/** Characters of a message or a path segment (a key can be as long as the body). */
const MAX_MESSAGE_LENGTH = 200;
const MAX_SEGMENT_LENGTH = 64;

const clip = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/** What a schema node expects, in words: its description or title for a refinement ("a UUID"). */
const expected = (ast: SchemaAST.AST): string =>
  SchemaAST.isRefinement(ast)
    ? SchemaAST.getDescriptionAnnotation(ast).pipe(
        Option.orElse(() => SchemaAST.getTitleAnnotation(ast)),
        Option.getOrElse(() => String(ast)),
      )
    : String(ast);

/** Values an object holds (its leaves), at most `max` of them: for `quotes`. */
const leavesOf = (value: object, max: number): Array<unknown> => {
  const leaves: Array<unknown> = [];
  const pending: Array<unknown> = [value];
  while (pending.length > 0 && leaves.length < max) {
    const next = pending.pop();
    if (typeof next === "object" && next !== null) pending.push(...Object.values(next).slice(0, max));
    else leaves.push(next);
  }
  return leaves;
};

/**
 * Whether a message quotes the value it is about: a built-in transformation's "cannot decode
 * <value>", or a filter's message that names a value of the object it checked. Short strings are
 * not looked for: "a" or "id" appear in any message.
 */
const quotes = (message: string, actual: unknown): boolean => {
  if (actual === undefined || actual === null) return false;
  if (typeof actual === "string") return actual.length >= 3 && message.includes(actual);
  if (typeof actual !== "object") return message.includes(String(actual));
  return leavesOf(actual, 1_000).some((leaf) => leaf !== undefined && leaf !== null && quotes(message, leaf));
};

/**
 * The issue tree without the values it is about. Effect's messages end in "actual <value>": a
 * 10 MB push answered a 26.5 MB error, and a rejected connection config quoted its secret. Custom
 * `message` annotations still apply (they see no value either).
 */
const withoutValues = (issue: ParseResult.ParseIssue): ParseResult.ParseIssue => {
  switch (issue._tag) {
    case "Type":
      return new ParseResult.Type(
        issue.ast,
        undefined,
        issue.message !== undefined && !quotes(issue.message, issue.actual)
          ? issue.message
          : `Expected ${expected(issue.ast)}`,
      );
    case "Forbidden":
      // Its message is a Cause's rendering, stack trace included.
      return new ParseResult.Forbidden(issue.ast, undefined, "is forbidden");
    case "Unexpected":
      return new ParseResult.Unexpected(undefined, issue.message);
    case "Missing":
      return issue;
    case "Pointer":
      return new ParseResult.Pointer(issue.path, undefined, withoutValues(issue.issue));
    case "Refinement":
      return new ParseResult.Refinement(issue.ast, undefined, issue.kind, withoutValues(issue.issue));
    case "Transformation":
      return new ParseResult.Transformation(issue.ast, undefined, issue.kind, withoutValues(issue.issue));
    case "Composite":
      return new ParseResult.Composite(
        issue.ast,
        undefined,
        Array.isArray(issue.issues)
          ? (issue.issues.map(withoutValues) as [ParseResult.ParseIssue, ...Array<ParseResult.ParseIssue>])
          : withoutValues(issue.issues as ParseResult.ParseIssue),
      );
  }
};

/**
 * Flattens a Schema parse issue into field issues with dotted paths (`config.token`), quoting no
 * value, at most MAX_ISSUES of them with bounded messages. One issue per path: an optional
 * field fails both branches of its union ("expected a URL" and "expected undefined"), and only
 * the first one helps.
 */
export const fieldIssuesOfParseIssue = (
  issue: ParseResult.ParseIssue,
  prefix: ReadonlyArray<PropertyKey> = [],
): ReadonlyArray<FieldIssue> => {
  const byPath = new Map<string, FieldIssue>();
  for (const i of ParseResult.ArrayFormatter.formatIssueSync(withoutValues(issue))) {
    const path = [...prefix, ...i.path].map((segment) => clip(String(segment), MAX_SEGMENT_LENGTH)).join(".");
    if (!byPath.has(path)) byPath.set(path, { path, message: clip(i.message, MAX_MESSAGE_LENGTH) });
    if (byPath.size === MAX_ISSUES) break;
  }
  return [...byPath.values()];
};

export const toFieldIssues = (error: ParseResult.ParseError, prefix: ReadonlyArray<PropertyKey> = []) =>
  fieldIssuesOfParseIssue(error.issue, prefix);

export const invalidInput = (error: ParseResult.ParseError, prefix: ReadonlyArray<PropertyKey> = []) =>
  new InvalidInput({ issues: toFieldIssues(error, prefix) });
