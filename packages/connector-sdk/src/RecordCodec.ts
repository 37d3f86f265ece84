import { SchemaAST as AST, Either, Option, Schema } from "effect";

/*
 * A fast codec for an entity's record schema. Every record a connector returns
 * is decoded with the entity's Effect Schema and encoded back to get the JSON
 * form that is stored; on a large import that is the biggest JS cost, because
 * Effect's parser is an interpreter built for good error messages and for
 * async/contextual schemas. Records are almost always valid, so this module
 * compiles the schema's AST into plain functions (closures, and generated code
 * for structs) for the success path only: one walk of the input that yields
 * both the decoded value and its encoded form. Whenever an input does not pass,
 * the caller falls back to Effect Schema, which builds the error. So this code
 * never explains a failure; it must only never accept what Effect rejects, nor
 * produce a different value.
 *
 * Each node mirrors the corresponding case of Effect 3's `ParseResult.go` for
 * the options `decodeUnknownEither(schema)(raw)` / `encodeEither(schema)(value)`
 * run with (none: excess properties ignored and stripped, `exact` off, output
 * in the schema's property order). Anything whose semantics we do not
 * reproduce exactly is reported as unsupported at compile time.
 */

/** What a compiled codec returns for an input it accepts: the decoded value and its encoded form. */
export interface RecordCodecResult {
  /** What `Schema.decodeUnknownEither(schema)(raw)` gives. */
  readonly type: unknown;
  /** What `Schema.encodeEither(schema)` gives for `type`: the normalized (stored) form. */
  readonly encoded: unknown;
}

/**
 * A compiled codec: the decoded and encoded forms of a valid input, or `undefined`
 * when the input does not pass (or cannot be settled synchronously). `undefined`
 * means "ask Effect Schema", never "invalid" on its own.
 */
export type RecordCodec = (raw: unknown) => RecordCodecResult | undefined;

/** A step's "no": a distinct value, since `undefined` and `null` are legitimate results. */
const Fail: unique symbol = Symbol("RecordCodec/Fail");

/**
 * Thrown when a transformation, filter or declaration answers with something other
 * than a synchronous Either (an Effect that Effect Schema would run): this call
 * cannot be decided here, so the whole call falls back. It must not count as a
 * failed union member, or a later member could win where Effect picks this one.
 */
const Undecided = Symbol("RecordCodec/Undecided");

/** Where `both` leaves its two results, so that a leaf allocates nothing. */
interface Slot {
  type: unknown;
  encoded: unknown;
}

/** One compiled AST node. `decode`/`encode` return `Fail` where Effect would return a Left. */
interface Node {
  /**
   * Set when the node returns its input unchanged on both sides (keywords, literals,
   * refinements and unions of those): decoding and encoding are then the same
   * check. A deterministic check that passed on decode passes on encode too.
   */
  readonly test: ((u: unknown) => boolean) | undefined;
  readonly decode: (u: unknown) => unknown;
  readonly encode: (a: unknown) => unknown;
  /** Decode then encode the result; writes both into `slot`. */
  readonly both: (u: unknown, slot: Slot) => boolean;
}

/** Effect passes these options to filters, transformations and declarations when none are given. */
const options = AST.defaultParseOption;

/** A synchronous Either's value, `Fail` for a Left; anything else cannot be settled here. */
const settle = (result: unknown): unknown => {
  if (!Either.isEither(result)) throw Undecided;
  return Either.isRight(result) ? result.right : Fail;
};

const checked = (test: (u: unknown) => boolean): Node => ({
  test,
  decode: (u) => (test(u) ? u : Fail),
  encode: (a) => (test(a) ? a : Fail),
  both: (u, slot) => {
    if (!test(u)) return false;
    slot.type = u;
    slot.encoded = u;
    return true;
  },
});

/** A node whose encoded form must be computed from its decoded value, as Effect does. */
const sequential = (decode: (u: unknown) => unknown, encode: (a: unknown) => unknown): Node => ({
  test: undefined,
  decode,
  encode,
  both: (u, slot) => {
    const type = decode(u);
    if (type === Fail) return false;
    const encoded = encode(type);
    if (encoded === Fail) return false;
    slot.type = type;
    slot.encoded = encoded;
    return true;
  },
});

const always = () => true;

