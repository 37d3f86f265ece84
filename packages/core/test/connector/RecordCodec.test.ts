import { isDeepStrictEqual } from "node:util";
import { compileRecordCodec, type RecordCodec } from "@tandem/connector-sdk/runtime";
import { decodeRecord, defineEntity } from "@tandem/core";
import { AcmeContact } from "@tandem/testkit";
import { Arbitrary, Effect, Either, FastCheck, ParseResult, Schema } from "effect";
import { describe, expect, it } from "vitest";
import { Task } from "../../../../examples/connector-template/src/entities/tasks.ts";
import { Contact, contacts } from "../../../connector-hubspot/src/entities/contacts.ts";

/*
 * The compiled codec is only a shortcut: for every input it must either agree with
 * Effect Schema's decode-then-encode exactly, or decline (undefined). These tests
 * compare both on generated valid inputs (Effect's own arbitraries, encoded) and on
 * many broken variants of them.
 */

/** A value with key order, prototypes and Date times made explicit, so that comparison sees them. */
const shape = (value: unknown): unknown => {
  if (value instanceof Date) return { date: value.getTime() };
  if (Array.isArray(value)) return { array: value.map(shape) };
  if (typeof value === "object" && value !== null) {
    return {
      plain: Object.getPrototypeOf(value) === Object.prototype,
      entries: Reflect.ownKeys(value).map((key) => [key, shape((value as Record<PropertyKey, unknown>)[key])]),
    };
  }
  return value;
};

/** Decode then encode with Effect Schema: the reference. */
const reference = (schema: Schema.Schema.AnyNoContext, raw: unknown) => {
  const decoded = Schema.decodeUnknownEither(schema)(raw);
  if (Either.isLeft(decoded)) return undefined;
  const encoded = Schema.encodeEither(schema)(decoded.right);
  return Either.isLeft(encoded) ? undefined : { type: decoded.right, encoded: encoded.right };
};

/** Inputs where the compiled codec and Effect disagree, with counts of what was compared. */
const compare = (schema: Schema.Schema.AnyNoContext, codec: RecordCodec, inputs: ReadonlyArray<unknown>) => {
  const mismatches: Array<{ readonly raw: unknown; readonly effect: unknown; readonly fast: unknown }> = [];
  let valid = 0;
  for (const raw of inputs) {
    const effect = reference(schema, raw);
    const fast = codec(raw);
    if (effect !== undefined) valid++;
    const same =
      effect === undefined
        ? fast === undefined
        : fast !== undefined &&
          isDeepStrictEqual(shape(fast.type), shape(effect.type)) &&
          isDeepStrictEqual(shape(fast.encoded), shape(effect.encoded));
    if (!same) mismatches.push({ raw, effect, fast });
  }
  return { mismatches: mismatches.slice(0, 5), valid, invalid: inputs.length - valid };
};

const badValues: ReadonlyArray<unknown> = [
  null,
  undefined,
  0,
  -0,
  1.5,
  42,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  "",
  " padded ",
  "abc",
  "123",
  "12a",
  "2024-01-01T00:00:00.000Z",
  "2024-13-45",
  "not a date",
  true,
  false,
  {},
  [],
  ["x"],
  new Date(0),
  new Date(Number.NaN),
  10n,
];

/** Broken (and some still valid) variants of a valid input: removed, replaced and extra keys or elements, nested too. */
const variants = (value: unknown, depth = 0): Array<unknown> => {
  const out: Array<unknown> = [];
  if (Array.isArray(value)) {
    out.push(value.slice(0, -1), [...value, "extra"], [...value, value[0]]);
    value.forEach((element, i) => {
      for (const bad of badValues) out.push(value.map((e, j) => (j === i ? bad : e)));
      if (depth < 2) for (const v of variants(element, depth + 1)) out.push(value.map((e, j) => (j === i ? v : e)));
    });
  } else if (typeof value === "object" && value !== null && !(value instanceof Date)) {
    const record = value as Record<string, unknown>;
    out.push({ ...record, extra: 1 }, { extra: 1, ...record });
    for (const key of Object.keys(record)) {
      const { [key]: _, ...rest } = record;
      out.push(rest, { ...record, [key]: undefined });
      for (const bad of badValues) out.push({ ...record, [key]: bad });
      if (depth < 2) for (const v of variants(record[key], depth + 1)) out.push({ ...record, [key]: v });
    }
  }
  return out;
};

