import { Unavailable } from "@tandem/core";
import { describe, expect, it } from "vitest";
import { afterSearchPage, type SearchPosition, searchRequestBody, startOfSearch } from "../src/deltaSearch.ts";

/*
 * The delta's keyset paging rules, without HTTP: which objects a search page reports and where the
 * next query starts. (Against the fake, end to end: hubspot.test.ts and engine.test.ts.)
 */

const property = "lastmodifieddate";
const object = (id: number, at: number | undefined) => ({
  id: String(id),
  properties: { [property]: at === undefined ? null : new Date(at).toISOString() },
});
const step = (position: SearchPosition, results: ReadonlyArray<unknown>, more: boolean) =>
  afterSearchPage(position, results, more, property, "contacts");
const ids = (read: ReadonlyArray<unknown>) => read.map((o) => (o as { id: string }).id);

describe("delta search paging", () => {
  const start = startOfSearch(1_000);

  it("asks for objects from the position, sorted by one rule, never with an offset", () => {
    const body = searchRequestBody(start, property, ["email"]);
    expect(body).toEqual({
      properties: ["email"],
      limit: 200,
      filterGroups: [{ filters: [{ propertyName: property, operator: "GTE", value: "1000" }] }],
      sorts: [{ propertyName: property, direction: "ASCENDING" }],
    });
    const ties = searchRequestBody({ phase: "ties", since: 1_000, value: 5_000, afterId: "17" }, property, []);
    expect(ties.filterGroups).toEqual([
      {
        filters: [
          { propertyName: property, operator: "EQ", value: "5000" },
          { propertyName: "hs_object_id", operator: "GT", value: "17" },
        ],
      },
    ]);
    expect(ties.sorts).toEqual([{ propertyName: "hs_object_id", direction: "ASCENDING" }]);
    expect("after" in body || "after" in ties).toBe(false);
  });

  it("the last page reports everything and ends the search", () => {
    const page = [object(1, 1_000), object(2, 2_000), object(3, 2_000)];
    expect(step(start, page, false)).toEqual({ read: page, next: undefined });
  });

  it("a full page keeps the objects at its last time for the next query (their order is unknown)", () => {
    const page = [object(1, 1_000), object(2, 2_000), object(9, 3_000), object(4, 3_000)];
    const { read, next } = step(start, page, true);
    expect(ids(read)).toEqual(["1", "2"]);
    expect(next).toEqual({ phase: "search", since: 1_000, operator: "GTE", value: 3_000 });
  });

  it("a full page at one time reads that time by id, then goes on after it", () => {
    const tied = [object(9, 3_000), object(4, 3_000)];
    const first = step({ ...start, value: 3_000 }, tied, true);
    expect(first).toEqual({ read: [], next: { phase: "ties", since: 1_000, value: 3_000 } });
    const byId = step(first.next!, [object(4, 3_000), object(9, 3_000)], true);
    expect(ids(byId.read)).toEqual(["4", "9"]);
    expect(byId.next).toEqual({ phase: "ties", since: 1_000, value: 3_000, afterId: "9" });
    const lastTied = step(byId.next!, [object(12, 3_000)], false);
    expect(ids(lastTied.read)).toEqual(["12"]);
    expect(lastTied.next).toEqual({ phase: "search", since: 1_000, operator: "GT", value: 3_000 });
  });

  it("an object whose time cannot be read is reported (for the engine to reject) and never stalls the read", () => {
    const page = [object(1, 1_000), object(2, undefined), object(3, 3_000)];
    const { read, next } = step(start, page, true);
    expect(ids(read)).toEqual(["1", "2"]);
    expect(next).toMatchObject({ phase: "search", value: 3_000 });
    const stalled = step({ ...start, value: 3_000 }, [object(2, undefined), object(3, 3_000)], true);
    expect(stalled.next).toEqual({ phase: "ties", since: 1_000, value: 3_000 });
    expect(() => step(start, [object(2, undefined)], true)).toThrow(Unavailable);
  });
});
