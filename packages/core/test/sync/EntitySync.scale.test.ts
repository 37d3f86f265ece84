import { expect, layer } from "@effect/vitest";
import { Database, EntitySync, RecordStore } from "@tandem/core";
import {
  AcmeCrm,
  acmeConnector,
  createTestConnection,
  dialects,
  startAcmeServer,
  testDatabaseLayer,
  testEngineLayer,
} from "@tandem/testkit";
import { Effect, Layer, TestServices } from "effect";
import type {
  KyselyPlugin,
  PluginTransformQueryArgs,
  PluginTransformResultArgs,
  QueryResult,
  RootOperationNode,
  UnknownRow,
} from "kysely";
import { afterAll, beforeAll } from "vitest";

/** Counts every statement Kysely sends (raw `sql` included: it goes through the same executor). */
class StatementCounter implements KyselyPlugin {
  count = 0;
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    this.count++;
    return args.node;
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
}

const acme = new AcmeCrm();
let server: ReturnType<typeof startAcmeServer>;
beforeAll(() => {
  server = startAcmeServer(acme);
});
afterAll(() => server.close());

const RECORDS = 100_000;

for (const dialect of dialects) {
  const counter = new StatementCounter();
  const countedDatabase = Layer.effect(
    Database,
    Effect.map(Database, (db) => Database.make(db.dialect, db.kysely.withPlugin(counter))),
  ).pipe(Layer.provide(testDatabaseLayer(dialect)));

  layer(testEngineLayer({ dialect, connectors: [acmeConnector], database: countedDatabase }), { timeout: 120_000 })(
    `Full sync at scale on ${dialect}`,
    (it) => {
      it.effect(
        `syncs ${RECORDS} records in at most records/100 + a constant statements`,
        () =>
          TestServices.provideLive(
            Effect.gen(function* () {
              acme.reset();
              acme.seed(RECORDS);
              const ids = yield* createTestConnection("acme-crm", {
                baseUrl: acme.baseUrl,
                token: acme.token,
                pageSize: 1000,
              });
              const target = { ...ids, entity: "contacts" };
              counter.count = 0;
              const result = yield* (yield* EntitySync).run({ ...target, mode: "full" });
              const statements = counter.count;
              expect(result).toMatchObject({ created: RECORDS, errors: [], pages: 100 });
              expect(statements).toBeLessThanOrEqual(RECORDS / 100 + 10);
              // 500-record batches: 200 upserts, plus resolving the connection and the cursor.
              expect(statements).toBeLessThanOrEqual(RECORDS / 500 + 10);
              expect(yield* (yield* RecordStore).count(target)).toBe(RECORDS);

              // Reconciliation at this size (statistics refreshed before the comparison): exactly
              // the 1% removed at the source are soft-deleted.
              const removed = [...acme.contacts.keys()].filter((_, i) => i % 100 === 7);
              for (const id of removed) acme.remove(id);
              const reconciled = yield* (yield* EntitySync).run({ ...target, mode: "reconcile" });
              expect(reconciled).toMatchObject({ deleted: removed.length, created: 0, errors: [] });
              expect(yield* (yield* RecordStore).count(target)).toBe(RECORDS - removed.length);
            }),
          ),
        120_000,
      );

      it.effect(
        "a large batch is written as parallel statements; its checkpoint waits for all of them",
        () =>
          TestServices.provideLive(
            Effect.gen(function* () {
              const engine = yield* EntitySync;
              const store = yield* RecordStore;
              acme.reset();
              acme.seed(4_500);
              const connect = createTestConnection("acme-crm", {
                baseUrl: acme.baseUrl,
                token: acme.token,
                pageSize: 1000,
              });
              // Batches of two pages (2,000 records), then 500: split in two parts each, or not.
              const statementsOf = (writeConcurrency: number) =>
                Effect.gen(function* () {
                  const target = { ...(yield* connect), entity: "contacts" };
                  counter.count = 0;
                  const result = yield* engine.run({
                    ...target,
                    mode: "full",
                    options: { batchSize: 2_000, writeConcurrency },
                  });
                  expect(result).toMatchObject({ created: 4_500, errors: [] });
                  expect(yield* store.count(target)).toBe(4_500);
                  return counter.count;
                });
              // Two batches, each one more statement and one checkpoint of its own.
              expect((yield* statementsOf(2)) - (yield* statementsOf(1))).toBe(4);

              // Page 3 fails: the batch of pages 1-2, written in parts, lands with its checkpoint.
              const target = { ...(yield* connect), entity: "contacts" };
              acme.fail(503, { path: "/contacts", after: 2 });
              const options = { batchSize: 2_000, writeConcurrency: 2 };
              const error = yield* engine.run({ ...target, mode: "full", options }).pipe(Effect.flip);
              expect(error._tag).toBe("Unavailable");
              expect(yield* store.count(target)).toBe(2_000);
              expect((yield* store.cursor(target))?.checkpoints.full).toMatchObject({ pages: 2 });
              const resumed = yield* engine.run({ ...target, mode: "full", options });
              expect(resumed).toMatchObject({ resumed: true, created: 2_500, pages: 3, errors: [] });
              expect(yield* store.count(target)).toBe(4_500);
              expect((yield* store.cursor(target))?.checkpoints).toEqual({});
            }),
          ),
        120_000,
      );
    },
  );
}
