import { expect, layer } from "@effect/vitest";
import { EntitySync, makeStandaloneContext, RecordStore, type StoredRecord, type SyncTarget } from "@tandem/core";
import {
  type BusinessCentralEntitySet,
  businessCentralFakeApp,
  businessCentralFakeIds,
  businessCentralHandlers,
  createBusinessCentralFake,
  createManualClock,
  createTestConnection,
  dialects,
  storedRecord,
  storedRecords,
  testEngineLayer,
} from "@tandem/testkit";
import { Effect, Schema, TestServices } from "effect";
import { HttpResponse, http } from "msw";
import { setupServer } from "msw/node";
import { afterAll, beforeAll } from "vitest";
import erp, { BusinessCentralConfig, subscribeBusinessCentral } from "../src/index.ts";

/*
 * The Business Central connector through the EntitySync and the real record store, on PGlite
 * and PostgreSQL, against the testkit's Business Central fake (MSW) on a manual clock: every
 * change below advances it first, so modification times strictly increase.
 */

const baseUrl = "https://bc.engine.test";
const authorityUrl = "https://login.engine.test";
const receiverUrl = "https://tandem.test/webhooks/erp/engine-test";
const clientState = "engine-test-client-state";
const clock = createManualClock(Date.UTC(2026, 4, 1));
const fake = createBusinessCentralFake({ baseUrl, authorityUrl, clock });
/** Notifications as the server's webhook route hands them over: handshake answered, bodies kept. */
const received: Array<string> = [];
const server = setupServer(
  ...businessCentralHandlers(fake),
  http.all(receiverUrl, async ({ request }) => {
    const inbound = {
      method: request.method,
      url: request.url,
      headers: request.headers,
      rawBody: await request.text(),
    };
    const handshake = erp.webhooks!.handshake!(inbound);
    if (handshake !== null) return new HttpResponse(handshake.body, { status: handshake.status });
    received.push(inbound.rawBody);
    return new HttpResponse(null, { status: 202 });
  }),
);
beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
afterAll(() => server.close());

const config = {
  baseUrl,
  authorityUrl,
  ...businessCentralFakeIds,
  clientId: businessCentralFakeApp.clientId,
  clientSecret: businessCentralFakeApp.clientSecret,
  pageSize: 40,
  webhookClientState: clientState,
  // The suite is not paced at BC's 20 requests a second.
  requestsPerSecond: 10_000,
};

/** A clean fake and a new connection to it (earlier tests' records live under other connections). */
const setup = (entity: BusinessCentralEntitySet = "items") =>
  Effect.gen(function* () {
    fake.reset();
    received.length = 0;
    const ids = yield* createTestConnection("erp", config);
    return { ...ids, entity } satisfies SyncTarget;
  });

/** Every change after this one is strictly later than everything before. */
const tick = () => clock.advance(1_000);

const iso = (ms: number) => new Date(ms).toISOString();

/** The store holds exactly the fake's records, each at its current version. */
const expectMirrors = (target: SyncTarget, entitySet: BusinessCentralEntitySet) =>
  Effect.gen(function* () {
    const local = yield* storedRecords(target);
    const remote = fake.records(entitySet);
    expect([...local.keys()].sort()).toEqual(remote.map((r) => r.id).sort());
    for (const record of remote) {
      const data = (local.get(record.id) as StoredRecord).data;
      expect(data.updatedAt, `updatedAt of ${record.id}`).toBe(iso(record.lastModifiedAt));
      expect(data.number).toBe(record.fields.number);
      expect(data.displayName).toBe(record.fields.displayName);
      if (entitySet === "items") expect(data.unitPrice).toBe(record.fields.unitPrice);
      else expect(data.email).toBe(record.fields.email === "" ? null : record.fields.email);
    }
  });

/** Engine tests run on the real clock: the rate budget must not wait on a TestClock nobody advances. */
const live = TestServices.provideLive;

