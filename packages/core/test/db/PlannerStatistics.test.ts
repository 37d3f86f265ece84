import { expect, layer } from "@effect/vitest";
import { Database, EntitySync, type SyncTarget } from "@tandem/core";
import { acmeConnector, createTestConnection, dialects, testEngineLayer } from "@tandem/testkit";
import { Effect } from "effect";
import { sql } from "kysely";
import { refreshGrownTables } from "../../src/db/PlannerStatistics.ts";

/*
 * A table filled in bulk is analyzed by the engine itself, not left to autovacuum (a minute
 * later, or never: PGlite has none, and it may be off). Before, a record read by its id right
 * after an import was planned on a table the planner took for empty, and scanned the entity's
 * every record through the change feed's index.
 */

const contact = (i: number) => ({
  id: `imp${String(i).padStart(5, "0")}`,
  firstName: `First ${i}`,
  lastName: `Last ${i}`,
  email: `contact${i}@planner.test`,
  lifecycleStage: "customer",
  updatedAt: "2026-02-01T00:00:00.000Z",
});

/** What the planner believes of the records table: its rows (-1: never analyzed). */
const estimatedRecords = Effect.flatMap(Database, (db) =>
  db.query(async (k) => {
    const { rows } = await sql<{ n: number }>`
      select reltuples::float8 as n from pg_class where oid = to_regclass('records')`.execute(k);
    return Number(rows[0]?.n);
  }),
);

/** The plan of a record read by its id (the shape `records.get` and every local edit use). */
const planOfReadById = (target: SyncTarget, externalId: string) =>
  Effect.flatMap(Database, (db) =>
    db.query(async (k) => {
      const { rows } = await sql<Record<string, string>>`explain select * from records
        where connection_id = ${target.connectionId}::uuid and entity = ${target.entity}
          and tenant_id = ${target.tenantId}::uuid and external_id = ${externalId}`.execute(k);
      return rows.map((row) => Object.values(row)[0]).join("\n");
    }),
  );

for (const dialect of dialects) {
  layer(testEngineLayer({ dialect, connectors: [acmeConnector] }), { timeout: 120_000 })(
    `planner statistics on ${dialect}`,
    (it) => {
      it.effect("an import that fills the records leaves them analyzed, and a read by id takes the primary key", () =>
        Effect.gen(function* () {
          const ids = yield* createTestConnection("acme-crm", { baseUrl: "https://acme.test/api", token: "t" });
          const target = { ...ids, entity: "contacts" } satisfies SyncTarget;
          expect(yield* estimatedRecords).toBeLessThan(1);

          const engine = yield* EntitySync;
          const imported = yield* engine.importRecords(
            target,
            Array.from({ length: 5_000 }, (_, i) => contact(i)),
          );
          expect(imported).toMatchObject({ committed: true, created: 5_000 });

          expect(yield* estimatedRecords).toBeGreaterThan(4_000);
          expect(yield* planOfReadById(target, "imp04321")).toContain("records_pkey");
          // Analyzed once for this size: the next check finds nothing to do.
          const again = yield* Effect.flatMap(Database, (db) => db.transaction(db.query(refreshGrownTables)));
          expect(again).toEqual([]);
        }),
      );
    },
  );
}
