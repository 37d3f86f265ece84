import { defineEntity } from "@tandem/connector-sdk";
import { decodeRecord } from "@tandem/connector-sdk/runtime";
import { Either, Schema } from "effect";
import { describe, expect, it } from "vitest";
import type { Checkpoint } from "../../src/store/RecordStore.ts";
import { batchLength, cutBatch, foldPage, type PageFold, startPageFold } from "../../src/sync/pageFold.ts";

const Contact = Schema.Struct({ id: Schema.String, name: Schema.String, updatedAt: Schema.String });
const contacts = defineEntity({
  record: Contact,
  primaryKey: (r) => r.id,
  updatedAt: (r) => new Date(r.updatedAt),
  read: async function* () {},
});
const decode = (raw: unknown) => decodeRecord(contacts, raw);

const start: Checkpoint = {
  mode: "full",
  cursor: undefined,
  since: undefined,
  startedAt: "2026-01-01T00:00:00.000Z",
  maxUpdatedAt: undefined,
  pages: 0,
};
const contact = (id: string, name: string, updatedAt: string) => ({ id, name, updatedAt });
const fold = (from: PageFold, page: { records: ReadonlyArray<unknown>; cursor?: string; deleted?: string[] }) =>
  Either.getOrThrow(foldPage(from, page, decode, 1_000));

describe("the page fold", () => {
  it("keeps the newest of an id repeated within a page, and reports the repeat", () => {
    const after = fold(startPageFold(start, 10), {
      records: [
        contact("1", "new", "2026-01-03T00:00:00Z"),
        contact("1", "old", "2026-01-02T00:00:00Z"),
        contact("2", "only", "2026-01-01T00:00:00Z"),
      ],
      cursor: "p1",
    });
    expect(after.records.get("1")?.data).toMatchObject({ name: "new" });
    expect(batchLength(after)).toBe(2);
    expect(after.errors.listed).toEqual([
      { externalId: "1", type: "InvalidRecord", message: "duplicate id within one page; the last occurrence was kept" },
    ]);
  });

  it("keeps the newest version across pages and tracks the newest updatedAt seen", () => {
    const first = fold(startPageFold(start, 10), {
      records: [contact("1", "v2", "2026-01-05T00:00:00Z"), contact("2", "a", "2026-01-02T00:00:00Z")],
      cursor: "p1",
    });
    const second = fold(first, { records: [contact("1", "v1", "2026-01-04T00:00:00Z")], cursor: "p2" });
    expect(second.records.get("1")?.data).toMatchObject({ name: "v2" });
    expect(second.checkpoint).toMatchObject({ cursor: "p2", pages: 2, maxUpdatedAt: "2026-01-05T00:00:00.000Z" });
    expect(second.pagesThisRun).toBe(2);
    // The fold is a value: the earlier one is unchanged.
    expect(first.checkpoint.cursor).toBe("p1");
    expect(first.records.size).toBe(2);
  });

  it("fails when a cursor repeats, including the one a resumed run started from", () => {
    const first = fold(startPageFold(start, 10), { records: [], cursor: "p1" });
    const repeated = foldPage(first, { records: [], cursor: "p1" }, decode, 1_000);
    expect(Either.isLeft(repeated) && repeated.left).toMatchObject({
      reason: "cursor-repeated",
      message: 'cursor "p1" repeated after 2 pages; the read would never end',
    });
    const resumed = startPageFold({ ...start, cursor: "p7", pages: 7 }, 10);
    const again = foldPage(resumed, { records: [], cursor: "p7" }, decode, 1_000);
    expect(Either.isLeft(again) && again.left.reason).toBe("cursor-repeated");
  });

  it("counts empty pages without adding records, and stops past maxPages", () => {
    const empty = fold(startPageFold(start, 10), { records: [] });
    expect(batchLength(empty)).toBe(0);
    expect(empty.checkpoint).toMatchObject({ pages: 1, maxUpdatedAt: undefined, cursor: undefined });
    const tooMany = foldPage(empty, { records: [] }, decode, 1);
    expect(Either.isLeft(tooMany) && tooMany.left).toMatchObject({
      reason: "too-many-pages",
      message: "read exceeded 1 pages",
    });
  });

  it("lets a later deletion win over a record, and a later record over a deletion", () => {
    const first = fold(startPageFold(start, 10), {
      records: [contact("1", "a", "2026-01-01T00:00:00Z")],
      deleted: ["1", "9"],
    });
    expect([...first.records.keys()]).toEqual([]);
    expect([...first.deleted]).toEqual(["1", "9"]);
    const second = fold(first, { records: [contact("9", "back", "2026-01-02T00:00:00Z")] });
    expect([...second.deleted]).toEqual(["1"]);
    const cut = cutBatch(second);
    expect(cut.records.map((r) => r.externalId)).toEqual(["9"]);
    expect(cut.deleted).toEqual(["1"]);
    expect(batchLength(cut.fold)).toBe(0);
    expect(cut.fold.checkpoint).toEqual(second.checkpoint);
  });

  it("lists invalid records as item errors up to the cap, and counts the rest", () => {
    const after = fold(startPageFold(start, 1), { records: [{ id: "x" }, { id: "y" }, { id: "z" }] });
    expect(after.errors.listed).toHaveLength(1);
    expect(after.errors.omitted).toBe(2);
    expect(batchLength(after)).toBe(0);
  });
});