for (const dialect of dialects) {
  layer(testEngineLayer({ dialect, connectors: [erp] }), { timeout: 120_000 })(
    `Business Central through the EntitySync on ${dialect}`,
    (it) => {
      const test = <A, E>(name: string, body: () => Effect.Effect<A, E, any>) =>
        it.effect(name, () => live(body()) as Effect.Effect<A, E, never>);

      test("full sync of items and customers stores exactly the fake's records; a rerun rewrites nothing", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const items = yield* setup("items");
          const customers = { ...items, entity: "customers" };
          fake.seedItems(100);
          fake.seedCustomers(12);
          const first = yield* engine.run({ ...items, mode: "full" });
          expect(first).toMatchObject({ created: 100, updated: 0, deleted: 0, errors: [], pages: 3 });
          expect(yield* engine.run({ ...customers, mode: "full" })).toMatchObject({ created: 12, errors: [] });
          yield* expectMirrors(items, "items");
          yield* expectMirrors(customers, "customers");
          const again = yield* engine.run({ ...items, mode: "full" });
          expect(again).toMatchObject({ created: 0, updated: 0, unchanged: 100, errors: [] });
        }));

      test("delta stores what changed since the cursor; a malformed entity is one item error", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const target = yield* setup();
          const seeded = fake.seedItems(30, { endAt: clock.now() - 3_600_000 });
          yield* engine.run({ ...target, mode: "full" });
          tick();
          fake.store.update("items", seeded[3]!.id, { unitPrice: 77 });
          fake.store.update("items", seeded[8]!.id, { displayName: "Renamed frame" });
          fake.store.create("items", { displayName: "Late item", type: "Non-Inventory" });
          const broken = fake.store.update("items", seeded[9]!.id, { unitCost: 3 });
          if ("failure" in broken) throw new Error(broken.failure.message);
          fake.knobs.malformedIds.add(seeded[9]!.id);
          const delta = yield* engine.run({ ...target, mode: "delta" });
          expect(delta).toMatchObject({ created: 1, updated: 2, deltaCursor: iso(clock.now()) });
          expect(delta.errors).toEqual([expect.objectContaining({ externalId: seeded[9]!.id, type: "InvalidRecord" })]);
          fake.knobs.malformedIds.clear();
          const retried = yield* engine.run({ ...target, mode: "delta" });
          expect(retried).toMatchObject({ updated: 1, errors: [] });
          yield* expectMirrors(target, "items");
        }));

      // Issue 18 (the HubSpot skip), checked for Business Central through the engine: 200 items
      // edited in a backlog, and the item that ends the delta's first page edited again before
      // the second page is requested. The fake's `$skiptoken` names that item (BC does not
      // document what its token holds): following next links, the delta jumped past the rest.
      test("an item re-edited between two pages of a delta leaves no other item stale", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const target = yield* setup();
          const seeded = fake.seedItems(200, { endAt: clock.now() - 30 * 60_000 });
          expect(yield* engine.run({ ...target, mode: "full" })).toMatchObject({ created: 200, errors: [] });
          for (const [i, record] of seeded.entries()) {
            clock.advance(2_000);
            fake.store.update("items", record.id, { unitPrice: 100 + i });
          }
          fake.knobs.skipTokenNames = "lastEntity";
          const reEdited = seeded[config.pageSize - 1]!;
          let lists = 0;
          server.use(
            http.get(`${baseUrl}/v2.0/:tenant/:environment/api/v2.0/:companies/items`, () => {
              // After page 1 is served, before page 2 is answered (no answer here: the fake answers).
              if (++lists === 2) {
                clock.advance(1_000);
                fake.store.update("items", reEdited.id, { unitPrice: 9_999 });
              }
            }),
          );
          const delta = yield* engine
            .run({ ...target, mode: "delta" })
            .pipe(Effect.ensuring(Effect.sync(() => server.resetHandlers())));
          yield* expectMirrors(target, "items");
          expect(lists).toBeGreaterThan(2);
          expect(delta).toMatchObject({
            errors: [],
            deltaCursor: iso(fake.store.get("items", reEdited.id)!.lastModifiedAt),
          });
          expect((yield* storedRecord(target, reEdited.id)).data.unitPrice).toBe(9_999);
        }));

      test("reconciliation soft-deletes what BC deleted, fetches what was missed, and quarantines a mass deletion", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const target = yield* setup("customers");
          const seeded = fake.seedCustomers(50);
          yield* engine.run({ ...target, mode: "full" });
          tick();
          for (const record of seeded.slice(0, 4)) fake.store.remove("customers", record.id);
          fake.store.create("customers", { displayName: "Missed 1" });
          fake.store.create("customers", { displayName: "Missed 2" });
          const reconciled = yield* engine.run({ ...target, mode: "reconcile" });
          expect(reconciled).toMatchObject({ deleted: 4, created: 2, errors: [] });
          expect(reconciled.quarantine).toBeUndefined();
          expect((yield* storedRecord(target, seeded[0]!.id)).deletedAt).not.toBeNull();
          yield* expectMirrors(target, "customers");

          // Half the customers gone at once looks like an outage, not a cleanup: nothing is deleted.
          tick();
          for (const record of seeded.slice(4, 28)) fake.store.remove("customers", record.id);
          const guarded = yield* engine.run({ ...target, mode: "reconcile" });
          expect(guarded.deleted).toBe(0);
          expect(guarded.quarantine).toMatchObject({ wouldDelete: 24, stored: 48 });
          const confirmed = yield* engine.run({ ...target, mode: "reconcile", options: { allowMassDeletion: true } });
          expect(confirmed.deleted).toBe(24);
          yield* expectMirrors(target, "customers");
        }));

      test("notifications (a retried delivery included) synced one by one leave exactly the fake's state", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const target = yield* setup();
          const seeded = fake.seedItems(10);
          yield* engine.run({ ...target, mode: "full" });
          const ctxConfig = Schema.decodeUnknownSync(BusinessCentralConfig)(config);
          yield* Effect.promise(() =>
            subscribeBusinessCentral(
              makeStandaloneContext(erp, ctxConfig, { log: { debug: () => {}, info: () => {}, warn: () => {} } }),
              { entity: "items", notificationUrl: receiverUrl },
            ),
          );
          tick();
          fake.store.update("items", seeded[0]!.id, { unitPrice: 5 });
          fake.store.remove("items", seeded[1]!.id);
          const created = fake.store.create("items", { displayName: "Hooked" });
          if ("failure" in created) throw new Error(created.failure.message);
          yield* Effect.promise(() => fake.deliverNotifications());
          // BC retries a delivery it thinks failed: the same notifications again.
          received.push(received[0]!);

          const webhooks = erp.webhooks!;
          const events = received.flatMap((rawBody) => {
            const request = { method: "POST", url: receiverUrl, headers: new Headers(), rawBody };
            expect(webhooks.verify({ config: ctxConfig, now: new Date(clock.now()) }, request)).toBe(true);
            return webhooks.parse(request);
          });
          expect(events).toHaveLength(6);
          expect(new Set(events.map((e) => e.eventId)).size).toBe(3);
          const actions: Array<string> = [];
          for (const event of events) {
            const result = yield* engine.syncRecord(
              { ...target, entity: event.entity },
              { externalId: event.externalId, kind: event.kind, occurredAt: event.occurredAt },
            );
            actions.push(result.action);
          }
          // The replayed half changes nothing.
          expect(actions.slice(3)).toEqual(["unchanged", "unchanged", "unchanged"]);
          expect((yield* storedRecord(target, seeded[1]!.id)).deletedAt).not.toBeNull();
          expect((yield* storedRecord(target, created.record.id)).data.displayName).toBe("Hooked");
          yield* expectMirrors(target, "items");
        }));

      test("pushes local changes with If-Match; a read-only field fails the push for good", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const store = yield* RecordStore;
          const target = yield* setup();
          const seeded = fake.seedItems(5);
          yield* engine.run({ ...target, mode: "full" });
          tick();
          const [a, b] = seeded;
          yield* store.applyLocalChange(target, a!.id, { unitPrice: 19.99, blocked: true });
          yield* store.applyLocalChange(target, b!.id, { inventory: 1_000 });
          const pushed = yield* engine.run({ ...target, mode: "push" });
          expect(pushed.updated).toBe(1);
          expect(pushed.errors).toEqual([expect.objectContaining({ externalId: b!.id, type: "InvalidRecord" })]);
          expect(fake.store.get("items", a!.id)!.fields).toMatchObject({ unitPrice: 19.99, blocked: true });
          expect(yield* storedRecord(target, a!.id)).toMatchObject({ syncStatus: "synced", pendingChanges: null });
          expect((yield* storedRecord(target, a!.id)).data.updatedAt).toBe(
            iso(fake.store.get("items", a!.id)!.lastModifiedAt),
          );
          expect(yield* storedRecord(target, b!.id)).toMatchObject({ syncStatus: "failed" });
          // The echo of our own write comes back through the next delta without a change.
          const delta = yield* engine.run({ ...target, mode: "delta" });
          expect(delta).toMatchObject({ created: 0, errors: [] });
          expect((yield* storedRecord(target, a!.id)).data.unitPrice).toBe(19.99);
        }));
    },
  );
}
