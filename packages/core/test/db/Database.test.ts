import { describe, expect, it, layer } from "@effect/vitest";
import { ConstraintViolation, Database } from "@tandem/core";
import { dialects, testDatabaseLayer } from "@tandem/testkit";
import { Deferred, Effect, Exit, Fiber } from "effect";
import { sql } from "kysely";
import { preparedAs } from "../../src/db/PreparedStatements.ts";

/** Wall-clock sleep (it.effect runs on TestClock, which never advances by itself). */
const realSleep = (ms: number) => Effect.promise(() => new Promise((r) => setTimeout(r, ms)));

for (const dialect of dialects) {
  layer(testDatabaseLayer(dialect))(`Database on ${dialect}`, (it) => {
    it.effect("applies migrations on start and reports ready", () =>
      Effect.gen(function* () {
        const db = yield* Database;
        expect(db.dialect).toBe(dialect);
        const ready = yield* db.ready;
        expect(ready).toEqual({ ok: true, detail: "database reachable, migrations applied" });
        const tables = yield* db.query((k) => k.introspection.getTables());
        expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(["tenants", "api_keys", "connections"]));
      }),
    );

    it.effect("maps a unique violation to a typed ConstraintViolation", () =>
      Effect.gen(function* () {
        const db = yield* Database;
        const id = crypto.randomUUID();
        yield* db.query((k) => k.insertInto("tenants").values({ id, name: "a" }).execute());
        const error = yield* db
          .query((k) => k.insertInto("tenants").values({ id, name: "b" }).execute())
          .pipe(Effect.flip);
        expect(error).toBeInstanceOf(ConstraintViolation);
        expect(error.kind).toBe("unique");
        expect(error.constraint).toBe("tenants_pkey");
      }),
    );

    it.effect("commits a transaction that succeeds", () =>
      Effect.gen(function* () {
        const db = yield* Database;
        const id = crypto.randomUUID();
        yield* db.transaction(db.query((k) => k.insertInto("tenants").values({ id, name: "committed" }).execute()));
        const row = yield* db.query((k) =>
          k.selectFrom("tenants").select("name").where("id", "=", id).executeTakeFirst(),
        );
        expect(row?.name).toBe("committed");
      }),
    );

    it.effect("rolls back every statement of a transaction that fails, nested calls included", () =>
      Effect.gen(function* () {
        const db = yield* Database;
        const a = crypto.randomUUID();
        const b = crypto.randomUUID();
        const exit = yield* db
          .transaction(
            Effect.gen(function* () {
              yield* db.query((k) => k.insertInto("tenants").values({ id: a, name: "outer" }).execute());
              yield* db.transaction(
                db.query((k) => k.insertInto("tenants").values({ id: b, name: "inner" }).execute()),
              );
              return yield* Effect.fail("boom" as const);
            }),
          )
          .pipe(Effect.exit);
        expect(Exit.isFailure(exit)).toBe(true);
        const rows = yield* db.query((k) => k.selectFrom("tenants").select("id").where("id", "in", [a, b]).execute());
        expect(rows).toEqual([]);
      }),
    );

    it.effect("isolates a transaction from concurrent statements until it commits", () =>
      Effect.gen(function* () {
        const db = yield* Database;
        const id = crypto.randomUUID();
        const inserted = yield* Deferred.make<void>();
        const release = yield* Deferred.make<void>();
        // The transaction stays open until the test releases it: no timing decides what is seen.
        const fiber = yield* db
          .transaction(
            Effect.gen(function* () {
              yield* db.query((k) => k.insertInto("tenants").values({ id, name: "slow" }).execute());
              yield* Deferred.succeed(inserted, undefined);
              yield* Deferred.await(release);
            }),
          )
          .pipe(Effect.fork);
        yield* Deferred.await(inserted);
        const read = db.query((k) => k.selectFrom("tenants").select("id").where("id", "=", id).execute());
        // On Postgres the read runs on another connection while the transaction is open, and
        // cannot see its uncommitted row. On PGlite (one connection) it queues behind the
        // transaction, and sees the row once it commits.
        const reading = yield* Effect.fork(read);
        if (dialect === "pglite") yield* realSleep(20);
        else yield* Fiber.await(reading);
        yield* Deferred.succeed(release, undefined);
        const during = yield* Fiber.join(reading);
        yield* Fiber.join(fiber);
        const after = yield* read;
        expect(during.length).toBe(dialect === "pglite" ? 1 : 0);
        expect(after.length).toBe(1);
      }),
    );

    it.effect("an infrastructure failure is a defect, not a typed error", () =>
      Effect.gen(function* () {
        const db = yield* Database;
        const exit = yield* db.query((k) => sql`select * from no_such_table`.execute(k)).pipe(Effect.exit);
        expect(Exit.isFailure(exit) && exit.cause._tag).toBe("Die");
      }),
    );

    it.effect(
      "a statement marked preparedAs runs with new parameters each time; on PostgreSQL as a named statement",
      () =>
        Effect.gen(function* () {
          const db = yield* Database;
          const next = (n: number) =>
            db
              .query((k) =>
                sql<{ n: number }>`${preparedAs("database_test_next")} select ${n}::int + 1 as n`.execute(k),
              )
              .pipe(Effect.map((r) => r.rows[0]!.n));
          // One connection throughout (a transaction's), whose prepared statements PostgreSQL lists.
          const [sums, prepared] = yield* db.transaction(
            Effect.gen(function* () {
              const sums = [yield* next(1), yield* next(41)];
              const prepared = yield* db.query((k) =>
                sql<{
                  name: string;
                }>`select name from pg_prepared_statements where name = 'database_test_next'`.execute(k),
              );
              return [sums, prepared.rows.map((r) => r.name)] as const;
            }),
          );
          expect(sums).toEqual([2, 42]);
          // PGlite, in the process, has no pool to keep statements on: the marker is only a comment there.
          expect(prepared).toEqual(dialect === "postgres" ? ["database_test_next"] : []);
          expect(() => preparedAs("Not a name")).toThrow(/snake_case/);
        }),
    );
  });
}

describe("Database startup", () => {
  it.effect("fails fast with one clear line when the server is unreachable", () =>
    Effect.gen(function* () {
      const error = yield* Effect.scoped(
        Database.layer({ kind: "postgres", url: "postgres://nobody@127.0.0.1:1/none" }).pipe(
          (l) => Effect.provide(Database, l),
          Effect.flip,
        ),
      );
      expect(error._tag).toBe("DatabaseStartupError");
      expect(error.message).toMatch(/^cannot reach database at 127\.0\.0\.1:1\/none: .*ECONNREFUSED/);
      expect(error.message).not.toContain("\n");
    }),
  );

  it.effect("rejects a malformed DATABASE_URL", () =>
    Effect.gen(function* () {
      const error = yield* Effect.provide(Database, Database.layer({ kind: "postgres", url: "mysql://x@y/z" })).pipe(
        Effect.flip,
      );
      expect(error.message).toBe("DATABASE_URL must start with postgres:// (got mysql://)");
    }),
  );
});
