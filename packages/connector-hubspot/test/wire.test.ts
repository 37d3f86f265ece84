import { Either, Schema } from "effect";
import { describe, expect, it } from "vitest";
import { CrmObjectWire, checkCrmObjectWire } from "../src/wire.ts";

const valid = {
  id: "1001",
  properties: { email: "a@b.test", firstname: null, hs_object_id: "1001" },
  createdAt: "2026-01-01T00:00:00.000Z",
  updatedAt: "2026-01-02T00:00:00.000Z",
};

/** Each differs from `valid` in one rule of the schema, or in something the schema allows. */
const samples: ReadonlyArray<unknown> = [
  valid,
  { ...valid, archived: true, archivedAt: "2026-01-03T00:00:00.000Z" },
  { ...valid, archived: false },
  { ...valid, extra: { nested: 1 } },
  { ...valid, properties: {} },
  { ...valid, id: "10a1" },
  { ...valid, id: 1001 },
  { ...valid, properties: { email: 7 } },
  { ...valid, properties: { email: undefined } },
  { ...valid, properties: null },
  { ...valid, properties: ["a"] },
  { ...valid, createdAt: undefined },
  { ...valid, updatedAt: 5 },
  { ...valid, archived: "yes" },
  { ...valid, archivedAt: 12 },
  null,
  "1001",
  [valid],
];

const decode = Schema.decodeUnknownEither(CrmObjectWire);

describe("checkCrmObjectWire", () => {
  it("accepts and refuses exactly what the CrmObjectWire schema does, with the same result", () => {
    for (const sample of samples) {
      const bySchema = decode(sample);
      const byHand = checkCrmObjectWire(sample);
      expect({ sample, accepted: byHand.error === undefined }).toEqual({ sample, accepted: Either.isRight(bySchema) });
      if (Either.isRight(bySchema) && byHand.error === undefined) expect(byHand.ok).toEqual(bySchema.right);
    }
  });

  it("says what is wrong", () => {
    expect(checkCrmObjectWire({ ...valid, properties: { email: 7 } })).toEqual({
      error: "property email must be a string or null",
    });
    expect(checkCrmObjectWire({ ...valid, id: "x" })).toEqual({ error: "id must be a string of digits" });
  });
});
