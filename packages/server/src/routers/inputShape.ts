import { type FieldIssue, textIssue } from "@tandem/core";

/**
 * Nesting of any procedure's input, at most. Record fields are JSON documents, and no vendor's
 * record comes near 32 levels; input nested 2,500 deep overflowed the stack of the schema decoder
 * (which is recursive), and the 400 quoted the RangeError's stack trace with our file paths.
 */
export const MAX_INPUT_DEPTH = 32;

/** Characters of one path segment in an issue: a key may be as long as the body. */
const MAX_SEGMENT_LENGTH = 64;

const pathOf = (segments: ReadonlyArray<string>) =>
  segments.map((s) => (s.length > MAX_SEGMENT_LENGTH ? `${s.slice(0, MAX_SEGMENT_LENGTH - 1)}…` : s)).join(".");

/**
 * The first thing in a raw input no procedure accepts, before any schema sees it: nesting past
 * MAX_INPUT_DEPTH, or a string (value or key, at any depth, in free-form JSON fields too) that
 * PostgreSQL cannot store (a NUL, a lone surrogate), which used to fail the statement as a 500.
 * Iterative, so it cannot overflow the stack itself.
 */
export const inputShapeIssue = (input: unknown): FieldIssue | undefined => {
  const pending: Array<{ readonly value: unknown; readonly path: ReadonlyArray<string> }> = [
    { value: input, path: [] },
  ];
  while (pending.length > 0) {
    const { value, path } = pending.pop()!;
    if (typeof value === "string") {
      const issue = textIssue(value);
      if (issue !== undefined) return { path: pathOf(path), message: issue };
      continue;
    }
    if (typeof value !== "object" || value === null) continue;
    if (path.length >= MAX_INPUT_DEPTH) {
      return { path: pathOf(path), message: `is nested more than ${MAX_INPUT_DEPTH} levels deep` };
    }
    for (const [key, child] of Object.entries(value)) {
      const keyIssue = textIssue(key);
      if (keyIssue !== undefined) return { path: pathOf(path), message: `a key ${keyIssue}` };
      pending.push({ value: child, path: [...path, key] });
    }
  }
  return undefined;
};
