import { expect, layer, it as plainIt } from "@effect/vitest";
import { Database, decodeFeedPosition, RecordStore, Records } from "@tandem/core";
import {
  acmeConnector,
  createTestConnection,
  dialects,
  freshDatabaseConfig,
  testEngineLayer,
  testPostgresAdminUrl,
} from "@tandem/testkit";
import { Context, Deferred, Effect, Fiber, Layer } from "effect";
import { type Kysely, sql } from "kysely";
import { Migrator } from "kysely/migration";
import pg from "pg";
import { describe } from "vitest";
import { migrations } from "../../src/db/migrations/index.ts";

const scopeOf = Effect.map(
  createTestConnection("acme-crm", { baseUrl: "https://acme.test/api", token: "t" }),
  (ids) => ({ ...ids, entity: "contacts" }),
);
const rec = (id: string) => ({ externalId: id, data: { id }, remoteUpdatedAt: new Date("2026-01-01T00:00:00Z") });
const ids = (page: { readonly records: ReadonlyArray<{ readonly externalId: string }> }) =>
  page.records.map((r) => r.externalId);

describe("feed cursors", () => {
  plainIt("read `<xid>.<seq>` and, as cursors were before, a bare `<seq>`; refuse anything else", () => {
    expect(decodeFeedPosition("812.44")).toEqual({ xid: "812", seq: "44" });
    expect(decodeFeedPosition("44")).toEqual({ xid: "0", seq: "44" });
    expect(decodeFeedPosition("18446744073709551615.9223372036854775807")).toEqual({
      xid: "18446744073709551615",
      seq: "9223372036854775807",
    });
    for (const bad of ["", "abc", "1.2.3", "-1", "1.", ".1", "9223372036854775808", "18446744073709551616.1", " 1"]) {
      expect(decodeFeedPosition(bad), bad).toBeUndefined();
    }
  });
});

layer(testEngineLayer({ dialect: "postgres", connectors: [acmeConnector] }), { timeout: 60_000 })(
  "the change feed's horizon on postgres",
  (it) => {
    it.effect("a change committed while an earlier writer is still open waits for it: the cursor never passes it", () =>
      Effect.gen(function* () {
        const store = yield* RecordStore;
        const db = yield* Database;
        const scope = yield* scopeOf;
        const start = yield* store.changes(scope);
        const wrote = yield* Deferred.make<void>();
        const release = yield* Deferred.make<void>();
        // A writer that took its place in the feed first, and commits last.
        const slow = yield* db
          .transaction(
            Effect.gen(function* () {
              yield* store.upsert(scope, [rec("slow")]);
              yield* Deferred.succeed(wrote, undefined);
              yield* Deferred.await(release);
            }),
          )
          .pipe(Effect.fork);
        yield* Deferred.await(wrote);
        yield* store.upsert(scope, [rec("fast")]);
        // "fast" is committed, but a reader taking it now would page past "slow" for good.
        const during = yield* store.changes(scope, { after: start.cursor });
        expect(ids(during)).toEqual([]);
        expect(during.cursor).toBe(start.cursor);
        yield* Deferred.succeed(release, undefined);
        yield* Fiber.join(slow);
        const after = yield* store.changes(scope, { after: during.cursor });
        expect(ids(after)).toEqual(["slow", "fast"]);
      }),
    );

    it.scoped("a transaction open in another database does not hold the feed back", () =>
      Effect.gen(function* () {
        const store = yield* RecordStore;
        const scope = yield* scopeOf;
        // A writer in another database of the server (here the admin one), open throughout.
        yield* Effect.acquireRelease(
          Effect.promise(async () => {
            const other = new pg.Client({ connectionString: testPostgresAdminUrl() });
            await other.connect();
            await other.query("begin");
            await other.query("select pg_current_xact_id()");
            return other;
          }),
          (other) => Effect.promise(() => other.end()),
        );
        const start = yield* store.changes(scope);
        yield* store.upsert(scope, [rec("now")]);
        expect(ids(yield* store.changes(scope, { after: start.cursor }))).toEqual(["now"]);
      }),
    );
  },
);