/**
 * Mirrors `ParseResult.getLiterals`: whether a union member has a required literal
 * property. Effect then reorders the union's candidates by discriminant (its
 * "search tree"); we only compile unions where it keeps the declared order.
 */
const hasLiteralKeys = (ast: AST.AST, isDecoding: boolean): boolean => {
  const literalOnSide = (type: AST.AST) => AST.isLiteral(isDecoding ? AST.encodedAST(type) : AST.typeAST(type));
  switch (ast._tag) {
    case "Declaration": {
      const surrogate = AST.getSurrogateAnnotation(ast);
      return Option.isSome(surrogate) && hasLiteralKeys(surrogate.value, isDecoding);
    }
    case "TypeLiteral":
      return ast.propertySignatures.some((ps) => !ps.isOptional && literalOnSide(ps.type));
    case "TupleType":
      return ast.elements.some((e) => !e.isOptional && literalOnSide(e.type));
    case "Refinement":
      return hasLiteralKeys(ast.from, isDecoding);
    case "Transformation":
      return hasLiteralKeys(isDecoding ? ast.from : ast.to, isDecoding);
    case "Suspend":
      return true;
    default:
      return false;
  }
};

const dropRightRefinement = (ast: AST.AST): AST.AST => (AST.isRefinement(ast) ? dropRightRefinement(ast.from) : ast);

/** Compiled nodes by AST (ASTs are immutable); `null` marks an unsupported one. */
const compiled = new WeakMap<AST.AST, Node | null>();

const compile = (ast: AST.AST): Node | undefined => {
  const known = compiled.get(ast);
  if (known !== undefined) return known ?? undefined;
  const node = build(ast);
  compiled.set(ast, node ?? null);
  return node;
};

const build = (ast: AST.AST): Node | undefined => {
  // These annotations change the parse options or add a fallback for a subtree.
  if (Option.isSome(AST.getParseOptionsAnnotation(ast)) || Option.isSome(AST.getDecodingFallbackAnnotation(ast))) {
    return undefined;
  }
  switch (ast._tag) {
    case "StringKeyword":
      return checked((u) => typeof u === "string");
    // Effect's Number is `typeof === "number"`: NaN and ±Infinity pass.
    case "NumberKeyword":
      return checked((u) => typeof u === "number");
    case "BooleanKeyword":
      return checked((u) => typeof u === "boolean");
    case "BigIntKeyword":
      return checked((u) => typeof u === "bigint");
    case "SymbolKeyword":
      return checked((u) => typeof u === "symbol");
    case "UndefinedKeyword":
      return checked((u) => u === undefined);
    case "ObjectKeyword":
      return checked((u) => (typeof u === "object" && u !== null) || typeof u === "function");
    case "UnknownKeyword":
    case "AnyKeyword":
    case "VoidKeyword":
      return checked(always);
    case "NeverKeyword":
      return checked(() => false);
    case "Literal": {
      const literal = ast.literal;
      return checked((u) => u === literal);
    }
    case "UniqueSymbol": {
      const symbol = ast.symbol;
      return checked((u) => u === symbol);
    }
    case "Enums": {
      const values = ast.enums.map(([, value]) => value);
      return checked((u) => values.some((value) => value === u));
    }
    case "Declaration":
      return declaration(ast);
    case "Refinement":
      return refinement(ast);
    case "Transformation":
      return transformation(ast);
    case "TypeLiteral":
      return typeLiteral(ast);
    case "TupleType":
      return tupleType(ast);
    case "Union":
      return union(ast);
    // TemplateLiteral (its own matching rules) and Suspend (recursive schemas) are not compiled.
    default:
      return undefined;
  }
};

/**
 * Only declarations without type parameters (`Schema.declare(predicate)`: DateFromSelf,
 * instanceOf...): with parameters (Class, Option, Redacted...) Effect validates the
 * Type side with derived parameters we would have to reproduce.
 */
const declaration = (ast: AST.Declaration): Node | undefined => {
  // Effect's own DateFromSelf is `declare(Predicate.isDate)`: it returns its input on both sides.
  if (ast === Schema.DateFromSelf.ast) return checked((u) => u instanceof Date);
  if (ast.typeParameters.length > 0) return undefined;
  const decodeUnknown = ast.decodeUnknown();
  const encodeUnknown = ast.encodeUnknown();
  return sequential(
    (u) => settle(decodeUnknown(u, options, ast)),
    (a) => settle(encodeUnknown(a, options, ast)),
  );
};

