import { expect, layer } from "@effect/vitest";
import { Conflicts, EntitySync, Records, type SyncTarget, setConnectionSettings } from "@tandem/core";
import {
  createHubSpotFake,
  createManualClock,
  createTestConnection,
  hubSpotFakeToken,
  hubSpotHandlers,
  requestGate,
  storedRecord,
  testEngineLayer,
} from "@tandem/testkit";
import { Effect, Fiber, TestServices } from "effect";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll } from "vitest";
import hubspot from "../src/index.ts";

/*
 * Pushes to HubSpot are conditional, deletes included, over the HubSpot fake (MSW) on PostgreSQL.
 * HubSpot has no conditional write: its connector reads the versions (`batch/read`) just before
 * writing. A local delete meeting a remote edit made since the last pull follows the
 * delete-against-edit rule under both settings, audited; a local edit made while a push is in
 * flight (the write held at the fake's door) is pushed next, not lost to our own write.
 */

const baseUrl = "https://hubspot.conditional-push.test";
const clock = createManualClock(Date.UTC(2026, 4, 1));
const fake = createHubSpotFake({ baseUrl, clock });
const server = setupServer(...hubSpotHandlers(fake));
beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
afterEach(() => server.resetHandlers());
afterAll(() => {
  fake.close();
  server.close();
});

/** HubSpot contacts with neither batch nor conditional writes: the engine reads and compares versions itself. */
const plainWrites = {
  ...hubspot,
  name: "hubspot-plain-writes",
  entities: {
    ...hubspot.entities,
    contacts: {
      ...hubspot.entities.contacts,
      write: { ...hubspot.entities.contacts.write!, conditional: false, batch: undefined },
    },
  },
};

