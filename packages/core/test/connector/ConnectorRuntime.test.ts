import { expect, layer } from "@effect/vitest";
import { defineConnector, defineEntity, EntitySync, RateLimited, RecordStore } from "@tandem/core";
import { createTestConnection, dialects, testEngineLayer } from "@tandem/testkit";
import { Cause, Effect, Exit, Fiber, Schema, Stream, TestClock, TestServices } from "effect";

/*
 * Both authoring styles, and what a failure inside connector code becomes.
 * These connectors read from memory: no HTTP, so no MSW needed.
 */

const Item = Schema.Struct({ id: Schema.String, n: Schema.Number, at: Schema.Date });
const Failure = Schema.Literal("none", "rate", "type", "plain", "hang", "garbage", "tombstones");
const Config = Schema.Struct({ failure: Failure });

const page1 = [
  { id: "a", n: 1, at: "2026-01-01T00:00:00.000Z" },
  { id: "b", n: 2, at: "2026-01-01T00:00:01.000Z" },
];
const page2 = [{ id: "c", n: 3, at: "2026-01-01T00:00:02.000Z" }];

const thrown = (failure: typeof Failure.Type) =>
  failure === "rate"
    ? new RateLimited({ retryAfterMs: 1_234 })
    : failure === "type"
      ? new TypeError("cannot read properties of undefined")
      : new Error("socket hang up");

const asyncStyle = defineConnector({
  name: "memory-async",
  version: "1.0.0",
  config: Config,
  entities: {
    items: defineEntity<typeof Item.Type, typeof Config.Type>({
      record: Item,
      primaryKey: (i) => i.id,
      updatedAt: (i) => i.at,
      read: async function* (ctx) {
        if (ctx.config.failure === "tombstones") {
          yield { records: page1, cursor: "p1" };
          // `b` is deleted at the vendor; `c` appears and is deleted within the run; `zz` was never stored.
          yield { records: page2, cursor: "p2", deleted: ["b", "zz"] };
          yield { records: [], deleted: ["c"] };
          return;
        }
        if (ctx.config.failure === "garbage") {
          yield { records: [{ id: "1" }, { id: "2" }, { id: "3" }, { id: "4" }, { id: "5" }, ...page2] };
          return;
        }
        yield { records: page1, cursor: "p1" };
        // A connector stuck on something that never answers (no timeout of its own).
        if (ctx.config.failure === "hang") await new Promise(() => {});
        if (ctx.config.failure !== "none") throw thrown(ctx.config.failure);
        yield { records: page2 };
      },
      get: async (ctx, id) => {
        if (ctx.config.failure !== "none") throw thrown(ctx.config.failure);
        return (page1.find((i) => i.id === id) ?? null) as never;
      },
    }),
  },
});

const effectStyle = defineConnector({
  name: "memory-effect",
  version: "1.0.0",
  config: Config,
  entities: {
    items: defineEntity<typeof Item.Type, typeof Config.Type>({
      record: Item,
      primaryKey: (i) => i.id,
      updatedAt: (i) => i.at,
      read: (ctx) =>
        Stream.concat(
          Stream.make({ records: page1, cursor: "p1" }),
          ctx.config.failure === "none"
            ? Stream.make({ records: page2 })
            : ctx.config.failure === "type"
              ? Stream.die(thrown("type"))
              : Stream.fail(new RateLimited({ retryAfterMs: 1_234 })),
        ),
      get: (ctx, id) =>
        ctx.config.failure === "none"
          ? Effect.succeed((page1.find((i) => i.id === id) ?? null) as never)
          : Effect.fail(new RateLimited({ retryAfterMs: 1_234 })),
    }),
  },
});