/**
 * Decoding checks `from` then the filter. Encoding, as in Effect, first validates
 * the value against the whole Type side (every filter again, which is cheap) and
 * encodes that result with the refinements on the right dropped.
 */
const refinement = (ast: AST.Refinement): Node | undefined => {
  const from = compile(ast.from);
  if (from === undefined) return undefined;
  const filter = ast.filter;
  const fromTest = from.test;
  if (fromTest !== undefined) return checked((u) => fromTest(u) && Option.isNone(filter(u, options, ast)));
  const decodeFrom = from.decode;
  const decode = (u: unknown): unknown => {
    const a = decodeFrom(u);
    return a === Fail || Option.isSome(filter(a, options, ast)) ? Fail : a;
  };
  // The Type side is this very AST when there is no transformation below (a filtered struct).
  const typeSide = AST.typeAST(ast);
  const validate = typeSide === ast ? decode : compile(typeSide)?.decode;
  const targetAst = dropRightRefinement(ast.from);
  const target = compile(targetAst);
  if (validate === undefined || target === undefined) return undefined;
  const encodeTarget = target.encode;
  const encode = (a: unknown): unknown => {
    const valid = validate(a);
    return valid === Fail ? Fail : encodeTarget(valid);
  };
  const bothFrom = from.both;
  return {
    test: undefined,
    decode,
    encode,
    both: (u, slot) => {
      if (!bothFrom(u, slot)) return false;
      const type = slot.type;
      if (Option.isSome(filter(type, options, ast))) return false;
      const valid = validate(type);
      if (valid === Fail) return false;
      // Validation kept the value and `from` is what encodes it: `from` already did (Schema.Date's case).
      if (valid === type && targetAst === ast.from) return true;
      const encoded = encodeTarget(valid);
      if (encoded === Fail) return false;
      slot.type = type;
      slot.encoded = encoded;
      return true;
    },
  };
};

/** `from`, the transformation, then `to`; encoding goes the other way. Only final and compose transformations. */
const transformation = (ast: AST.Transformation): Node | undefined => {
  const kind = ast.transformation;
  // Property signature transformations (optionalWith defaults, renamed keys) rewrite the object: not compiled.
  if (kind._tag === "TypeLiteralTransformation") return undefined;
  const from = compile(ast.from);
  const to = compile(ast.to);
  if (from === undefined || to === undefined) return undefined;
  const decodeFrom = from.decode;
  const decodeTo = to.decode;
  const encodeTo = to.encode;
  const encodeFrom = from.encode;
  if (kind._tag === "ComposeTransformation") {
    return sequential(
      (u) => {
        const a = decodeFrom(u);
        return a === Fail ? Fail : decodeTo(a);
      },
      (t) => {
        const a = encodeTo(t);
        return a === Fail ? Fail : encodeFrom(a);
      },
    );
  }
  const decodeStep = kind.decode;
  const encodeStep = kind.encode;
  const node = sequential(
    (u) => {
      const a = decodeFrom(u);
      if (a === Fail) return Fail;
      const b = settle(decodeStep(a, options, ast, u));
      return b === Fail ? Fail : decodeTo(b);
    },
    (t) => {
      const a = encodeTo(t);
      if (a === Fail) return Fail;
      const b = settle(encodeStep(a, options, ast, t));
      return b === Fail ? Fail : encodeFrom(b);
    },
  );
  return ast === Schema.DateFromString.ast ? dateFromString(node) : node;
};

/** Days per month of a common year; February gets one more in leap years. */
const monthDays = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** The two decimal digits at `i`, or NaN. */
const twoDigits = (s: string, i: number): number => {
  const high = s.charCodeAt(i) - 48;
  const low = s.charCodeAt(i + 1) - 48;
  return high >= 0 && high <= 9 && low >= 0 && low <= 9 ? high * 10 + low : Number.NaN;
};

/**
 * The time of a string exactly in `Date.prototype.toISOString`'s form
 * (`YYYY-MM-DDTHH:mm:ss.sssZ`, years 0100-9999) naming a real instant, else NaN.
 * For such a string the spec fixes `new Date(s)` to that time, and `toISOString()`
 * gives the string back. Anything else (other forms, `24:00`, February 30, which V8
 * rolls over) is left to the real functions.
 */
