import { expect, layer } from "@effect/vitest";
import { Conflicts, EntitySync, Records, type SyncTarget, setConnectionSettings } from "@tandem/core";
import {
  createManualClock,
  createSalesforceFake,
  createTestConnection,
  requestGate,
  salesforceFakeOAuthApp,
  salesforceHandlers,
  storedRecord,
  testEngineLayer,
} from "@tandem/testkit";
import { Effect, Fiber, TestServices } from "effect";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll } from "vitest";
import salesforce from "../src/index.ts";

/*
 * Pushes to Salesforce are conditional, deletes included, over the Salesforce fake (MSW) on
 * PostgreSQL. Updates carry If-Unmodified-Since; DELETE takes no conditional header (neither
 * sObject Rows nor Collections), so a delete is checked against a retrieve just before. A local
 * delete meeting a remote edit made since the last pull follows the delete-against-edit rule under
 * both settings, audited; a local edit made while a push is in flight (the PATCH held at the
 * fake's door) is pushed next, not lost to our own write.
 */

const instanceUrl = "https://acme.conditional-push.my.salesforce.test";
const clock = createManualClock(Date.UTC(2026, 4, 1));
const fake = createSalesforceFake({ instanceUrl, clock, knobs: { minBatchSize: 1 } });
const server = setupServer(...salesforceHandlers(fake));
beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
afterEach(() => server.resetHandlers());
afterAll(() => {
  fake.close();
  server.close();
});

const config = {
  instanceUrl,
  clientId: salesforceFakeOAuthApp.clientId,
  clientSecret: salesforceFakeOAuthApp.clientSecret,
  refreshToken: salesforceFakeOAuthApp.refreshToken,
  pageSize: 200,
  outboundMessageOrgId: fake.organizationId,
};

const setup = (deleteAgainstEdit?: "edit-wins" | "delete-wins") =>
  Effect.gen(function* () {
    fake.reset();
    const ids = yield* createTestConnection("salesforce", config);
    const target = { ...ids, entity: "accounts" } satisfies SyncTarget;
    if (deleteAgainstEdit !== undefined) {
      yield* setConnectionSettings(target.tenantId, target.connectionId, { accounts: { deleteAgainstEdit } });
    }
    return target;
  });

/** Salesforce's versions are whole seconds (If-Unmodified-Since): every change below is a second later. */
const tick = () => clock.advance(1_000);

const auditOf = (target: SyncTarget, externalId: string) =>
  Effect.map(
    Effect.flatMap(Conflicts, (c) => c.list(target.tenantId, { connectionId: target.connectionId })),
    (page) => page.items.filter((c) => c.externalId === externalId),
  );

const live = TestServices.provideLive;

layer(testEngineLayer({ dialect: "postgres", connectors: [salesforce] }), { timeout: 180_000 })(
  "pushes to Salesforce are conditional, deletes included",
  (it) => {
    const test = <A, E>(name: string, body: () => Effect.Effect<A, E, any>) =>
      it.effect(name, () => live(body()) as Effect.Effect<A, E, never>);

    test("a local delete meeting a remote edit since the last pull: edit wins (default), restored, audited", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const records = yield* Records;
        const target = yield* setup();
        const [a, b] = fake.seedAccounts(2);
        yield* engine.run({ ...target, mode: "full" });
        tick();
        yield* records.delete(target.tenantId, { ...target, externalId: a!.Id });
        yield* records.delete(target.tenantId, { ...target, externalId: b!.Id });
        tick();
        fake.store.update("Account", a!.Id, { Industry: "Edited remotely" });
        tick();
        // Two deletes: one collection DELETE, after a retrieve of the versions.
        yield* engine.run({ ...target, mode: "push" });
        yield* engine.run({ ...target, mode: "push" });
        expect(fake.store.get("Account", a!.Id)).toMatchObject({ IsDeleted: false });
        expect(fake.store.get("Account", a!.Id)!.fields.Industry).toBe("Edited remotely");
        expect(fake.store.get("Account", b!.Id)!.IsDeleted).toBe(true);
        expect(yield* storedRecord(target, a!.Id)).toMatchObject({
          deletedAt: null,
          syncStatus: "synced",
          data: { industry: "Edited remotely" },
        });
        expect((yield* storedRecord(target, b!.Id)).deletedAt).not.toBeNull();
        expect(yield* auditOf(target, a!.Id)).toEqual([
          expect.objectContaining({
            status: "resolved",
            policy: "delete-against-edit:edit-wins",
            local: { deleted: true },
            remote: expect.objectContaining({ industry: "Edited remotely" }),
          }),
        ]);
        expect(yield* auditOf(target, b!.Id)).toEqual([]);
      }));

    test("a local delete meeting a remote edit since the last pull: delete wins, deleted, the edit audited", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const records = yield* Records;
        const target = yield* setup("delete-wins");
        const [a] = fake.seedAccounts(1);
        yield* engine.run({ ...target, mode: "full" });
        tick();
        yield* records.delete(target.tenantId, { ...target, externalId: a!.Id });
        tick();
        fake.store.update("Account", a!.Id, { Industry: "Edited remotely" });
        tick();
        yield* engine.run({ ...target, mode: "push" });
        yield* engine.run({ ...target, mode: "push" });
        expect(fake.store.get("Account", a!.Id)!.IsDeleted).toBe(true);
        expect(yield* storedRecord(target, a!.Id)).toMatchObject({ syncStatus: "synced" });
        expect((yield* storedRecord(target, a!.Id)).deletedAt).not.toBeNull();
        expect(yield* auditOf(target, a!.Id)).toEqual([
          expect.objectContaining({
            status: "resolved",
            policy: "delete-against-edit:delete-wins",
            local: { deleted: true },
            remote: expect.objectContaining({ industry: "Edited remotely" }),
          }),
        ]);
      }));

    test("a local edit made while a push of the record is in flight is pushed next, not lost", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const records = yield* Records;
        const target = yield* setup();
        const [a] = fake.seedAccounts(1);
        yield* engine.run({ ...target, mode: "full" });
        tick();
        yield* records.update(target.tenantId, { ...target, externalId: a!.Id, fields: { industry: "First" } });
        tick();
        // The conditional PATCH waits at Salesforce's door.
        const gate = requestGate("PATCH", /\/sobjects\/Account\/[^/]+$/);
        server.use(gate.handler);
        const push = yield* Effect.fork(engine.run({ ...target, mode: "push" }));
        yield* Effect.promise(() => gate.arrived);
        yield* records.update(target.tenantId, {
          ...target,
          externalId: a!.Id,
          fields: { industry: "Second", phone: "+1 555 0100" },
        });
        gate.release();
        yield* Fiber.join(push);
        tick();
        yield* engine.run({ ...target, mode: "push" });
        expect(fake.store.get("Account", a!.Id)!.fields).toMatchObject({ Industry: "Second", Phone: "+1 555 0100" });
        expect(yield* storedRecord(target, a!.Id)).toMatchObject({
          syncStatus: "synced",
          pendingChanges: null,
          data: { industry: "Second", phone: "+1 555 0100" },
        });
        // Our own write was never taken for a remote edit.
        expect(yield* auditOf(target, a!.Id)).toEqual([]);
      }));
  },
);
