import { isDeepStrictEqual } from "node:util";

/** A record's fields as stored (`records.data`): a flat object of JSON values. */
export type Fields = Readonly<Record<string, unknown>>;

/** One field both sides changed, differently, since the last state they agreed on. */
export interface FieldConflict {
  readonly field: string;
  readonly base: unknown;
  readonly local: unknown;
  readonly remote: unknown;
}

export interface MergeOutcome {
  /** Every field that merged cleanly (taken from whichever side changed it). */
  readonly merged: Record<string, unknown>;
  /** Fields changed on both sides to different values: the policy decides these. */
  readonly conflicts: ReadonlyArray<FieldConflict>;
}

const equal = (a: unknown, b: unknown) => isDeepStrictEqual(a ?? null, b ?? null);

/**
 * Three-way merge, field by field, against `base` (the last state both sides
 * agreed on). A field changed on one side only takes that side's value; a field
 * changed on both sides to the same value is no conflict; only a field changed on
 * both sides to different values conflicts. Nested values are compared whole.
 * Without a base (first contact), every differing field conflicts.
 */
export const threeWayMerge = (base: Fields | null, local: Fields, remote: Fields): MergeOutcome => {
  const merged: Record<string, unknown> = {};
  const conflicts: Array<FieldConflict> = [];
  const fields = new Set([...Object.keys(local), ...Object.keys(remote), ...Object.keys(base ?? {})]);
  for (const field of [...fields].sort()) {
    const b = base?.[field];
    const l = local[field];
    const r = remote[field];
    if (equal(l, r)) merged[field] = l ?? r;
    else if (base !== null && equal(l, b)) merged[field] = r;
    else if (base !== null && equal(r, b)) merged[field] = l;
    else conflicts.push({ field, base: b, local: l, remote: r });
  }
  return { merged, conflicts };
};