const setup = (deleteAgainstEdit?: "edit-wins" | "delete-wins", connector = "hubspot") =>
  Effect.gen(function* () {
    fake.reset();
    const ids = yield* createTestConnection(connector, { baseUrl, accessToken: hubSpotFakeToken });
    const target = { ...ids, entity: "contacts" } satisfies SyncTarget;
    if (deleteAgainstEdit !== undefined) {
      yield* setConnectionSettings(target.tenantId, target.connectionId, { contacts: { deleteAgainstEdit } });
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

layer(testEngineLayer({ dialect: "postgres", connectors: [hubspot, plainWrites] }), { timeout: 180_000 })(
  "pushes to HubSpot are conditional, deletes included",
  (it) => {
    const test = <A, E>(name: string, body: () => Effect.Effect<A, E, any>) =>
      it.effect(name, () => live(body()) as Effect.Effect<A, E, never>);

    test("a local delete meeting a remote edit since the last pull: edit wins (default), restored, audited", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const records = yield* Records;
        const target = yield* setup();
        const [a, b] = fake.seedContacts(2);
        yield* engine.run({ ...target, mode: "full" });
        tick();
        yield* records.delete(target.tenantId, { ...target, externalId: a!.id });
        yield* records.delete(target.tenantId, { ...target, externalId: b!.id });
        tick();
        fake.store.update("contacts", a!.id, { jobtitle: "Edited remotely" });
        tick();
        // Two deletes: one batch/archive, checked against a batch/read first.
        yield* engine.run({ ...target, mode: "push" });
        yield* engine.run({ ...target, mode: "push" });
        expect(fake.store.get("contacts", a!.id)).toMatchObject({ archived: false });
        expect(fake.store.get("contacts", a!.id)!.properties.jobtitle).toBe("Edited remotely");
        expect(fake.store.get("contacts", b!.id)!.archived).toBe(true);
        expect(yield* storedRecord(target, a!.id)).toMatchObject({
          deletedAt: null,
          syncStatus: "synced",
          data: { jobTitle: "Edited remotely" },
        });
        expect((yield* storedRecord(target, b!.id)).deletedAt).not.toBeNull();
        const audit = yield* auditOf(target, a!.id);
        expect(audit).toEqual([
          expect.objectContaining({
            status: "resolved",
            policy: "delete-against-edit:edit-wins",
            local: { deleted: true },
            remote: expect.objectContaining({ jobTitle: "Edited remotely" }),
          }),
        ]);
        expect(yield* auditOf(target, b!.id)).toEqual([]);
      }));

    test("a local delete meeting a remote edit since the last pull: delete wins, deleted, the edit audited", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const records = yield* Records;
        const target = yield* setup("delete-wins");
        const [a] = fake.seedContacts(1);
        yield* engine.run({ ...target, mode: "full" });
        tick();
        yield* records.delete(target.tenantId, { ...target, externalId: a!.id });
        tick();
        fake.store.update("contacts", a!.id, { jobtitle: "Edited remotely" });
        tick();
        yield* engine.run({ ...target, mode: "push" });
        yield* engine.run({ ...target, mode: "push" });
        expect(fake.store.get("contacts", a!.id)!.archived).toBe(true);
        expect(yield* storedRecord(target, a!.id)).toMatchObject({ syncStatus: "synced" });
        expect((yield* storedRecord(target, a!.id)).deletedAt).not.toBeNull();
        const audit = yield* auditOf(target, a!.id);
        expect(audit).toEqual([
          expect.objectContaining({
            status: "resolved",
            policy: "delete-against-edit:delete-wins",
            local: { deleted: true },
            remote: expect.objectContaining({ jobTitle: "Edited remotely" }),
          }),
        ]);
      }));

    test("an entity without conditional writes: the engine's own version check stops the delete (edit wins)", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const records = yield* Records;
        const target = yield* setup(undefined, "hubspot-plain-writes");
        const [a] = fake.seedContacts(1);
        yield* engine.run({ ...target, mode: "full" });
        tick();
        yield* records.delete(target.tenantId, { ...target, externalId: a!.id });
        tick();
        fake.store.update("contacts", a!.id, { jobtitle: "Edited remotely" });
        tick();
        yield* engine.run({ ...target, mode: "push" });
        yield* engine.run({ ...target, mode: "push" });
        expect(fake.store.get("contacts", a!.id)).toMatchObject({ archived: false });
        expect(yield* storedRecord(target, a!.id)).toMatchObject({
          deletedAt: null,
          syncStatus: "synced",
          data: { jobTitle: "Edited remotely" },
        });
        expect(yield* auditOf(target, a!.id)).toEqual([
          expect.objectContaining({ policy: "delete-against-edit:edit-wins", local: { deleted: true } }),
        ]);
      }));

    test("a local edit made while a push of the record is in flight is pushed next, not lost", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const records = yield* Records;
        const target = yield* setup();
        const [a] = fake.seedContacts(1);
        yield* engine.run({ ...target, mode: "full" });
        tick();
        yield* records.update(target.tenantId, { ...target, externalId: a!.id, fields: { jobTitle: "First" } });
        // The write (after the version check's batch/read) waits at HubSpot's door.
        const gate = requestGate("POST", /\/crm\/v3\/objects\/contacts\/batch\/update$/);
        server.use(gate.handler);
        const push = yield* Effect.fork(engine.run({ ...target, mode: "push" }));
        yield* Effect.promise(() => gate.arrived);
        yield* records.update(target.tenantId, {
          ...target,
          externalId: a!.id,
          fields: { jobTitle: "Second", phone: "+15550100" },
        });
        tick();
        gate.release();
        yield* Fiber.join(push);
        tick();
        yield* engine.run({ ...target, mode: "push" });
        expect(fake.store.get("contacts", a!.id)!.properties).toMatchObject({
          jobtitle: "Second",
          phone: "+15550100",
        });
        expect(yield* storedRecord(target, a!.id)).toMatchObject({
          syncStatus: "synced",
          pendingChanges: null,
          data: { jobTitle: "Second", phone: "+15550100" },
        });
        // Our own write was never taken for a remote edit.
        expect(yield* auditOf(target, a!.id)).toEqual([]);
      }));
  },
);
