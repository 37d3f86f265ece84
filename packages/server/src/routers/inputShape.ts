import { type FieldIssue, textIssue } from "@tandem/core";

/**
 * Nesting of any procedure's input, at most. Record fields are JSON documents, and no vendor's
 * record comes near 32 levels; input nested 2,500 deep overflowed the stack of the schema decoder
 * (which is recursive), and the 400 quoted the RangeError's stack trace with our file paths.
 */
export const MAX_INPUT_DEPTH = 32;

/** Characters of one path segment in an issue: a key may be as long as the body. */
const MAX_SEGMENT_LENGTH = 64;

const clip = (segment: string) =>
  segment.length > MAX_SEGMENT_LENGTH ? `${segment.slice(0, MAX_SEGMENT_LENGTH - 1)}…` : segment;

/** A value met by the walk; it points at its parent: a path is spelled out only for the one at fault. */
interface Node {
  readonly value: unknown;
  readonly key: string;
  readonly parent: Node | undefined;
  readonly depth: number;
}

const pathOf = (node: Node) => {
  const segments: Array<string> = [];
  for (let n: Node | undefined = node; n?.parent !== undefined; n = n.parent) segments.unshift(clip(n.key));
  return segments.join(".");
};

/**
 * The first thing in a raw input no procedure accepts, before any schema sees it: nesting past
 * MAX_INPUT_DEPTH, or a string (value or key, at any depth, in free-form JSON fields too) that
 * PostgreSQL cannot store (a NUL, a lone surrogate), which used to fail the statement as a 500.
 * Iterative, so it cannot overflow the stack itself.
 */
export const inputShapeIssue = (input: unknown): FieldIssue | undefined => {
  const pending: Array<Node> = [{ value: input, key: "", parent: undefined, depth: 0 }];
  while (pending.length > 0) {
    const node = pending.pop()!;
    const value = node.value;
    if (typeof value === "string") {
      const issue = textIssue(value);
      if (issue !== undefined) return { path: pathOf(node), message: issue };
      continue;
    }
    if (typeof value !== "object" || value === null) continue;
    if (node.depth >= MAX_INPUT_DEPTH) {
      return { path: pathOf(node), message: `is nested more than ${MAX_INPUT_DEPTH} levels deep` };
    }
    for (const [key, child] of Object.entries(value)) {
      const keyIssue = textIssue(key);
      if (keyIssue !== undefined) return { path: pathOf(node), message: `a key ${keyIssue}` };
      pending.push({ value: child, key, parent: node, depth: node.depth + 1 });
    }
  }
  return undefined;
};
