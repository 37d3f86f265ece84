import { Unavailable } from "@tandem/connector-sdk";
import { Schema } from "effect";

/*
 * A delta pages HubSpot's search by its sort key (keyset paging), never by offset.
 *
 * `after` is an offset into the query's current results, and those results move while we page:
 * a record read on page 1 and edited before page 2 leaves its place for the end of the order, so
 * page 2 starts one record later and a neighbour is never read (issue 18; reproduced against the
 * fake in the connector's tests). Nothing repairs that: the next delta's overlap re-reads only
 * what is newer than the cursor, and reconciliation compares ids. Each page is therefore a new
 * query that starts where the last one stopped, in (modification time, id) order; `after` is
 * never sent, so the 10,000-result cap of one query is never met either.
 *
 * HubSpot applies one sorting rule per search ("Only one sorting rule can be applied to any
 * search", https://developers.hubspot.com/docs/api/crm/search), so no query can ask for "time,
 * then id", and the order of objects that share a modification time is not documented. Hence
 * two kinds of query:
 * - `search`: `lastmodifieddate GTE|GT value`, sorted by time. When more remain, the objects at
 *   the page's last time may continue on the next page in an unknown order: they are left for
 *   the next query (`GTE` that time), usually one object read twice per page.
 * - `ties`: when a whole page shares one time, that time's objects are read on their own,
 *   `EQ time AND hs_object_id GT afterId`, sorted by id (the query's one rule), then `GT time`.
 */

/** Where a delta's search stands: everything before this position has been read. */
export const SearchPosition = Schema.Union(
  /** The next query is `lastModified operator value`, sorted by modification time. */
  Schema.Struct({
    phase: Schema.Literal("search"),
    /** The delta's bound (epoch ms), for the archived listing that follows the search. */
    since: Schema.Number,
    operator: Schema.Literal("GT", "GTE"),
    value: Schema.Number,
  }),
  /** The next query reads the objects modified at exactly `value`, by id, after `afterId`. */
  Schema.Struct({
    phase: Schema.Literal("ties"),
    since: Schema.Number,
    value: Schema.Number,
    afterId: Schema.optional(Schema.String),
  }),
);
export type SearchPosition = typeof SearchPosition.Type;

/** Search answers at most 200 objects a page. */
export const searchPageSize = 200;

/** The first position of a delta: every object modified at or after `since`. */
export const startOfSearch = (since: number): SearchPosition => ({
  phase: "search",
  since,
  operator: "GTE",
  value: since,
});

/** The body of `POST /crm/v3/objects/{type}/search` for a position (without `after`: see above). */
export const searchRequestBody = (
  position: SearchPosition,
  lastModifiedProperty: string,
  properties: ReadonlyArray<string>,
) => {
  const base = { properties, limit: searchPageSize };
  if (position.phase === "search") {
    return {
      ...base,
      filterGroups: [
        {
          filters: [{ propertyName: lastModifiedProperty, operator: position.operator, value: String(position.value) }],
        },
      ],
      sorts: [{ propertyName: lastModifiedProperty, direction: "ASCENDING" }],
    };
  }
  return {
    ...base,
    filterGroups: [
      {
        filters: [
          { propertyName: lastModifiedProperty, operator: "EQ", value: String(position.value) },
          ...(position.afterId === undefined
            ? []
            : [{ propertyName: "hs_object_id", operator: "GT", value: position.afterId }]),
        ],
      },
    ],
    sorts: [{ propertyName: "hs_object_id", direction: "ASCENDING" }],
  };
};

/** An object's modification time (epoch ms) from the property search sorted on; undefined when unreadable. */
export const modifiedAt = (raw: unknown, property: string): number | undefined => {
  const value = (raw as { properties?: Record<string, unknown> } | null)?.properties?.[property];
  if (typeof value !== "string") return undefined;
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
};

const numericIdOf = (raw: unknown): number | undefined => {
  const id = (raw as { id?: unknown } | null)?.id;
  return typeof id === "string" && /^\d+$/.test(id) ? Number(id) : undefined;
};

/**
 * What one search page contributes and where the next query starts. `more`: the answer had
 * `paging.next` (more objects match than the page held). `read` are the objects to report now;
 * `next` is undefined once the search is exhausted. Pure: the paging rules above, tested alone.
 */
export const afterSearchPage = (
  position: SearchPosition,
  results: ReadonlyArray<unknown>,
  more: boolean,
  lastModifiedProperty: string,
  objectType: string,
): { readonly read: ReadonlyArray<unknown>; readonly next: SearchPosition | undefined } => {
  const { since } = position;
  if (position.phase === "ties") {
    if (!more) return { read: results, next: { phase: "search", since, operator: "GT", value: position.value } };
    const ids = results.map(numericIdOf).filter((id): id is number => id !== undefined);
    if (ids.length === 0) throw new Unavailable({ message: `search ${objectType}: a page of objects without ids` });
    return { read: results, next: { phase: "ties", since, value: position.value, afterId: String(Math.max(...ids)) } };
  }
  if (!more) return { read: results, next: undefined };
  const times = results.map((raw) => modifiedAt(raw, lastModifiedProperty));
  const known = times.filter((at): at is number => at !== undefined);
  if (known.length === 0) {
    throw new Unavailable({ message: `search ${objectType}: a page of objects without modification times` });
  }
  const last = Math.max(...known);
  // Objects modified at `last` may continue on the next page: the next query reads them all.
  // (An object whose time we cannot read is reported now; the engine rejects it by itself.)
  const read = results.filter((_, i) => times[i] === undefined || times[i]! < last);
  // A whole page at one time: that time's objects are read by id, so the read always advances.
  if (!known.some((at) => at < last)) return { read, next: { phase: "ties", since, value: last } };
  return { read, next: { phase: "search", since, operator: "GTE", value: last } };
};
