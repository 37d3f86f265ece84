import { describe, expect, it } from "vitest";
import { readListedPage } from "../../src/sync/listedIds.ts";

describe("readListedPage", () => {
  it("stages bare ids without a time and entries with theirs, as epoch milliseconds", () => {
    const at = new Date("2026-05-01T10:00:00.123Z");
    const page = readListedPage(["a", 42, { id: "b", updatedAt: at }, { id: 7, updatedAt: "2026-05-01T10:00:01Z" }]);
    expect(page.staged).toEqual({
      externalIds: ["a", "42", "b", "7"],
      updatedAtMs: [null, null, at.getTime(), Date.parse("2026-05-01T10:00:01Z")],
    });
    expect(page.withTimes).toBe(2);
    expect(page.errors).toEqual([]);
  });

  it("skips entries without a usable id, and stages an id with an unusable time without it, reported", () => {
    const page = readListedPage(["", null, Number.NaN, { updatedAt: new Date() }, { id: "c", updatedAt: "soon" }]);
    expect(page.staged).toEqual({ externalIds: ["c"], updatedAtMs: [null] });
    expect(page.withTimes).toBe(0);
    expect(page.errors).toEqual([
      { externalId: "c", type: "InvalidRecord", message: "readIds listed an unusable updatedAt: soon" },
    ]);
  });
});