const isoTime = (s: string): number => {
  if (
    s.length !== 24 ||
    s.charCodeAt(4) !== 45 || // -
    s.charCodeAt(7) !== 45 ||
    s.charCodeAt(10) !== 84 || // T
    s.charCodeAt(13) !== 58 || // :
    s.charCodeAt(16) !== 58 ||
    s.charCodeAt(19) !== 46 || // .
    s.charCodeAt(23) !== 90 // Z
  ) {
    return Number.NaN;
  }
  const year = twoDigits(s, 0) * 100 + twoDigits(s, 2);
  const month = twoDigits(s, 5);
  const day = twoDigits(s, 8);
  const hour = twoDigits(s, 11);
  const minute = twoDigits(s, 14);
  const second = twoDigits(s, 17);
  const centis = twoDigits(s, 20);
  const lastDigit = s.charCodeAt(22) - 48;
  // Every comparison with NaN is false, so a non-digit anywhere lands here.
  if (
    !(year >= 100 && month >= 1 && month <= 12 && day >= 1 && hour <= 23 && minute <= 59 && second <= 59) ||
    !(centis >= 0 && lastDigit >= 0 && lastDigit <= 9)
  ) {
    return Number.NaN;
  }
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > monthDays[month - 1]! + (month === 2 && leap ? 1 : 0)) return Number.NaN;
  // Date.UTC reads years below 100 as 19xx: they were excluded above.
  return Date.UTC(year, month - 1, day, hour, minute, second, centis * 10 + lastDigit);
};

/**
 * Effect's DateFromString (under Schema.Date) with a shortcut for the usual input, an
 * ISO string as `toISOString` writes it: V8's string parsing and formatting are most of
 * the cost of a record, while the time can be read directly and the string is already
 * its own encoded form. Other strings take the transformation's own functions.
 */
const dateFromString = (node: Node): Node => ({
  ...node,
  both: (u, slot) => {
    if (typeof u === "string") {
      const time = isoTime(u);
      if (!Number.isNaN(time)) {
        slot.type = new Date(time);
        slot.encoded = u;
        return true;
      }
    }
    return node.both(u, slot);
  },
});

interface Field {
  readonly name: PropertyKey;
  readonly isOptional: boolean;
  readonly node: Node;
  readonly test: ((u: unknown) => boolean) | undefined;
}

/**
 * A struct. Output keys are the schema's, in its order; excess input keys are dropped.
 * A missing optional key stays missing; a missing required key is parsed as
 * `undefined` (Effect's `exact: false`), so it passes only where `undefined` does.
 * The decoded object has exactly the keys the encoder will look at, so the encoded
 * form is built field by field in the same walk.
 */
const typeLiteral = (ast: AST.TypeLiteral): Node | undefined => {
  // Index signatures (Schema.Record) have their own key rules: not compiled.
  if (ast.indexSignatures.length > 0) return undefined;
  // An empty struct accepts any non-nullish value and returns it as is.
  if (ast.propertySignatures.length === 0) return checked((u) => u !== null && u !== undefined);
  const fields: Array<Field> = [];
  for (const ps of ast.propertySignatures) {
    // Assigning `__proto__` on the output would set its prototype, not a key.
    if (ps.name === "__proto__") return undefined;
    const node = compile(ps.type);
    if (node === undefined) return undefined;
    fields.push({ name: ps.name, isOptional: ps.isOptional, node, test: node.test });
  }
  const isRecord = (u: unknown): u is Record<PropertyKey, unknown> =>
    typeof u === "object" && u !== null && !Array.isArray(u);
  const oneSide =
    (side: "decode" | "encode") =>
    (input: unknown): unknown => {
      if (!isRecord(input)) return Fail;
      const output: Record<PropertyKey, unknown> = {};
      for (const field of fields) {
        if (field.isOptional && !Object.hasOwn(input, field.name)) continue;
        const value = field.node[side](input[field.name]);
        if (value === Fail) return Fail;
        output[field.name] = value;
      }
      return output;
    };
  let both: Node["both"];
  try {
    both = structBoth(fields);
  } catch {
    // Code generation disabled (--disallow-code-generation-from-strings): leave it to Effect.
    return undefined;
  }
  return { test: undefined, decode: oneSide("decode"), encode: oneSide("encode"), both };
};

