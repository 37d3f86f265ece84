import { expect, layer } from "@effect/vitest";
import { EntitySync, RecordStore, type StoredRecord, type SyncTarget } from "@tandem/core";
import {
  createManualClock,
  createSalesforceFake,
  createTestConnection,
  dialects,
  outboundMessageRequest,
  outboundNotificationId,
  runSyncUntilDone,
  type SalesforceObjectType,
  salesforceFakeOAuthApp,
  salesforceHandlers,
  storedRecord,
  storedRecords,
  testEngineLayer,
} from "@tandem/testkit";
import { Effect, Schema, TestServices } from "effect";
import { setupServer } from "msw/node";
import { afterAll, beforeAll } from "vitest";
import salesforce, { SalesforceConfig } from "../src/index.ts";

/*
 * The Salesforce connector through the EntitySync and the real record store, on PGlite and
 * PostgreSQL, against the testkit's Salesforce fake (MSW). The fake runs on a manual clock:
 * every change below advances it first, so SystemModstamps strictly increase.
 */

const instanceUrl = "https://acme.engine.my.salesforce.test";
const clock = createManualClock(Date.UTC(2026, 4, 1));
const fake = createSalesforceFake({ instanceUrl, clock, knobs: { minBatchSize: 1 } });
const server = setupServer(...salesforceHandlers(fake));
beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
afterAll(() => {
  fake.close();
  server.close();
});

const config = {
  instanceUrl,
  clientId: salesforceFakeOAuthApp.clientId,
  clientSecret: salesforceFakeOAuthApp.clientSecret,
  refreshToken: salesforceFakeOAuthApp.refreshToken,
  pageSize: 100,
  outboundMessageOrgId: fake.organizationId,
};

const entityOf = { Contact: "contacts", Account: "accounts" } as const;

/** A clean fake and a new connection to it (earlier tests' records live under other connections). */
const setup = (type: SalesforceObjectType = "Contact") =>
  Effect.gen(function* () {
    fake.reset();
    const ids = yield* createTestConnection("salesforce", config);
    return { ...ids, entity: entityOf[type] } satisfies SyncTarget;
  });

/** Every change after this one is strictly later than everything before. */
const tick = () => clock.advance(1_000);

const iso = (ms: number) => new Date(ms).toISOString();

/** The store holds exactly the fake's live records, each at its current SystemModstamp. */
const expectMirrors = (target: SyncTarget, type: SalesforceObjectType) =>
  Effect.gen(function* () {
    const local = yield* storedRecords(target);
    const remote = fake.live(type);
    expect([...local.keys()].sort()).toEqual(remote.map((r) => r.Id).sort());
    for (const record of remote) {
      const row = local.get(record.Id) as StoredRecord;
      expect(row.data.updatedAt, `updatedAt of ${record.Id}`).toBe(iso(record.SystemModstamp));
      if (type === "Contact") {
        expect(row.data.lastName).toBe(record.fields.LastName);
        expect(row.data.phone).toBe(record.fields.Phone ?? null);
      } else {
        expect(row.data.name).toBe(record.fields.Name);
        expect(row.data.industry).toBe(record.fields.Industry ?? null);
      }
    }
  });

/** Engine tests run on the real clock: nothing here waits on a TestClock nobody advances. */
const live = TestServices.provideLive;

