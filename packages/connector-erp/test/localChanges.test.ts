import { expect, layer } from "@effect/vitest";
import { Conflicts, EntitySync, LocalChanges, Records, type SyncTarget } from "@tandem/core";
import {
  businessCentralFakeApp,
  businessCentralFakeIds,
  businessCentralHandlers,
  createBusinessCentralFake,
  createManualClock,
  createTestConnection,
  storedRecord,
  storedRecords,
  testEngineLayer,
} from "@tandem/testkit";
import { Effect, TestServices } from "effect";
import { setupServer } from "msw/node";
import { afterAll, beforeAll } from "vitest";
import erp from "../src/index.ts";

/*
 * Local changes to Business Central items and customers are checked against what BC lets an API
 * client write: its ids, etags, modification times and computed inventory are refused when
 * submitted, naming the field, and a resolved conflict (a whole record, read-only fields
 * included) and an item created again at BC (its remote delete met a local edit) push only the
 * writable ones. PostgreSQL, the BC fake through MSW.
 */

const baseUrl = "https://bc.local-changes.test";
const authorityUrl = "https://login.local-changes.test";
const clock = createManualClock(Date.UTC(2026, 5, 1));
const fake = createBusinessCentralFake({ baseUrl, authorityUrl, clock });
const server = setupServer(...businessCentralHandlers(fake));
beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
afterAll(() => server.close());

const config = {
  baseUrl,
  authorityUrl,
  ...businessCentralFakeIds,
  clientId: businessCentralFakeApp.clientId,
  clientSecret: businessCentralFakeApp.clientSecret,
  requestsPerSecond: 10_000,
};

const setup = (entity: "items" | "customers") =>
  Effect.gen(function* () {
    fake.reset();
    const ids = yield* createTestConnection("erp", config);
    return { ...ids, entity } satisfies SyncTarget;
  });

const tick = () => clock.advance(1_000);

