import { Unavailable } from "@tandem/connector-sdk";
import { Schema } from "effect";

/*
 * A delta pages by its sort key, a new query per page, instead of following `@odata.nextLink`.
 *
 * A delta is ordered by `lastModifiedDateTime`, and an entity edited while the delta pages moves
 * to the end of that order. Whether the next page is still right then depends on what BC's
 * `$skiptoken` holds, which BC does not document: the sort key of the page's last entity is
 * safe, but a token naming only that entity restarts after wherever it sorts now, so editing it
 * between two pages jumps the read past everything in between (issue 18; the fake's
 * `skipTokenNames: "lastEntity"` shows it against the reader that followed next links). And an
 * offset (`$skip`) shifts by one. So each page is a new query
 * from the last modification time read:
 * - `modified`: `lastModifiedDateTime ge|gt value`, ordered by it, one page (`Prefer:
 *   odata.maxpagesize`); a next link only says more remain. On a full page, the entities at the
 *   page's last time may continue on the next page: they are left for the next query (`ge`
 *   that time), about one entity read twice per page.
 * - `ties`: a whole page at one time is read on its own, `lastModifiedDateTime eq value` in BC's
 *   default order (the primary key, which edits do not change), following its next links; then
 *   `gt value`. An entity edited meanwhile leaves that time for a later one and is read there.
 */

/** Where a delta stands: everything before this position has been read. */
export const DeltaPosition = Schema.Union(
  Schema.Struct({
    phase: Schema.Literal("modified"),
    operator: Schema.Literal("ge", "gt"),
    /** Epoch ms. */
    value: Schema.Number,
  }),
  Schema.Struct({
    phase: Schema.Literal("ties"),
    value: Schema.Number,
    /** The next link of the `eq value` query, once its first page was read. */
    next: Schema.optional(Schema.String),
  }),
);
export type DeltaPosition = typeof DeltaPosition.Type;

/** The checkpoint of a delta: its position as JSON (a full read's is a next link). */
export const DeltaCursor = Schema.parseJson(DeltaPosition);

/** The first position of a delta: every entity modified at or after `since` (the contract's bound). */
export const startOfDelta = (since: number): DeltaPosition => ({ phase: "modified", operator: "ge", value: since });

/**
 * The query options of a position's first request. Datetimes keep their milliseconds: BC
 * compares `lastModifiedDateTime` to the millisecond, and a bound rounded down would read again
 * what was read.
 * See https://learn.microsoft.com/dynamics365/business-central/dev-itpro/webservices/use-filter-expressions-in-odata-uris
 */
export const deltaQuery = (position: DeltaPosition): string => {
  const at = new Date(position.value).toISOString();
  if (position.phase === "ties") return `$filter=${encodeURIComponent(`lastModifiedDateTime eq ${at}`)}`;
  return (
    `$filter=${encodeURIComponent(`lastModifiedDateTime ${position.operator} ${at}`)}` +
    `&$orderby=${encodeURIComponent("lastModifiedDateTime asc")}`
  );
};

/** An entity's modification time (epoch ms); undefined when unreadable. */
const modifiedAt = (raw: unknown): number | undefined => {
  const value = (raw as { lastModifiedDateTime?: unknown } | null)?.lastModifiedDateTime;
  if (typeof value !== "string") return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
};

/**
 * What one page contributes and where the next request starts. `nextLink` is the page's own
 * next link (already checked to be ours); `read` are the entities to report now; `next` is
 * undefined once the delta is exhausted. Pure: the paging rules above, tested alone.
 */
export const afterDeltaPage = (
  position: DeltaPosition,
  values: ReadonlyArray<unknown>,
  nextLink: string | undefined,
  entitySet: string,
): { readonly read: ReadonlyArray<unknown>; readonly next: DeltaPosition | undefined } => {
  if (position.phase === "ties") {
    if (nextLink !== undefined) return { read: values, next: { phase: "ties", value: position.value, next: nextLink } };
    return { read: values, next: { phase: "modified", operator: "gt", value: position.value } };
  }
  if (nextLink === undefined) return { read: values, next: undefined };
  const times = values.map(modifiedAt);
  const known = times.filter((at): at is number => at !== undefined);
  if (known.length === 0) {
    throw new Unavailable({ message: `list ${entitySet}: a page of entities without modification times` });
  }
  const last = Math.max(...known);
  // An entity whose time cannot be read is reported now; the engine rejects it by itself.
  const read = values.filter((_, i) => times[i] === undefined || times[i]! < last);
  if (!known.some((at) => at < last)) return { read, next: { phase: "ties", value: last } };
  return { read, next: { phase: "modified", operator: "ge", value: last } };
};
