import { Cause, Effect, Exit, Schema } from "effect";
import { describe, expect, it } from "vitest";
import {
  Conflict,
  type ConnectorError,
  defineEntity,
  InvalidRecord,
  isVersionConflict,
  RateLimited,
  splitOnRefusal,
  type WriteResult,
  writeFailed,
  writeInChunks,
  written,
} from "../src/index.ts";
import { callBatchWrite, makeStandaloneContext, versionOf } from "../src/runtime.ts";

const ok = (id: string) => written<never>(id);

describe("writeInChunks", () => {
  it("sends at most `size` inputs a chunk, in order, and answers one result per input", async () => {
    const chunks: Array<ReadonlyArray<number>> = [];
    const results = await writeInChunks(
      Array.from({ length: 250 }, (_, i) => i),
      100,
      async (chunk) => {
        chunks.push(chunk);
        return chunk.map((n) => ok(String(n)));
      },
    );
    expect(chunks.map((c) => c.length)).toEqual([100, 100, 50]);
    expect(results.map((r) => r.ok && r.externalId)).toEqual(Array.from({ length: 250 }, (_, i) => String(i)));
  });

  it("after a transient failure, fails the chunk and every chunk after it without sending them; what was written stays written", async () => {
    let sent = 0;
    const limited = new RateLimited({ retryAfterMs: 5_000 });
    const results = await writeInChunks([1, 2, 3, 4, 5], 2, async (chunk) => {
      sent++;
      if (sent === 2) throw limited;
      return chunk.map((n) => ok(String(n)));
    });
    expect(sent).toBe(2);
    expect(results.map((r) => (r.ok ? "ok" : r.error._tag))).toEqual([
      "ok",
      "ok",
      "RateLimited",
      "RateLimited",
      "RateLimited",
    ]);
  });

  it("a chunk answered with transient failures for every input halts the chunks after it too", async () => {
    let sent = 0;
    const results = await writeInChunks([1, 2, 3], 1, async (chunk) => {
      sent++;
      return chunk.map(() => writeFailed(new RateLimited({ retryAfterMs: 1_000 })));
    });
    expect(sent).toBe(1);
    expect(results.map((r) => (r.ok ? "ok" : r.error._tag))).toEqual(["RateLimited", "RateLimited", "RateLimited"]);
  });

  it("after a refusal of one chunk, goes on with the next; a bug is rethrown", async () => {
    const results = await writeInChunks([1, 2, 3], 1, async (chunk) => {
      if (chunk[0] === 2) throw new InvalidRecord({ message: "no" });
      return chunk.map((n) => ok(String(n)));
    });
    expect(results.map((r) => (r.ok ? "ok" : r.error._tag))).toEqual(["ok", "InvalidRecord", "ok"]);
    await expect(
      writeInChunks([1], 1, async () => {
        throw new TypeError("a bug");
      }),
    ).rejects.toThrow(TypeError);
  });
});

