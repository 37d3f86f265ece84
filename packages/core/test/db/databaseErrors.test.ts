import { randomBytes } from "node:crypto";
import { describe, expect, it, layer } from "@effect/vitest";
import { Database, DatabaseRejectedValue, DatabaseUnavailable } from "@tandem/core";
import { dialects, testDatabaseLayer } from "@tandem/testkit";
import { Cause, Chunk, Effect, Exit } from "effect";
import { sql } from "kysely";
import { isConnectionFailure, isRejectedValue } from "../../src/db/databaseErrors.ts";

/** The defect a query died with (these statements fail as defects, never as typed failures). */
const defectOf = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.map(Effect.exit(effect), (exit) => {
    expect(Exit.isFailure(exit)).toBe(true);
    return Exit.isFailure(exit) ? Chunk.unsafeHead(Cause.defects(exit.cause)) : undefined;
  });

describe("database error classes", () => {
  it("a refused value (data exceptions, integrity, program limits) is not a connection failure", () => {
    for (const code of ["22021", "22003", "22008", "22P05", "22P02", "23P01", "54000"]) {
      expect(isRejectedValue({ code }), code).toBe(true);
      expect(isConnectionFailure({ code }), code).toBe(false);
    }
  });

  it("connection loss, shutdown and exhausted resources are not refused values", () => {
    for (const code of ["08006", "08001", "57P01", "57P03", "53300", "53100", "ECONNREFUSED"]) {
      expect(isRejectedValue({ code }), code).toBe(false);
    }
    expect(isRejectedValue(new Error("timeout exceeded when trying to connect"))).toBe(false);
  });
});

for (const dialect of dialects) {
  layer(testDatabaseLayer(dialect))(`values the database refuses, on ${dialect}`, (it) => {
    it.effect("die as DatabaseRejectedValue with their SQLSTATE, not as DatabaseUnavailable", () =>
      Effect.gen(function* () {
        const db = yield* Database;
        const table = `refused_${randomBytes(4).toString("hex")}`;
        yield* db.query((k) => sql`create table ${sql.id(table)} (key text primary key)`.execute(k));
        const refused = [
          ["22021", sql`select ${"a\u0000b"}::text as v`],
          ["22003", sql`select ${"99999999999999999999"}::bigint as v`],
          ["22008", sql`select ${"-29719-04-05T22:13:20.000Z"}::timestamptz as v`],
          // Random text does not compress below the 2,704 bytes a btree index row holds.
          ["54000", sql`insert into ${sql.id(table)} (key) values (${randomBytes(300_000).toString("hex")})`],
        ] as const;
        for (const [code, statement] of refused) {
          const defect = yield* defectOf(db.query((k) => statement.execute(k)));
          expect(defect, code).toBeInstanceOf(DatabaseRejectedValue);
          expect(defect, code).not.toBeInstanceOf(DatabaseUnavailable);
          expect((defect as DatabaseRejectedValue).code.slice(0, 2), code).toBe(code.slice(0, 2));
        }
      }),
    );
  });
}