layer(testEngineLayer({ dialect: "postgres", connectors: [erp] }), { timeout: 120_000 })(
  "local changes to Business Central records",
  (it) => {
    const test = <A, E>(name: string, body: () => Effect.Effect<A, E, any>) =>
      it.effect(name, () => TestServices.provideLive(body()) as Effect.Effect<A, E, never>);

    test("BC's read-only fields are refused when submitted, naming the field; writable ones are accepted", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const local = yield* LocalChanges;
        const target = yield* setup("items");
        const [item] = fake.seedItems(1);
        yield* engine.run({ ...target, mode: "full" });
        const refusal = (fields: Record<string, unknown>) =>
          local.update(target.tenantId, { ...target, externalId: item!.id, fields }).pipe(Effect.flip);

        for (const field of ["inventory", "id", "updatedAt", "etag"]) {
          const value = field === "inventory" ? 5 : field === "updatedAt" ? "2026-06-01T00:00:00.000Z" : "x";
          const refused = yield* refusal({ [field]: value, displayName: "fine" });
          expect(refused).toMatchObject({ _tag: "InvalidInput", issues: [{ path: `fields.${field}` }] });
          expect(refused.message).toContain("read-only");
        }
        const create = yield* local
          .create(target.tenantId, { ...target, fields: { displayName: "New", inventory: 10 } })
          .pipe(Effect.flip);
        expect(create).toMatchObject({ _tag: "InvalidInput", issues: [{ path: "fields.inventory" }] });

        const accepted = yield* local.update(target.tenantId, {
          ...target,
          externalId: item!.id,
          fields: { number: "BIKE-1", displayName: "Bike", type: "Service", blocked: true, gtin: null, unitPrice: 9 },
        });
        expect(accepted.record.syncStatus).toBe("pending");
        yield* engine.run({ ...target, mode: "push" });
        expect(fake.store.get("items", item!.id)!.fields).toMatchObject({
          number: "BIKE-1",
          displayName: "Bike",
          type: "Service",
          blocked: true,
          gtin: "",
          unitPrice: 9,
        });

        const customers = yield* setup("customers");
        const customer = yield* local
          .create(customers.tenantId, { ...customers, fields: { displayName: "Adatum", id: "x" } })
          .pipe(Effect.flip);
        expect(customer).toMatchObject({ _tag: "InvalidInput", issues: [{ path: "fields.id" }] });
      }));

    test("a conflict resolved for the local side pushes the writable fields, not the computed inventory", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const local = yield* LocalChanges;
        const target = yield* setup("items");
        const [item] = fake.seedItems(1);
        yield* engine.run({ ...target, mode: "full" });
        tick();
        yield* local.update(target.tenantId, { ...target, externalId: item!.id, fields: { displayName: "Local" } });
        tick();
        fake.store.update("items", item!.id, { displayName: "Remote" });
        fake.store.setComputed("items", item!.id, { inventory: 42 });
        tick();
        yield* engine.run({ ...target, mode: "delta" });
        const open = (yield* (yield* Conflicts).list(target.tenantId, { connectionId: target.connectionId })).items;
        expect(open).toEqual([
          expect.objectContaining({ externalId: item!.id, fields: ["displayName"], status: "open" }),
        ]);

        yield* (yield* Records).resolveConflict(target.tenantId, open[0]!.id, { choose: "local" }, "api-key:test");
        const pushed = yield* engine.run({ ...target, mode: "push" });
        expect(pushed.errors).toEqual([]);
        expect(fake.store.get("items", item!.id)!.fields).toMatchObject({ displayName: "Local", inventory: 42 });
        expect(yield* storedRecord(target, item!.id)).toMatchObject({ syncStatus: "synced", pendingChanges: null });
      }));

    test("an item deleted in BC while a local edit waited is created again with its writable fields (edit wins)", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const local = yield* LocalChanges;
        const target = yield* setup("items");
        const [item] = fake.seedItems(1);
        const number = item!.fields.number;
        yield* engine.run({ ...target, mode: "full" });
        tick();
        yield* local.update(target.tenantId, { ...target, externalId: item!.id, fields: { displayName: "Kept edit" } });
        tick();
        fake.store.remove("items", item!.id);
        tick();
        yield* engine.run({ ...target, mode: "reconcile" });
        const pushed = yield* engine.run({ ...target, mode: "push" });
        expect(pushed.errors).toEqual([]);
        const [recreated, ...others] = fake.records("items");
        expect(others).toEqual([]);
        expect(recreated!.id).not.toBe(item!.id);
        // BC computes the new item's inventory (0): the old one's is not sent.
        expect(recreated!.fields).toMatchObject({ number, displayName: "Kept edit", inventory: 0 });
        const stored = [...(yield* storedRecords(target)).values()];
        expect(stored).toEqual([
          expect.objectContaining({ externalId: recreated!.id, syncStatus: "synced", pendingChanges: null }),
        ]);
      }));

    test("an item in conflict deleted by the host instead of resolving is deleted in BC, against the version in conflict", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const local = yield* LocalChanges;
        const target = yield* setup("items");
        const [item, other] = fake.seedItems(2);
        yield* engine.run({ ...target, mode: "full" });
        tick();
        yield* local.update(target.tenantId, { ...target, externalId: item!.id, fields: { displayName: "Local" } });
        tick();
        fake.store.update("items", item!.id, { displayName: "Remote" });
        tick();
        yield* engine.run({ ...target, mode: "delta" });
        expect((yield* storedRecord(target, item!.id)).syncStatus).toBe("conflict");

        yield* (yield* Records).delete(target.tenantId, { ...target, externalId: item!.id });
        const from = fake.requests().length;
        // The first push may meet the etag pulled before the conflict (409); the next goes against
        // the version in conflict.
        yield* engine.run({ ...target, mode: "push" });
        yield* engine.run({ ...target, mode: "push" });
        expect(fake.store.get("items", item!.id)).toBeUndefined();
        expect(fake.records("items").map((r) => r.id)).toEqual([other!.id]);
        const writes = fake
          .requests()
          .slice(from)
          .filter((r) => r.method === "DELETE" || r.url.endsWith("/$batch"));
        expect(writes.length).toBeLessThanOrEqual(2);
        expect(yield* storedRecord(target, item!.id)).toMatchObject({ syncStatus: "synced" });
      }));
  },
);
