import { expect, layer } from "@effect/vitest";
import { Conflicts, EntitySync, Records, type SyncTarget, setConnectionSettings } from "@tandem/core";
import {
  businessCentralFakeApp,
  businessCentralFakeIds,
  businessCentralHandlers,
  createBusinessCentralFake,
  createManualClock,
  createTestConnection,
  requestGate,
  storedRecord,
  testEngineLayer,
} from "@tandem/testkit";
import { Effect, Fiber, TestServices } from "effect";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll } from "vitest";
import erp from "../src/index.ts";

/*
 * Pushes to Business Central are conditional, deletes included, over the BC fake (MSW) on
 * PostgreSQL: updates and deletes carry If-Match, the etag the change was made against (409
 * Request_EntityChanged when it is stale). A local delete meeting a remote edit made since the
 * last pull follows the delete-against-edit rule under both settings, audited; a local edit made
 * while a push is in flight (the PATCH held at the fake's door) is pushed next, not lost to our
 * own write.
 */

const baseUrl = "https://bc.conditional-push.test";
const authorityUrl = "https://login.conditional-push.test";
const clock = createManualClock(Date.UTC(2026, 4, 1));
const fake = createBusinessCentralFake({ baseUrl, authorityUrl, clock });
const server = setupServer(...businessCentralHandlers(fake));
beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

const config = {
  baseUrl,
  authorityUrl,
  ...businessCentralFakeIds,
  clientId: businessCentralFakeApp.clientId,
  clientSecret: businessCentralFakeApp.clientSecret,
  pageSize: 100,
  requestsPerSecond: 10_000,
};

const setup = (deleteAgainstEdit?: "edit-wins" | "delete-wins") =>
  Effect.gen(function* () {
    fake.reset();
    const ids = yield* createTestConnection("erp", config);
    const target = { ...ids, entity: "items" } satisfies SyncTarget;
    if (deleteAgainstEdit !== undefined) {
      yield* setConnectionSettings(target.tenantId, target.connectionId, { items: { deleteAgainstEdit } });
    }
    return target;
  });

const tick = () => clock.advance(1_000);

const auditOf = (target: SyncTarget, externalId: string) =>
  Effect.map(
    Effect.flatMap(Conflicts, (c) => c.list(target.tenantId, { connectionId: target.connectionId })),
    (page) => page.items.filter((c) => c.externalId === externalId),
  );

const live = TestServices.provideLive;

layer(testEngineLayer({ dialect: "postgres", connectors: [erp] }), { timeout: 180_000 })(
  "pushes to Business Central are conditional, deletes included",
  (it) => {
    const test = <A, E>(name: string, body: () => Effect.Effect<A, E, any>) =>
      it.effect(name, () => live(body()) as Effect.Effect<A, E, never>);

    test("a local delete meeting a remote edit since the last pull: edit wins (default), restored, audited", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const records = yield* Records;
        const target = yield* setup();
        const [a, b] = fake.seedItems(2);
        yield* engine.run({ ...target, mode: "full" });
        tick();
        yield* records.delete(target.tenantId, { ...target, externalId: a!.id });
        yield* records.delete(target.tenantId, { ...target, externalId: b!.id });
        tick();
        fake.store.update("items", a!.id, { displayName: "Edited remotely" });
        tick();
        // Two deletes: one $batch, each DELETE with its own If-Match.
        yield* engine.run({ ...target, mode: "push" });
        yield* engine.run({ ...target, mode: "push" });
        expect(fake.store.get("items", a!.id)?.fields.displayName).toBe("Edited remotely");
        expect(fake.store.get("items", b!.id)).toBeUndefined();
        expect(yield* storedRecord(target, a!.id)).toMatchObject({
          deletedAt: null,
          syncStatus: "synced",
          data: { displayName: "Edited remotely" },
        });
        expect((yield* storedRecord(target, b!.id)).deletedAt).not.toBeNull();
        expect(yield* auditOf(target, a!.id)).toEqual([
          expect.objectContaining({
            status: "resolved",
            policy: "delete-against-edit:edit-wins",
            local: { deleted: true },
            remote: expect.objectContaining({ displayName: "Edited remotely" }),
          }),
        ]);
        expect(yield* auditOf(target, b!.id)).toEqual([]);
      }));

    test("a local delete meeting a remote edit since the last pull: delete wins, deleted, the edit audited", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const records = yield* Records;
        const target = yield* setup("delete-wins");
        const [a] = fake.seedItems(1);
        yield* engine.run({ ...target, mode: "full" });
        tick();
        yield* records.delete(target.tenantId, { ...target, externalId: a!.id });
        tick();
        fake.store.update("items", a!.id, { displayName: "Edited remotely" });
        tick();
        yield* engine.run({ ...target, mode: "push" });
        yield* engine.run({ ...target, mode: "push" });
        expect(fake.store.get("items", a!.id)).toBeUndefined();
        expect(yield* storedRecord(target, a!.id)).toMatchObject({ syncStatus: "synced" });
        expect((yield* storedRecord(target, a!.id)).deletedAt).not.toBeNull();
        expect(yield* auditOf(target, a!.id)).toEqual([
          expect.objectContaining({
            status: "resolved",
            policy: "delete-against-edit:delete-wins",
            local: { deleted: true },
            remote: expect.objectContaining({ displayName: "Edited remotely" }),
          }),
        ]);
      }));

    test("a local edit made while a push of the record is in flight is pushed next, not lost", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const records = yield* Records;
        const target = yield* setup();
        const [a] = fake.seedItems(1);
        yield* engine.run({ ...target, mode: "full" });
        tick();
        yield* records.update(target.tenantId, { ...target, externalId: a!.id, fields: { displayName: "First" } });
        // The PATCH (If-Match: the etag pulled) waits at Business Central's door.
        const gate = requestGate("PATCH", /\/items\([^)]+\)$/);
        server.use(gate.handler);
        const push = yield* Effect.fork(engine.run({ ...target, mode: "push" }));
        yield* Effect.promise(() => gate.arrived);
        yield* records.update(target.tenantId, {
          ...target,
          externalId: a!.id,
          fields: { displayName: "Second", unitPrice: 42 },
        });
        tick();
        gate.release();
        yield* Fiber.join(push);
        tick();
        yield* engine.run({ ...target, mode: "push" });
        expect(fake.store.get("items", a!.id)!.fields).toMatchObject({ displayName: "Second", unitPrice: 42 });
        expect(yield* storedRecord(target, a!.id)).toMatchObject({
          syncStatus: "synced",
          pendingChanges: null,
          data: { displayName: "Second", unitPrice: 42 },
        });
        // Our own write was never taken for a remote edit.
        expect(yield* auditOf(target, a!.id)).toEqual([]);
      }));
  },
);