/**
 * A struct's `both` as generated code: one straight-line function per struct, with a
 * constant key at every property access and the outputs built as object literals (the
 * fields up to the first optional one) then named stores. A generic loop over the
 * fields makes every access and call site megamorphic, and costs ~15x more than this;
 * on a record of a dozen plain fields that loop was most of the remaining time.
 *
 * Only string keys (as JSON string literals) and parameter names reach the source;
 * symbol keys and the fields' functions are passed in as arguments.
 */
const structBoth = (fields: ReadonlyArray<Field>): Node["both"] => {
  const names: Array<string> = ["hasOwn", "isArray"];
  const values: Array<unknown> = [Object.hasOwn, Array.isArray];
  const body: Array<string> = [`if (typeof input !== "object" || input === null || isArray(input)) return false;`];
  const typeLiteral: Array<string> = [];
  const encodedLiteral: Array<string> = [];
  const stores: Array<string> = [];
  fields.forEach((field, i) => {
    let key: string;
    let literalKey: string;
    if (typeof field.name === "string") {
      key = JSON.stringify(field.name);
      literalKey = key;
    } else {
      key = `k${i}`;
      literalKey = `[${key}]`;
      names.push(key);
      values.push(field.name);
    }
    const type = `t${i}`;
    let encoded = type;
    let parse: string;
    if (field.test !== undefined) {
      names.push(`test${i}`);
      values.push(field.test);
      parse = `${type} = input[${key}]; if (!test${i}(${type})) return false;`;
    } else {
      encoded = `e${i}`;
      names.push(`both${i}`);
      values.push(field.node.both);
      parse = `if (!both${i}(input[${key}], slot)) return false; ${type} = slot.type; ${encoded} = slot.encoded;`;
    }
    body.push(encoded === type ? `let ${type};` : `let ${type}, ${encoded};`);
    if (field.isOptional) {
      body.push(`const has${i} = hasOwn(input, ${key}); if (has${i}) { ${parse} }`);
      stores.push(`if (has${i}) { type[${key}] = ${type}; encoded[${key}] = ${encoded}; }`);
    } else if (stores.length === 0) {
      body.push(parse);
      typeLiteral.push(`${literalKey}: ${type}`);
      encodedLiteral.push(`${literalKey}: ${encoded}`);
    } else {
      body.push(parse);
      stores.push(`type[${key}] = ${type}; encoded[${key}] = ${encoded};`);
    }
  });
  body.push(
    `const type = { ${typeLiteral.join(", ")} };`,
    `const encoded = { ${encodedLiteral.join(", ")} };`,
    ...stores,
    "slot.type = type;",
    "slot.encoded = encoded;",
    "return true;",
  );
  const source = `"use strict";\nreturn function structBoth(input, slot) {\n${body.join("\n")}\n};`;
  return new Function(...names, source)(...values) as Node["both"];
};

/**
 * Tuples and arrays: leading elements (required ones first), then at most one rest
 * element and nothing after it. Too few elements, or extra ones without a rest, fail.
 */
const tupleType = (ast: AST.TupleType): Node | undefined => {
  if (ast.rest.length > 1) return undefined;
  const elements: Array<Node> = [];
  let required = 0;
  for (const element of ast.elements) {
    // A required element after an optional one is skipped silently by Effect when absent: not compiled.
    if (!element.isOptional && required < elements.length) return undefined;
    const node = compile(element.type);
    if (node === undefined) return undefined;
    if (!element.isOptional) required++;
    elements.push(node);
  }
  const restAst = ast.rest[0];
  const rest = restAst === undefined ? undefined : compile(restAst.type);
  if (restAst !== undefined && rest === undefined) return undefined;
  const fits = (input: unknown): input is ReadonlyArray<unknown> =>
    Array.isArray(input) && input.length >= required && (rest !== undefined || input.length <= elements.length);
  const oneSide =
    (side: "decode" | "encode") =>
    (input: unknown): unknown => {
      if (!fits(input)) return Fail;
      const output: Array<unknown> = [];
      for (let i = 0; i < input.length; i++) {
        const value = (elements[i] ?? rest)![side](input[i]);
        if (value === Fail) return Fail;
        output.push(value);
      }
      return output;
    };
  return {
    test: undefined,
    decode: oneSide("decode"),
    encode: oneSide("encode"),
    both: (input, slot) => {
      if (!fits(input)) return false;
      const type: Array<unknown> = [];
      const encoded: Array<unknown> = [];
      for (let i = 0; i < input.length; i++) {
        if (!(elements[i] ?? rest)!.both(input[i], slot)) return false;
        type.push(slot.type);
        encoded.push(slot.encoded);
      }
      slot.type = type;
      slot.encoded = encoded;
      return true;
    },
  };
};