for (const dialect of dialects) {
  layer(testEngineLayer({ dialect, connectors: [salesforce] }), { timeout: 120_000 })(
    `Salesforce through the EntitySync on ${dialect}`,
    (it) => {
      const test = <A, E>(name: string, body: () => Effect.Effect<A, E, any>) =>
        it.effect(name, () => live(body()) as Effect.Effect<A, E, never>);

      test("full sync of contacts and accounts stores exactly the fake's records; a rerun rewrites nothing", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const contacts = yield* setup("Contact");
          const accounts = { ...contacts, entity: "accounts" };
          fake.seedContacts(230);
          fake.seedAccounts(12);
          const first = yield* engine.run({ ...contacts, mode: "full" });
          expect(first).toMatchObject({ created: 230, updated: 0, deleted: 0, errors: [], pages: 3 });
          expect(yield* engine.run({ ...accounts, mode: "full" })).toMatchObject({ created: 12, errors: [] });
          yield* expectMirrors(contacts, "Contact");
          yield* expectMirrors(accounts, "Account");
          const again = yield* engine.run({ ...contacts, mode: "full" });
          expect(again).toMatchObject({ created: 0, updated: 0, unchanged: 230, errors: [] });
        }));

      test("delta stores changes (system ones included) and soft-deletes what went to the recycle bin", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const store = yield* RecordStore;
          const target = yield* setup();
          const seeded = fake.seedContacts(30);
          yield* engine.run({ ...target, mode: "full" });
          tick();
          fake.store.update("Contact", seeded[3]!.Id, { Phone: "+15550003" });
          fake.store.touch("Contact", seeded[6]!.Id);
          fake.store.delete("Contact", seeded[4]!.Id);
          fake.store.delete("Contact", seeded[5]!.Id);
          fake.store.create("Contact", { LastName: "Late", Email: "late@example.com" });
          const delta = yield* engine.run({ ...target, mode: "delta" });
          expect(delta).toMatchObject({ created: 1, updated: 2, deleted: 2, errors: [] });
          expect((yield* storedRecord(target, seeded[4]!.Id)).deletedAt).not.toBeNull();
          expect(yield* store.count(target)).toBe(29);
          const sent = fake.requests().filter((r) => r.soql !== undefined);
          expect(sent.at(-1)!.path.startsWith("/services/data/v60.0/queryAll?")).toBe(true);
          yield* expectMirrors(target, "Contact");
        }));

      test("a deletion older than the recycle bin escapes the delta and is found by reconciliation", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const target = yield* setup();
          const seeded = fake.seedContacts(40);
          yield* engine.run({ ...target, mode: "full" });
          tick();
          fake.store.delete("Contact", seeded[0]!.Id);
          clock.advance(16 * 24 * 60 * 60 * 1000); // the recycle bin keeps deletions 15 days
          fake.store.update("Contact", seeded[1]!.Id, { Phone: "+15550001" });
          const delta = yield* engine.run({ ...target, mode: "delta" });
          expect(delta).toMatchObject({ updated: 1, deleted: 0, errors: [] });
          const reconciled = yield* engine.run({ ...target, mode: "reconcile" });
          expect(reconciled).toMatchObject({ deleted: 1, errors: [] });
          yield* expectMirrors(target, "Contact");
        }));

      test("outbound messages verified, parsed and synced record by record; a replay changes nothing", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const target = yield* setup();
          const seeded = fake.seedContacts(10);
          yield* engine.run({ ...target, mode: "full" });
          tick();
          fake.store.update("Contact", seeded[0]!.Id, { FirstName: "Hooked" });
          fake.store.update("Contact", seeded[1]!.Id, { Email: "moved@example.com" });
          const request = outboundMessageRequest("https://tandem.test/webhooks/salesforce/x", {
            organizationId: fake.organizationId,
            instanceUrl,
            notifications: [0, 1].map((i) => ({
              id: outboundNotificationId(),
              record: fake.store.get("Contact", seeded[i]!.Id)!,
            })),
          });
          const webhooks = salesforce.webhooks!;
          const decoded = Schema.decodeUnknownSync(SalesforceConfig)(config);
          expect(webhooks.verify({ config: decoded, now: new Date() }, request)).toBe(true);
          const events = webhooks.parse(request);
          expect(events).toHaveLength(2);
          for (const round of [1, 2]) {
            for (const event of events) {
              const result = yield* engine.syncRecord(
                { ...target, entity: event.entity },
                { externalId: event.externalId, kind: event.kind, occurredAt: event.occurredAt },
              );
              expect(result.action, `round ${round} of ${event.externalId}`).toBe(
                round === 1 ? "updated" : "unchanged",
              );
            }
          }
          expect((yield* storedRecord(target, seeded[0]!.Id)).data.firstName).toBe("Hooked");
          yield* expectMirrors(target, "Contact");
        }));

      test("pushes local changes; a refused one (required field cleared) fails for good", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const store = yield* RecordStore;
          const target = yield* setup("Account");
          const seeded = fake.seedAccounts(5);
          yield* engine.run({ ...target, mode: "full" });
          tick();
          yield* store.applyLocalChange(target, seeded[0]!.Id, { industry: "Banking" });
          yield* store.applyLocalChange(target, seeded[1]!.Id, { name: null });
          const pushed = yield* engine.run({ ...target, mode: "push" });
          expect(pushed.updated).toBe(1);
          expect(pushed.errors).toEqual([
            expect.objectContaining({ externalId: seeded[1]!.Id, type: "InvalidRecord" }),
          ]);
          expect(pushed.errors[0]!.message).toContain("REQUIRED_FIELD_MISSING");
          expect(fake.store.get("Account", seeded[0]!.Id)!.fields.Industry).toBe("Banking");
          expect(yield* storedRecord(target, seeded[0]!.Id)).toMatchObject({
            syncStatus: "synced",
            pendingChanges: null,
          });
          expect((yield* storedRecord(target, seeded[0]!.Id)).data.updatedAt).toBe(
            iso(fake.store.get("Account", seeded[0]!.Id)!.SystemModstamp),
          );
          expect(yield* storedRecord(target, seeded[1]!.Id)).toMatchObject({ syncStatus: "failed" });
        }));

      test("full and delta syncs under 5xx, 429s and an expired session complete with exactly the fake's data", () =>
        Effect.gen(function* () {
          const target = yield* setup();
          fake.seedContacts(450);
          const failures: Record<string, number> = {};
          fake.knobs.serverErrorRate = 0.2;
          fake.failNext({ kind: "status", status: 429, retryAfterSeconds: 1 });
          yield* runSyncUntilDone(target, "full", failures);
          yield* expectMirrors(target, "Contact");

          tick();
          for (const record of fake.live("Contact").slice(0, 15))
            fake.store.update("Contact", record.Id, { Phone: "+1" });
          for (const record of fake.live("Contact").slice(20, 23)) fake.store.delete("Contact", record.Id);
          fake.expireSessions();
          fake.failNext({ kind: "status", status: 503 });
          const delta = yield* runSyncUntilDone(target, "delta", failures);
          expect(delta.errors).toEqual([]);
          expect(failures.RateLimited).toBeGreaterThanOrEqual(1);
          expect(failures.Unavailable).toBeGreaterThan(0);
          fake.knobs.serverErrorRate = 0;
          yield* expectMirrors(target, "Contact");
        }));
    },
  );
}