describe("splitOnRefusal", () => {
  /** A vendor that refuses a whole request when any input is bad, and writes nothing then. */
  const strictVendor = (bad: ReadonlySet<number>) => {
    const store: Array<number> = [];
    let requests = 0;
    const send = async (inputs: ReadonlyArray<number>) => {
      requests++;
      const culprit = inputs.find((n) => bad.has(n));
      if (culprit !== undefined)
        return { refused: new Conflict({ message: `${culprit} is a duplicate` }) as ConnectorError };
      store.push(...inputs);
      return { results: inputs.map((n): WriteResult<never> => ok(String(n))) };
    };
    return { store, send, requests: () => requests };
  };

  it("halves a refused request until the bad inputs fail alone; every good input is written once", async () => {
    const vendor = strictVendor(new Set([3, 7]));
    const inputs = Array.from({ length: 10 }, (_, i) => i);
    const results = await splitOnRefusal(inputs, vendor.send);
    expect(results.map((r) => r.ok)).toEqual(inputs.map((n) => n !== 3 && n !== 7));
    expect(results[3]).toMatchObject({ ok: false, error: { _tag: "Conflict" } });
    expect([...vendor.store].sort((a, b) => a - b)).toEqual([0, 1, 2, 4, 5, 6, 8, 9]);
    expect(vendor.requests()).toBeLessThanOrEqual(1 + 2 * 2 * Math.ceil(Math.log2(10)));
  });

  it("sets aside the inputs a refusal names and sends the rest at once", async () => {
    const vendor = strictVendor(new Set([42]));
    const inputs = Array.from({ length: 100 }, (_, i) => i);
    const results = await splitOnRefusal(inputs, vendor.send, {
      culprits: async (_, part) => part.flatMap((n, i) => (n === 42 ? [i] : [])),
    });
    expect(vendor.requests()).toBe(2);
    expect(results.filter((r) => !r.ok)).toHaveLength(1);
    expect(results[42]!.ok).toBe(false);
    expect(vendor.store).toHaveLength(99);
  });

  it("a culprit lookup that throws falls back to halving", async () => {
    const vendor = strictVendor(new Set([1]));
    const results = await splitOnRefusal([0, 1, 2, 3], vendor.send, {
      culprits: async () => {
        throw new Error("lookup failed");
      },
    });
    expect(results.map((r) => r.ok)).toEqual([true, false, true, true]);
  });

  it("a transient failure while splitting fails what is left unsent, keeping what was written", async () => {
    let requests = 0;
    const results = await splitOnRefusal([0, 1, 2, 3], async (inputs) => {
      requests++;
      if (requests === 1) return { refused: new Conflict({ message: "one of them" }) };
      if (requests === 2) return { results: inputs.map((n) => ok(String(n))) };
      throw new RateLimited({ retryAfterMs: 1_000 });
    });
    expect(results.map((r) => (r.ok ? "ok" : r.error._tag))).toEqual(["ok", "ok", "RateLimited", "RateLimited"]);
    expect(requests).toBe(3);
  });
});

describe("callBatchWrite", () => {
  const Row = Schema.Struct({ id: Schema.String, name: Schema.String, at: Schema.Date, etag: Schema.String });
  const entityWith = (update: (inputs: ReadonlyArray<unknown>) => Promise<ReadonlyArray<unknown>>) =>
    defineEntity<typeof Row.Type>({
      record: Row,
      primaryKey: (r) => r.id,
      updatedAt: (r) => r.at,
      version: (r) => r.etag,
      read: async function* () {},
      write: { batch: { maxPerRequest: 10, update: (_ctx, inputs) => update(inputs) as never } },
    });
  const ctx = makeStandaloneContext({ name: "test" }, {});

  it("decodes each written record and gives its version; failures pass through", async () => {
    const entity = entityWith(async () => [
      written("a", { id: "a", name: "A", at: "2026-01-01T00:00:00.000Z", etag: 'W/"2"' }),
      writeFailed(new Conflict({ message: "moved", reason: "version" })),
    ]);
    const results = await Effect.runPromise(
      callBatchWrite(entity, ctx, "update", [
        { id: "a", changes: { name: "A" } },
        { id: "b", changes: { name: "B" }, ifVersion: 'W/"1"' },
      ]),
    );
    expect(results[0]).toMatchObject({ ok: true, externalId: "a", version: 'W/"2"', record: { data: { name: "A" } } });
    expect(results[1]).toMatchObject({ ok: false, error: { _tag: "Conflict", reason: "version" } });
    expect(!results[1]!.ok && isVersionConflict(results[1]!.error)).toBe(true);
    expect(isVersionConflict(new Conflict({ message: "email taken", reason: "duplicate" }))).toBe(false);
    expect(versionOf(entity, { id: "a", name: "A", at: new Date(0), etag: "x" })).toBe("x");
  });

  it("a success whose record does not decode stays a success, with the decode error", async () => {
    const entity = entityWith(async () => [written("a", { id: "a", name: 12 })]);
    const [result] = await Effect.runPromise(callBatchWrite(entity, ctx, "update", [{ id: "a", changes: {} }]));
    expect(result).toMatchObject({
      ok: true,
      externalId: "a",
      record: undefined,
      recordError: { _tag: "InvalidRecord" },
    });
  });

  it("results that do not answer the inputs one for one are a defect", async () => {
    const entity = entityWith(async () => [written("a")]);
    const exit = await Effect.runPromiseExit(
      callBatchWrite(entity, ctx, "update", [
        { id: "a", changes: {} },
        { id: "b", changes: {} },
      ]),
    );
    expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true);
  });
});
