import { Unavailable } from "@tandem/core";
import { describe, expect, it } from "vitest";
import { afterDeltaPage, type DeltaPosition, deltaQuery, startOfDelta } from "../src/deltaPaging.ts";

/*
 * The delta's paging rules, without HTTP: which entities a page reports and where the next
 * request starts. (Against the fake, end to end: businesscentral.test.ts and engine.test.ts.)
 */

const entity = (number: string, at: number | undefined) => ({
  number,
  lastModifiedDateTime: at === undefined ? "yesterday at noon" : new Date(at).toISOString(),
});
const step = (position: DeltaPosition, values: ReadonlyArray<unknown>, nextLink?: string) =>
  afterDeltaPage(position, values, nextLink, "items");
const numbers = (read: ReadonlyArray<unknown>) => read.map((e) => (e as { number: string }).number);
const link = "https://bc.test/next";

describe("delta paging", () => {
  const start = startOfDelta(1_000);

  it("asks from the position, by modification time, with milliseconds; ties in BC's default order", () => {
    expect(decodeURIComponent(deltaQuery(start))).toBe(
      "$filter=lastModifiedDateTime ge 1970-01-01T00:00:01.000Z&$orderby=lastModifiedDateTime asc",
    );
    expect(decodeURIComponent(deltaQuery({ phase: "ties", value: 1_500 }))).toBe(
      "$filter=lastModifiedDateTime eq 1970-01-01T00:00:01.500Z",
    );
  });

  it("a page without a next link ends the delta with everything on it", () => {
    const page = [entity("A", 1_000), entity("B", 2_000)];
    expect(step(start, page)).toEqual({ read: page, next: undefined });
  });

  it("a page with more to come keeps the entities at its last time for the next query", () => {
    const { read, next } = step(start, [entity("A", 1_000), entity("B", 2_000), entity("C", 2_000)], link);
    expect(numbers(read)).toEqual(["A"]);
    expect(next).toEqual({ phase: "modified", operator: "ge", value: 2_000 });
  });

  it("a whole page at one time is read by its own query, following its next links, then goes on after it", () => {
    const first = step({ phase: "modified", operator: "ge", value: 2_000 }, [entity("B", 2_000)], link);
    expect(first).toEqual({ read: [], next: { phase: "ties", value: 2_000 } });
    const tied = step(first.next!, [entity("B", 2_000), entity("C", 2_000)], link);
    expect(numbers(tied.read)).toEqual(["B", "C"]);
    expect(tied.next).toEqual({ phase: "ties", value: 2_000, next: link });
    expect(step(tied.next!, [entity("D", 2_000)]).next).toEqual({ phase: "modified", operator: "gt", value: 2_000 });
  });

  it("an entity whose time cannot be read is reported, and never stalls the read", () => {
    const { read, next } = step(start, [entity("A", 1_000), entity("X", undefined), entity("B", 2_000)], link);
    expect(numbers(read)).toEqual(["A", "X"]);
    expect(next).toEqual({ phase: "modified", operator: "ge", value: 2_000 });
    expect(() => step(start, [entity("X", undefined)], link)).toThrow(Unavailable);
  });
});