for (const dialect of dialects) {
  layer(testEngineLayer({ dialect, connectors: [asyncStyle, effectStyle] }), { timeout: 60_000 })(
    `Connector authoring styles on ${dialect}`,
    (it) => {
      const target = (connector: string, failure: typeof Failure.Type) =>
        Effect.map(createTestConnection(connector, { failure }), (ids) => ({ ...ids, entity: "items" }));

      for (const connector of ["memory-async", "memory-effect"]) {
        it.effect(`${connector}: reads every page and gets by id`, () =>
          Effect.gen(function* () {
            const engine = yield* EntitySync;
            const t = yield* target(connector, "none");
            const result = yield* engine.run({ ...t, mode: "full" });
            expect(result).toMatchObject({ created: 3, errors: [], pages: 2 });
            expect(yield* engine.syncRecord(t, { externalId: "b" })).toEqual({ action: "unchanged", externalId: "b" });
          }),
        );

        it.effect(`${connector}: a RateLimited failure keeps its tag, and stored pages stay stored`, () =>
          Effect.gen(function* () {
            const engine = yield* EntitySync;
            const store = yield* RecordStore;
            const t = yield* target(connector, "rate");
            const error = yield* engine.run({ ...t, mode: "full", options: { batchSize: 1 } }).pipe(Effect.flip);
            expect(error).toBeInstanceOf(RateLimited);
            expect(error).toMatchObject({ _tag: "RateLimited", retryAfterMs: 1_234 });
            expect(yield* store.count(t)).toBe(2);
            expect((yield* store.cursor(t))?.checkpoints.full).toMatchObject({ cursor: "p1", pages: 1 });
            const single = yield* engine.syncRecord(t, { externalId: "a" }).pipe(Effect.flip);
            expect(single._tag).toBe("RateLimited");
          }),
        );

        it.effect(`${connector}: a TypeError in connector code is a defect, not a retryable failure`, () =>
          Effect.gen(function* () {
            const engine = yield* EntitySync;
            const t = yield* target(connector, "type");
            const exit = yield* engine.run({ ...t, mode: "full" }).pipe(Effect.exit);
            expect(Exit.isFailure(exit)).toBe(true);
            if (Exit.isFailure(exit)) {
              expect(Cause.isDie(exit.cause)).toBe(true);
              expect(String(Cause.squash(exit.cause))).toContain("cannot read properties");
            }
          }),
        );
      }

      it.effect("memory-async: a read that stops producing pages times out as Unavailable", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const store = yield* RecordStore;
          const t = yield* target("memory-async", "hang");
          const run = yield* Effect.fork(engine.run({ ...t, mode: "full", options: { batchSize: 1 } }));
          yield* TestServices.provideLive(Effect.sleep("100 millis"));
          yield* TestClock.adjust("5 minutes");
          const error = yield* Fiber.join(run).pipe(Effect.flip);
          expect(error).toMatchObject({ _tag: "Unavailable", message: "memory-async/items: no page within 300000 ms" });
          expect(yield* store.count(t)).toBe(2);
        }),
      );

      it.effect('deletes: "api": ids a page lists as deleted are soft-deleted', () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const store = yield* RecordStore;
          const t = yield* target("memory-async", "tombstones");
          // Batches of 2: a and b are stored, then b is deleted and c stored, then c deleted.
          const result = yield* engine.run({ ...t, mode: "full", options: { batchSize: 2 } });
          expect(result).toMatchObject({ created: 3, deleted: 2, errors: [] });
          expect(yield* store.count(t)).toBe(1);
          const b = yield* store.get(t, "b");
          expect(b._tag === "Some" && b.value.deletedAt !== null).toBe(true);

          // One batch: deletions drop the buffered records, which are never written.
          const t2 = yield* target("memory-async", "tombstones");
          const batched = yield* engine.run({ ...t2, mode: "full", options: { batchSize: 100 } });
          expect(batched).toMatchObject({ created: 1, deleted: 0, errors: [] });
          expect((yield* store.get(t2, "c"))._tag).toBe("None");
        }),
      );

      it.effect("item errors are capped, with the rest counted", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const t = yield* target("memory-async", "garbage");
          const result = yield* engine.run({ ...t, mode: "full", options: { maxItemErrors: 2 } });
          expect(result.created).toBe(1);
          expect(result.errors.map((e) => e.externalId)).toEqual(["1", "2", "*"]);
          expect(result.errors[2]).toEqual({
            externalId: "*",
            type: "ErrorsOmitted",
            message: "3 more item errors not listed",
          });
        }),
      );

      it.effect("memory-async: any other throw is Unavailable (transient), naming what was thrown", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const t = yield* target("memory-async", "plain");
          const error = yield* engine.run({ ...t, mode: "full" }).pipe(Effect.flip);
          expect(error).toMatchObject({ _tag: "Unavailable", message: "connector threw: socket hang up" });
        }),
      );
    },
  );
}