/** Valid encoded inputs from Effect's arbitrary, their Type forms, their broken variants, and noise. */
const inputsFor = (schema: Schema.Schema.AnyNoContext, seed: number) => {
  const types = FastCheck.sample(Arbitrary.make(schema), { numRuns: 150, seed });
  const encoded = types.map((t) => Schema.encodeSync(schema)(t));
  const noise = FastCheck.sample(FastCheck.anything({ withDate: true, withNullPrototype: true }), {
    numRuns: 100,
    seed,
  });
  return [
    ...encoded,
    ...types,
    ...encoded.slice(0, 10).flatMap((e) => variants(e)),
    ...noise,
    ...badValues,
    Object.create({ inherited: true }),
  ];
};

/** A struct exercising every compiled node kind. */
const Kitchen = Schema.Struct({
  id: Schema.NonEmptyString,
  count: Schema.Number,
  ratio: Schema.Number.pipe(Schema.between(0, 1)),
  level: Schema.Int,
  kind: Schema.Literal("a", "b", 3, true, null),
  status: Schema.Union(Schema.Literal("off"), Schema.Number.pipe(Schema.positive())),
  tags: Schema.Array(Schema.String),
  pair: Schema.Tuple(Schema.String, Schema.Number),
  optionalTail: Schema.Tuple(Schema.String, Schema.optionalElement(Schema.Boolean)),
  rest: Schema.Tuple([Schema.Boolean], Schema.Number),
  note: Schema.optional(Schema.String),
  exactNote: Schema.optionalWith(Schema.String, { exact: true }),
  seenAt: Schema.optional(Schema.Date),
  nested: Schema.Struct({ at: Schema.Date, amount: Schema.NumberFromString, label: Schema.Trim }),
  items: Schema.Array(Schema.Struct({ name: Schema.String, at: Schema.NullOr(Schema.DateFromNumber) })),
  loose: Schema.Unknown,
  big: Schema.BigInt,
  // Decodes 1 with Number, but Effect encodes it back with NumberFromString: "1".
  either: Schema.Union(Schema.NumberFromString, Schema.Number),
  empty: Schema.Struct({}),
});

/** A filter over a struct that transforms: the encode side re-validates the whole Type. */
const Window = Schema.Struct({ from: Schema.Date, to: Schema.Date, label: Schema.optional(Schema.Trim) }).pipe(
  Schema.filter((w) => w.from.getTime() <= w.to.getTime()),
);

/** Keys that must be quoted, look like indexes, shadow Object.prototype, or are symbols. */
const marker = Symbol("marker");
const OddKeys = Schema.Struct({
  'we"ird\\key\u2028': Schema.String,
  "1": Schema.Number,
  constructor: Schema.String,
  [marker]: Schema.Boolean,
  type: Schema.optional(Schema.Date),
  slot: Schema.NullOr(Schema.String),
});

const schemas: ReadonlyArray<readonly [string, Schema.Schema.AnyNoContext]> = [
  ["HubSpot Contact", Contact],
  ["Acme contact", AcmeContact],
  ["template Task", Task],
  ["kitchen sink", Kitchen],
  ["refined struct", Window],
  ["array of contacts", Schema.Array(AcmeContact)],
  ["odd keys", OddKeys],
];

