import { expect, layer } from "@effect/vitest";
import { Connections, Database, RecordStore } from "@tandem/core";
import { acmeConnector, createTestConnection, dialects, testEngineLayer } from "@tandem/testkit";
import { Chunk, Effect, Exit, Option, Stream, TestClock } from "effect";
import { sql } from "kysely";

const scopeOf = Effect.map(
  createTestConnection("acme-crm", { baseUrl: "https://acme.test/api", token: "t" }),
  (ids) => ({ ...ids, entity: "contacts" }),
);

const rec = (id: string, name: string, at: string) => ({
  externalId: id,
  data: { id, name },
  remoteUpdatedAt: new Date(at),
});

for (const dialect of dialects) {
  layer(testEngineLayer({ dialect, connectors: [acmeConnector] }), { timeout: 60_000 })(
    `RecordStore on ${dialect}`,
    (it) => {
      it.effect("compares data as values: key order does not matter, types do", () =>
        Effect.gen(function* () {
          const store = yield* RecordStore;
          const scope = yield* scopeOf;
          const at = (day: number) => new Date(Date.UTC(2026, 0, day));
          const upsert = (data: Record<string, unknown>, day: number) =>
            store.upsert(scope, [{ externalId: "1", data, remoteUpdatedAt: at(day) }]);
          expect((yield* upsert({ id: "1", a: 1, b: { c: [1, 2], d: "x" } }, 1)).created).toEqual(["1"]);
          const first = Option.getOrThrow(yield* store.get(scope, "1"));
          // The same data serialized in another key order, at every depth: unchanged, not rewritten.
          expect((yield* upsert({ b: { d: "x", c: [1, 2] }, a: 1, id: "1" }, 2)).unchanged).toBe(1);
          const same = Option.getOrThrow(yield* store.get(scope, "1"));
          expect([same.version, same.changeSeq]).toEqual([first.version, first.changeSeq]);
          // A value of another type, or another order in an array: changed.
          expect((yield* upsert({ id: "1", a: "1", b: { c: [1, 2], d: "x" } }, 3)).updated).toEqual(["1"]);
          expect((yield* upsert({ id: "1", a: "1", b: { c: [2, 1], d: "x" } }, 4)).updated).toEqual(["1"]);
          expect(Option.getOrThrow(yield* store.get(scope, "1")).version).toBe(first.version + 2);
        }),
      );

      it.effect("stores base only while it differs from data, and records go with their connection", () =>
        Effect.gen(function* () {
          const store = yield* RecordStore;
          const db = yield* Database;
          const scope = yield* scopeOf;
          yield* store.upsert(scope, [rec("1", "a", "2026-01-01T00:00:00Z"), rec("2", "b", "2026-01-01T00:00:00Z")]);
          const rawBase = (id: string) =>
            db
              .query((k) =>
                sql<{ base: unknown }>`select base from records
                where connection_id = ${scope.connectionId}::uuid and external_id = ${id}`.execute(k),
              )
              .pipe(Effect.map((r) => r.rows[0]?.base ?? null));
          // Synced: base is the data itself, not a second copy of it.
          expect(yield* rawBase("1")).toBeNull();
          expect(Option.getOrThrow(yield* store.get(scope, "1")).base).toEqual({ id: "1", name: "a" });
          // A local edit keeps what both sides agreed on as base.
          yield* store.applyLocalChange(scope, "1", { name: "local" });
          expect(Option.getOrThrow(yield* store.get(scope, "1"))).toMatchObject({
            data: { id: "1", name: "local" },
            base: { id: "1", name: "a" },
          });
          yield* store.applyLocalChange(scope, "1", { name: "again" });
          expect(Option.getOrThrow(yield* store.get(scope, "1")).base).toEqual({ id: "1", name: "a" });

          // Deleting the connection deletes its records; a batch for it afterwards stores nothing
          // and fails loudly (a sync cannot outlive its connection unnoticed).
          yield* (yield* Connections).delete(scope.tenantId, scope.connectionId);
          expect(yield* store.count(scope)).toBe(0);
          const late = yield* Effect.exit(store.upsert(scope, [rec("3", "c", "2026-01-01T00:00:00Z")]));
          expect(Exit.isFailure(late) && String(late.cause)).toContain("does not exist");
          const left = yield* db.query((k) =>
            sql<{
              n: number;
            }>`select count(*)::int as n from records where connection_id = ${scope.connectionId}::uuid`.execute(k),
          );
          expect(left.rows[0]!.n).toBe(0);
        }),
      );

      it.effect("upsert: created, updated, unchanged; older data never replaces newer", () =>
        Effect.gen(function* () {
          const store = yield* RecordStore;
          const scope = yield* scopeOf;
          const first = yield* store.upsert(scope, [
            rec("1", "a", "2026-01-01T00:00:00Z"),
            rec("2", "b", "2026-01-01T00:00:00Z"),
          ]);
          expect(first).toEqual({ created: ["1", "2"], updated: [], unchanged: 0, heldBack: [] });
          const second = yield* store.upsert(scope, [
            rec("1", "a", "2026-01-01T00:00:00Z"),
            rec("2", "b2", "2026-01-02T00:00:00Z"),
            rec("3", "c", "2026-01-01T00:00:00Z"),
          ]);
          expect(second).toEqual({ created: ["3"], updated: ["2"], unchanged: 1, heldBack: [] });
          const stale = yield* store.upsert(scope, [rec("2", "b-old", "2026-01-01T12:00:00Z")]);
          expect(stale).toEqual({ created: [], updated: [], unchanged: 1, heldBack: [] });
          const two = Option.getOrThrow(yield* store.get(scope, "2"));
          expect(two).toMatchObject({ data: { name: "b2" }, version: 2, base: { id: "2", name: "b2" } });
        }),
      );

      it.effect("soft delete, restore, and the guard against old delete events", () =>
        Effect.gen(function* () {
          const store = yield* RecordStore;
          const scope = yield* scopeOf;
          yield* store.upsert(scope, [rec("1", "a", "2026-01-05T00:00:00Z"), rec("2", "b", "2026-01-05T00:00:00Z")]);
          expect(yield* store.softDelete(scope, ["1"], { notNewerThan: new Date("2026-01-04T00:00:00Z") })).toEqual([]);
          expect(yield* store.softDelete(scope, ["1", "404"])).toEqual(["1"]);
          expect(yield* store.count(scope)).toBe(1);
          // The same content coming back restores the record.
          expect(yield* store.upsert(scope, [rec("1", "a", "2026-01-05T00:00:00Z")])).toMatchObject({ updated: ["1"] });
          expect(Option.getOrThrow(yield* store.get(scope, "1")).deletedAt).toBeNull();
        }),
      );

      it.effect("the change feed pages in order and includes deletions", () =>
        Effect.gen(function* () {
          const store = yield* RecordStore;
          const scope = yield* scopeOf;
          yield* store.upsert(
            scope,
            Array.from({ length: 5 }, (_, i) => rec(`r${i}`, "x", "2026-01-01T00:00:00Z")),
          );
          const page1 = yield* store.changes(scope, { limit: 3 });
          expect(page1.records.map((r) => r.externalId)).toHaveLength(3);
          expect(page1.hasMore).toBe(true);
          const page2 = yield* store.changes(scope, { after: page1.cursor, limit: 3 });
          expect(page2.hasMore).toBe(false);
          expect([...page1.records, ...page2.records].map((r) => r.externalId).sort()).toEqual([
            "r0",
            "r1",
            "r2",
            "r3",
            "r4",
          ]);
          yield* store.softDelete(scope, ["r2"]);
          const page3 = yield* store.changes(scope, { after: page2.cursor });
          expect(page3.records.map((r) => [r.externalId, r.deletedAt !== null])).toEqual([["r2", true]]);
          const empty = yield* store.changes(scope, { after: page3.cursor });
          expect(empty).toEqual({ records: [], cursor: page3.cursor, hasMore: false });
        }),
      );

      it.effect("the change feed filters by modification time (engine Clock) and can leave deletions out", () =>
        Effect.gen(function* () {
          const store = yield* RecordStore;
          const scope = yield* scopeOf;
          yield* TestClock.setTime(Date.parse("2026-06-01T00:00:00Z"));
          yield* store.upsert(scope, [
            rec("old", "x", "2026-01-01T00:00:00Z"),
            rec("gone", "x", "2026-01-01T00:00:00Z"),
          ]);
          yield* TestClock.adjust("1 hour");
          yield* store.upsert(scope, [rec("new", "x", "2026-01-01T00:00:00Z")]);
          yield* store.softDelete(scope, ["gone"]);
          const since = new Date("2026-06-01T00:30:00Z");
          const modified = yield* store.changes(scope, { modifiedAfter: since });
          expect(modified.records.map((r) => r.externalId)).toEqual(["new", "gone"]);
          expect(modified.records[0]!.changedAt.toISOString()).toBe("2026-06-01T01:00:00.000Z");
          const liveOnly = yield* store.changes(scope, { modifiedAfter: since, includeDeleted: false });
          expect(liveOnly.records.map((r) => r.externalId)).toEqual(["new"]);
        }),
      );

      it.effect("summarizes an entity's records by state", () =>
        Effect.gen(function* () {
          const store = yield* RecordStore;
          const scope = yield* scopeOf;
          yield* TestClock.setTime(Date.parse("2026-06-02T00:00:00Z"));
          yield* store.upsert(
            scope,
            ["1", "2", "3", "4"].map((id) => rec(id, "x", "2026-01-01T00:00:00Z")),
          );
          yield* store.softDelete(scope, ["4"]);
          yield* store.applyLocalChange(scope, "1", { name: "p" });
          yield* store.applyLocalChange(scope, "2", { name: "f" });
          yield* store.markPushFailed(scope, "2", 2, { permanent: true, message: "NotFound" });
          expect(yield* store.summary(scope)).toEqual({
            live: 3,
            deleted: 1,
            pending: 1,
            failed: 1,
            conflict: 0,
            lastSyncedAt: new Date("2026-06-02T00:00:00Z"),
          });
        }),
      );

      it.effect("streams every record by id, page by page", () =>
        Effect.gen(function* () {
          const store = yield* RecordStore;
          const scope = yield* scopeOf;
          yield* store.upsert(
            scope,
            Array.from({ length: 7 }, (_, i) => rec(`s${i}`, "x", "2026-01-01T00:00:00Z")),
          );
          yield* store.softDelete(scope, ["s3"]);
          const live = yield* Stream.runCollect(store.stream(scope, { pageSize: 2 }));
          expect(Chunk.toReadonlyArray(live).map((r) => r.externalId)).toEqual(["s0", "s1", "s2", "s4", "s5", "s6"]);
          const all = yield* Stream.runCollect(store.stream(scope, { pageSize: 2, includeDeleted: true }));
          expect(Chunk.size(all)).toBe(7);
        }),
      );

      it.effect(
        "a newer remote version of a pending record is held back with the batch's checkpoint, then settled once",
        () =>
          Effect.gen(function* () {
            const store = yield* RecordStore;
            const scope = yield* scopeOf;
            yield* store.upsert(scope, [rec("1", "a", "2026-01-01T00:00:00Z"), rec("2", "b", "2026-01-01T00:00:00Z")]);
            yield* store.applyLocalChange(scope, "1", { name: "local" });
            const checkpoint = {
              mode: "full" as const,
              value: {
                mode: "full" as const,
                cursor: "page-2",
                since: undefined,
                startedAt: "2026-01-02T00:00:00.000Z",
                maxUpdatedAt: undefined,
                pages: 2,
              },
            };
            // The remote unchanged since the base: nothing to settle, the checkpoint is saved.
            const same = yield* store.upsert(scope, [rec("1", "a", "2026-01-01T00:00:00Z")], { checkpoint });
            expect(same).toEqual({ created: [], updated: [], unchanged: 1, heldBack: [] });
            expect((yield* store.cursor(scope))?.checkpoints.full?.cursor).toBe("page-2");

            const pull = yield* store.upsert(
              scope,
              [rec("1", "remote", "2026-01-02T00:00:00Z"), rec("2", "b2", "2026-01-02T00:00:00Z")],
              { checkpoint: { ...checkpoint, value: { ...checkpoint.value, cursor: "page-3" } } },
            );
            expect(pull).toEqual({ created: [], updated: ["2"], unchanged: 0, heldBack: ["1"] });
            expect((yield* store.cursor(scope))?.checkpoints.full?.cursor).toBe("page-2");

            const held = Option.getOrThrow(yield* store.get(scope, "1"));
            const remote = rec("1", "remote", "2026-01-02T00:00:00Z");
            expect(yield* store.applyPulledSettlement(scope, "1", held.version - 1, { _tag: "Conflict", remote })).toBe(
              false,
            );
            expect(yield* store.applyPulledSettlement(scope, "1", held.version, { _tag: "Conflict", remote })).toBe(
              true,
            );
            expect(Option.getOrThrow(yield* store.get(scope, "1"))).toMatchObject({
              syncStatus: "conflict",
              data: { name: "local" },
              base: { name: "a" },
              remoteUpdatedAt: new Date("2026-01-02T00:00:00Z"),
            });
            // The version already settled is not held again; a newer one is.
            expect((yield* store.upsert(scope, [remote])).heldBack).toEqual([]);
            const newer = rec("1", "remote-2", "2026-01-03T00:00:00Z");
            expect((yield* store.upsert(scope, [newer])).heldBack).toEqual(["1"]);
            const conflicted = Option.getOrThrow(yield* store.get(scope, "1"));
            const merged = { id: "1", name: "local", email: "x@y.z" };
            expect(
              yield* store.applyPulledSettlement(scope, "1", conflicted.version, {
                _tag: "Merged",
                data: merged,
                remote: newer,
                pendingChanges: { name: "local", email: "x@y.z" },
              }),
            ).toBe(true);
            expect(Option.getOrThrow(yield* store.get(scope, "1"))).toMatchObject({
              syncStatus: "pending",
              data: merged,
              base: { id: "1", name: "remote-2" },
              pendingChanges: { name: "local", email: "x@y.z" },
            });
          }),
      );

      it.effect("a local change is pending and pulls do not overwrite it", () =>
        Effect.gen(function* () {
          const store = yield* RecordStore;
          const scope = yield* scopeOf;
          yield* store.upsert(scope, [rec("1", "a", "2026-01-01T00:00:00Z")]);
          const changed = Option.getOrThrow(yield* store.applyLocalChange(scope, "1", { name: "local" }));
          expect(changed).toMatchObject({ syncStatus: "pending", pendingChanges: { name: "local" }, version: 2 });
          expect(changed.data).toEqual({ id: "1", name: "local" });
          const pull = yield* store.upsert(scope, [rec("1", "remote", "2026-01-02T00:00:00Z")]);
          expect(pull.updated).toEqual([]);
          expect(Option.getOrThrow(yield* store.get(scope, "1")).data.name).toBe("local");
          expect((yield* store.pending(scope)).map((r) => r.externalId)).toEqual(["1"]);
          // A push acknowledged for an older version does not clear a newer local change.
          yield* store.applyLocalChange(scope, "1", { name: "newer" });
          expect(yield* store.markPushed(scope, "1", 2, rec("1", "local", "2026-01-03T00:00:00Z"))).toBe(false);
          // The newer change stays, rebased on what the push wrote (its next push is conditional on that).
          const rebased = Option.getOrThrow(yield* store.get(scope, "1"));
          expect(rebased).toMatchObject({
            syncStatus: "pending",
            data: { id: "1", name: "newer" },
            base: { id: "1", name: "local" },
            pendingChanges: { name: "newer" },
            remoteUpdatedAt: new Date("2026-01-03T00:00:00Z"),
          });
          expect(yield* store.markPushed(scope, "1", rebased.version, rec("1", "newer", "2026-01-04T00:00:00Z"))).toBe(
            true,
          );
          expect(Option.getOrThrow(yield* store.get(scope, "1"))).toMatchObject({
            syncStatus: "synced",
            pendingChanges: null,
          });
          expect(Option.isNone(yield* store.applyLocalChange(scope, "missing", { name: "x" }))).toBe(true);
        }),
      );
    },
  );
}
