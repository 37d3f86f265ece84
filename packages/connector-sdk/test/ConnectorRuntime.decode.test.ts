import { Either, Schema } from "effect";
import { describe, expect, it } from "vitest";
import { defineEntity } from "../src/index.ts";
import { decodeRecord } from "../src/runtime.ts";

const Item = Schema.Struct({ id: Schema.String, at: Schema.Date });
const items = defineEntity<typeof Item.Type>({
  record: Item,
  primaryKey: (i) => i.id,
  updatedAt: (i) => i.at,
  read: async function* () {},
});

describe("decodeRecord", () => {
  it("accepts a record encoded, as pages carry it, and as the record type, as get and writes return it", () => {
    const encoded = decodeRecord(items, { id: "a", at: "2026-01-01T00:00:00.000Z" });
    const typed = decodeRecord(items, { id: "a", at: new Date("2026-01-01T00:00:00.000Z") });
    for (const decoded of [encoded, typed]) {
      expect(Either.getOrThrow(decoded)).toMatchObject({
        externalId: "a",
        updatedAt: new Date("2026-01-01T00:00:00.000Z"),
        data: { id: "a", at: "2026-01-01T00:00:00.000Z" },
      });
    }
  });

  it("still refuses what is neither", () => {
    const decoded = decodeRecord(items, { id: "a", at: 42 });
    expect(Either.isLeft(decoded) && decoded.left._tag).toBe("InvalidRecord");
  });
});