describe("compileRecordCodec", () => {
  it.each(schemas)("agrees with Effect Schema's decode + encode: %s", (_, schema) => {
    const codec = compileRecordCodec(schema);
    expect(codec).toBeDefined();
    const result = compare(schema, codec!, inputsFor(schema, 7));
    expect(result.mismatches).toEqual([]);
    expect(result.valid).toBeGreaterThan(150);
    expect(result.invalid).toBeGreaterThan(500);
  });

  it("matches hand-picked edge cases", () => {
    const codec = compileRecordCodec(Kitchen)!;
    const base = Schema.encodeSync(Kitchen)(FastCheck.sample(Arbitrary.make(Kitchen), { numRuns: 1, seed: 1 })[0]!);
    const { loose: _, ...withoutLoose } = base;
    const cases: ReadonlyArray<unknown> = [
      { ...base, count: Number.NaN },
      { ...base, count: Number.POSITIVE_INFINITY },
      { ...base, ratio: Number.NaN },
      { ...base, level: 1.5 },
      { ...base, either: 1 },
      { ...base, either: "1" },
      { ...base, nested: { ...base.nested, label: "  padded  " } },
      { ...base, nested: { ...base.nested, at: "2024-02-30" } },
      { ...base, nested: { ...base.nested, at: "garbage" } },
      { ...base, note: undefined },
      { ...base, exactNote: undefined },
      { ...base, seenAt: undefined },
      { ...base, empty: 0 },
      { ...base, empty: [] },
      { ...base, big: "12abc" },
      { ...base, optionalTail: ["a"] },
      { ...base, optionalTail: ["a", undefined] },
      { ...base, rest: [] },
      { ...base, rest: [true, 1, 2, 3] },
      withoutLoose,
    ];
    expect(compare(Kitchen, codec, cases).mismatches).toEqual([]);
    // A missing required `Unknown` key decodes to an explicit undefined, as in Effect.
    expect(Object.hasOwn(codec(withoutLoose)!.type as object, "loose")).toBe(true);
  });

  it("reads dates exactly as `new Date(string)` does, and writes them as `toISOString` does", () => {
    const codec = compileRecordCodec(Schema.Struct({ at: Schema.Date }))!;
    const times = FastCheck.sample(FastCheck.date({ noInvalidDate: true }), { numRuns: 300, seed: 3 });
    const iso = times.map((t) => t.toISOString());
    // Every digit position of a valid string, bumped: rolls over, out of range, or still valid.
    const bumped = iso
      .slice(0, 20)
      .flatMap((s) =>
        [...s].map((c, i) => (c >= "0" && c <= "9" ? `${s.slice(0, i)}${(Number(c) + 7) % 10}${s.slice(i + 1)}` : s)),
      );
    const strings = [
      ...iso,
      ...bumped,
      "2024-02-29T00:00:00.000Z",
      "2023-02-29T00:00:00.000Z",
      "2024-02-30T00:00:00.000Z",
      "2100-02-29T00:00:00.000Z",
      "2000-02-29T12:00:00.000Z",
      "2024-04-31T00:00:00.000Z",
      "2024-00-10T00:00:00.000Z",
      "2024-13-10T00:00:00.000Z",
      "2024-01-00T00:00:00.000Z",
      "2024-01-01T24:00:00.000Z",
      "2024-01-01T23:60:00.000Z",
      "2024-01-01T23:59:60.000Z",
      "0099-12-31T23:59:59.999Z",
      "0100-01-01T00:00:00.000Z",
      "9999-12-31T23:59:59.999Z",
      "+010000-01-01T00:00:00.000Z",
      "-000001-01-01T00:00:00.000Z",
      "2024-01-01T00:00:00Z",
      "2024-01-01T00:00:00.000+00:00",
      "2024-01-01T00:00:00.000z",
      "2024-01-01 00:00:00.000Z",
      "2024-01-01",
      " 2024-01-01T00:00:00.000Z",
      "2024-01-01T00:00:00.00/Z",
      "2024-01-01T00:00:00.000\u0000",
      "２０２４-01-01T00:00:00.000Z",
    ];
    const result = compare(
      Schema.Struct({ at: Schema.Date }),
      codec,
      strings.map((at) => ({ at })),
    );
    expect(result.mismatches).toEqual([]);
    expect(result.valid).toBeGreaterThan(300);
  });

  it("keeps the union member that decoded even when it cannot encode, as Effect does", () => {
    // Decodes "5" to 5, but refuses to encode anything.
    const oneWay = Schema.transformOrFail(Schema.String, Schema.Number, {
      strict: true,
      decode: (s) => ParseResult.succeed(Number(s)),
      encode: (n, _, ast) => ParseResult.fail(new ParseResult.Forbidden(ast, n, "one way")),
    });
    for (const schema of [
      Schema.Union(oneWay, Schema.String),
      Schema.Union(oneWay, Schema.String, Schema.Number),
      Schema.Union(Schema.Boolean, oneWay, Schema.String, Schema.Number),
      Schema.Struct({ a: Schema.NullOr(Schema.Union(oneWay, Schema.String, Schema.Number)) }),
    ]) {
      const codec = compileRecordCodec(schema)!;
      const inputs = ["5", 5, true, null, "x", { a: "5" }, { a: 5 }, { a: null }, { a: "x" }];
      expect(compare(schema, codec, inputs).mismatches).toEqual([]);
    }
  });

  it("strips excess keys and keeps the schema's key order", () => {
    const codec = compileRecordCodec(AcmeContact)!;
    const raw = {
      zzz: 1,
      updatedAt: "2026-01-01T00:00:00.000Z",
      lifecycleStage: "lead",
      email: "a@example.com",
      lastName: "L",
      firstName: "F",
      id: "1",
    };
    const result = codec(raw)!;
    expect(Object.keys(result.encoded as object)).toEqual([
      "id",
      "firstName",
      "lastName",
      "email",
      "lifecycleStage",
      "updatedAt",
    ]);
    expect((result.type as AcmeContact).updatedAt).toEqual(new Date("2026-01-01T00:00:00.000Z"));
  });

  class Person extends Schema.Class<Person>("Person")({ name: Schema.String }) {}
  interface Tree {
    readonly children: ReadonlyArray<Tree>;
  }
  const Tree: Schema.Schema<Tree> = Schema.Struct({
    children: Schema.Array(Schema.suspend((): Schema.Schema<Tree> => Tree)),
  });

  it.each([
    ["index signatures", Schema.Record({ key: Schema.String, value: Schema.Number })],
    [
      "struct with index signature",
      Schema.Struct({ a: Schema.String }, Schema.Record({ key: Schema.String, value: Schema.String })),
    ],
    ["optional with default", Schema.Struct({ a: Schema.optionalWith(Schema.String, { default: () => "" }) })],
    ["renamed key", Schema.Struct({ a: Schema.propertySignature(Schema.String).pipe(Schema.fromKey("b")) })],
    ["discriminated union", Schema.Union(Schema.TaggedStruct("A", { a: Schema.String }), Schema.TaggedStruct("B", {}))],
    ["class", Person],
    ["recursive", Tree],
    ["template literal", Schema.TemplateLiteral("id-", Schema.Number)],
    ["redacted", Schema.Redacted(Schema.String)],
    ["option", Schema.Option(Schema.String)],
    ["parse options", Schema.Struct({ a: Schema.String }).annotations({ parseOptions: { onExcessProperty: "error" } })],
  ] as const)("declines what it does not compile: %s", (_, schema) => {
    expect(compileRecordCodec(schema as Schema.Schema.AnyNoContext)).toBeUndefined();
  });

  it("declines per call what is not a synchronous Either, and what throws", () => {
    const effectful = Schema.Struct({
      a: Schema.transformOrFail(Schema.String, Schema.String, {
        decode: (s) => Effect.succeed(s.toUpperCase()),
        encode: (s) => Effect.succeed(s.toLowerCase()),
      }),
    });
    const codec = compileRecordCodec(effectful)!;
    expect(codec({ a: "x" })).toBeUndefined();
    expect(Schema.decodeUnknownSync(effectful)({ a: "x" })).toEqual({ a: "X" });

    const throwing = Schema.transform(Schema.String, Schema.String, {
      strict: true,
      decode: () => {
        throw new Error("boom");
      },
      encode: (s) => s,
    });
    expect(compileRecordCodec(throwing)!("x")).toBeUndefined();
  });
});

