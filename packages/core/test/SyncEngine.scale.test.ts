import { expect, layer } from "@effect/vitest";
import { Database, RecordStore, SyncEngine } from "@tandem/core";
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

  layer(testEngineLayer(dialect, [acmeConnector], countedDatabase), { timeout: 120_000 })(
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
              const result = yield* (yield* SyncEngine).run({ ...target, mode: "full" });
              const statements = counter.count;
              expect(result).toMatchObject({ created: RECORDS, errors: [], pages: 100 });
              expect(statements).toBeLessThanOrEqual(RECORDS / 100 + 10);
              // 500-record batches: 200 upserts, plus resolving the connection and the cursor.
              expect(statements).toBeLessThanOrEqual(RECORDS / 500 + 10);
              expect(yield* (yield* RecordStore).count(target)).toBe(RECORDS);
            }),
          ),
        120_000,
      );
    },
  );
}