for (const dialect of dialects) {
  layer(testEngineLayer({ dialect, connectors: [acmeConnector] }), { timeout: 60_000 })(
    `the change feed's cursors on ${dialect}`,
    (it) => {
      it.effect("records.list refuses a cursor it did not hand out", () =>
        Effect.gen(function* () {
          const scope = yield* scopeOf;
          const records = yield* Records;
          for (const cursor of ["abc", "1.2.3", "98765432109876543210"]) {
            const failure = yield* Effect.flip(records.list(scope.tenantId, { ...scope, cursor }));
            expect(failure).toMatchObject({ _tag: "InvalidInput", issues: [{ path: "cursor" }] });
          }
          expect((yield* records.list(scope.tenantId, { ...scope, cursor: "0" })).items).toEqual([]);
        }),
      );
    },
  );

  layer(Layer.empty, { timeout: 60_000 })(`upgrading to the commit-ordered feed on ${dialect}`, (it) => {
    it.scoped("a cursor handed out before resumes where it was; subscribed tenants' events start at the end", () =>
      Effect.gen(function* () {
        const config = yield* freshDatabaseConfig(dialect);
        const db = Context.get(yield* Layer.build(Database.layer(config, { migrate: false })), Database);
        const k = db.kysely as unknown as Kysely<unknown>;
        const migrator = new Migrator({ db: k, provider: { getMigrations: async () => migrations } });
        const before = yield* Effect.promise(() => migrator.migrateTo("2026_12_05_0013_connections_refresh_state"));
        expect(before.error).toBeUndefined();
        // The store as the previous version left it: five records, a reader's cursor after the second.
        const tenant = "00000000-0000-4000-8000-000000000001";
        const connection = "00000000-0000-4000-8000-000000000002";
        const oldCursor = yield* Effect.promise(async () => {
          await sql`insert into tenants (id, name) values (${tenant}, 't')`.execute(k);
          await sql`insert into connections (id, tenant_id, connector, name, config_ciphertext)
            values (${connection}, ${tenant}, 'acme-crm', 'c', 'x')`.execute(k);
          for (const id of ["r1", "r2", "r3", "r4", "r5"]) {
            await sql`insert into records (tenant_id, connection_id, entity, external_id, data)
              values (${tenant}, ${connection}, 'contacts', ${id}, ${JSON.stringify({ id })}::jsonb)`.execute(k);
          }
          await sql`insert into webhook_subscriptions (id, tenant_id, url, events, secret_ciphertext)
            values ('00000000-0000-4000-8000-000000000003', ${tenant}, 'https://receiver.test/',
              '["record.updated"]'::jsonb, 'x')`.execute(k);
          const r = await sql<{
            seq: string;
          }>`select change_seq::text as seq from records where external_id = 'r2'`.execute(k);
          return r.rows[0]!.seq;
        });
        const after = yield* Effect.promise(() => migrator.migrateToLatest());
        expect(after.error).toBeUndefined();

        const store = yield* RecordStore.make.pipe(Effect.provideService(Database, db));
        const scope = { tenantId: tenant, connectionId: connection, entity: "contacts" };
        const resumed = yield* store.changes(scope, { after: oldCursor });
        expect(ids(resumed)).toEqual(["r3", "r4", "r5"]);
        yield* store.upsert(scope, [rec("r6"), { ...rec("r1"), data: { id: "r1", changed: true } }]);
        const next = yield* store.changes(scope, { after: resumed.cursor });
        expect(ids(next).sort()).toEqual(["r1", "r6"]);
        expect(next.cursor).toMatch(/^[1-9]\d*\.\d+$/);
        // The subscribed tenant's events start after r5: the upgrade sends none for the history.
        const cursors = yield* Effect.promise(() =>
          sql<{ xid: string; seq: string }>`select after_xid::text as xid, after_seq::text as seq
            from record_event_cursors`.execute(k),
        );
        const r5 = resumed.records.at(-1)!;
        expect(cursors.rows).toEqual([{ xid: "0", seq: r5.changeSeq }]);
      }),
    );
  });
}