describe("decodeRecord with the compiled codec", () => {
  it("gives what Effect Schema gives", () => {
    const inputs = inputsFor(Contact, 11);
    let accepted = 0;
    for (const raw of inputs) {
      const effect = reference(Contact, raw);
      const decoded = decodeRecord(contacts, raw);
      if (effect === undefined || Either.isLeft(decoded)) continue;
      accepted++;
      const record = effect.type as Contact;
      expect(shape(decoded.right)).toEqual(
        shape({ externalId: record.id, updatedAt: record.updatedAt, record, data: effect.encoded }),
      );
    }
    expect(accepted).toBeGreaterThan(150);
  });

  it("still takes records in Type form and refuses invalid ones", () => {
    const Item = Schema.Struct({ id: Schema.String, at: Schema.Date });
    const items = defineEntity<typeof Item.Type>({
      record: Item,
      primaryKey: (i) => i.id,
      updatedAt: (i) => i.at,
      read: async function* () {},
    });
    const at = new Date("2026-01-01T00:00:00.000Z");
    const typed = Either.getOrThrow(decodeRecord(items, { id: "a", at }));
    expect(typed.data).toEqual({ id: "a", at: "2026-01-01T00:00:00.000Z" });
    const invalid = decodeRecord(items, { id: "a", at: "nope" });
    expect(Either.isLeft(invalid) && invalid.left.message).toMatch(/^record does not match the schema: at:/);
  });
});