/**
 * A union tries its members in order; the first that succeeds wins. Encoding the
 * decoded value starts over from the first member (as Effect does), which need not
 * be the member that decoded it: `Union(NumberFromString, Number)` decodes `1` with
 * `Number` and encodes it with `NumberFromString`.
 */
const union = (ast: AST.Union): Node | undefined => {
  if (ast.types.some((member) => hasLiteralKeys(member, true) || hasLiteralKeys(member, false))) return undefined;
  const members: Array<Node> = [];
  for (const member of ast.types) {
    const node = compile(member);
    if (node === undefined) return undefined;
    members.push(node);
  }
  const tests = members.flatMap((m) => (m.test === undefined ? [] : [m.test]));
  // All members return their input unchanged: the union is just "any member's check passes".
  if (tests.length === members.length) {
    const [first, second] = tests;
    // NullOr(X), the common case, as one expression.
    if (tests.length === 2) return checked((u) => first!(u) || second!(u));
    return checked((u) => {
      for (const test of tests) if (test(u)) return true;
      return false;
    });
  }
  const decoders = members.map((m) => m.decode);
  const encoders = members.map((m) => m.encode);
  const boths = members.map((m) => m.both);
  const firstSuccess = (steps: ReadonlyArray<(u: unknown) => unknown>) => (u: unknown) => {
    for (const step of steps) {
      const result = step(u);
      if (result !== Fail) return result;
    }
    return Fail;
  };
  const node = sequential(firstSuccess(decoders), firstSuccess(encoders));
  return {
    ...node,
    // Through the members' own `both`, so that NullOr(Schema.Date) keeps the date shortcut.
    both: (u, slot) => {
      for (let k = 0; k < members.length; k++) {
        if (boths[k]!(u, slot)) {
          // Member k decoded it and encoded it; an earlier member that encodes the value wins.
          for (let j = 0; j < k; j++) {
            const encoded = encoders[j]!(slot.type);
            if (encoded !== Fail) {
              slot.encoded = encoded;
              return true;
            }
          }
          return true;
        }
        // Only a decoding failure moves on to the next member: if member k decoded the input
        // but could not encode it, Effect still picks k, and the encoding starts over.
        if (members[k]!.test === undefined && decoders[k]!(u) !== Fail) return node.both(u, slot);
      }
      return false;
    },
  };
};

/**
 * Compiles a record schema into a {@link RecordCodec}, or returns `undefined` when the
 * schema uses something not compiled here (index signatures, discriminated unions,
 * recursive schemas, property renames/defaults, classes, parse-option annotations...);
 * the caller then keeps using Effect Schema.
 *
 * The codec assumes what Effect Schema's own users do: filters and declaration
 * predicates are deterministic. Filters and transformations receive the default parse
 * options (`{}`), as with `Schema.decodeUnknownEither(schema)(raw)`.
 *
 * @example
 * const codec = compileRecordCodec(Contact);
 * const fast = codec?.(raw); // { type, encoded } or undefined: then decode with Effect Schema
 */
export const compileRecordCodec = (schema: Schema.Schema.AnyNoContext): RecordCodec | undefined => {
  let root: Node | undefined;
  try {
    root = compile(schema.ast);
  } catch {
    return undefined;
  }
  if (root === undefined) return undefined;
  const both = root.both;
  return (raw) => {
    const slot: Slot = { type: undefined, encoded: undefined };
    try {
      return both(raw, slot) ? slot : undefined;
    } catch {
      // Undecided, or connector-supplied code that threw: Effect Schema settles it (and throws the same).
      return undefined;
    }
  };
};
