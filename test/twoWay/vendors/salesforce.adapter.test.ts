import { expect, layer } from "@effect/vitest";
import salesforce, { type SalesforceConfig } from "@tandem/connector-salesforce";
import { EntitySync, Records, type SyncTarget } from "@tandem/core";
import { createTestConnection, loopbackEgressOptions, storedRecord, testEngineLayer } from "@tandem/testkit";
import { Effect, TestServices } from "effect";
import { setupServer } from "msw/node";
import { afterAll, beforeAll } from "vitest";
import type { VendorNotification, VendorTransport } from "../TwoWayVendor.ts";
import { salesforceVendor } from "./salesforce.ts";

/*
 * The Salesforce adapter of the two-way matrix, checked against the connector and the engine
 * (PostgreSQL): what it creates, edits and removes as a user is what a pull and the connector's
 * webhook receiver see; what the engine pushes is what `writes()` and `read()` report.
 */

const server = setupServer();
// Loopback sessions are reached over the network; anything else unhandled is a mistake.
beforeAll(() =>
  server.listen({
    onUnhandledFrame: ({ frame, defaults }) => {
      const request = (frame.data as { readonly request?: Request }).request;
      if (request === undefined || new URL(request.url).hostname !== "127.0.0.1") defaults.error();
    },
  }),
);
afterAll(() => server.close());

const endpoint = "https://tandem.test/webhooks/salesforce/adapter";

/** The notification as the connector's receiver takes it: verified, then parsed into events. */
const received = (config: unknown, notification: VendorNotification) => {
  const request = {
    method: notification.method,
    url: endpoint,
    headers: new Headers(notification.headers),
    rawBody: notification.body,
  };
  // verify reads the org id only; the config as entered is enough of a decoded one.
  const ctx = { config: config as SalesforceConfig, now: new Date() };
  return { verified: salesforce.webhooks!.verify(ctx, request), events: salesforce.webhooks!.parse(request) };
};

const live = TestServices.provideLive;

layer(testEngineLayer({ dialect: "postgres", connectors: [salesforce], config: { egress: loopbackEgressOptions } }), {
  timeout: 180_000,
})("the Salesforce two-way adapter", (it) => {
  for (const transport of ["msw", "loopback"] satisfies ReadonlyArray<VendorTransport>) {
    it.effect(`over ${transport}: user changes reach the engine, the engine's writes are counted and readable`, () =>
      live(
        Effect.gen(function* () {
          const session = yield* Effect.promise(() => salesforceVendor.start(transport));
          server.resetHandlers(...session.handlers);
          yield* Effect.addFinalizer(() => Effect.promise(() => session.close()));
          const engine = yield* EntitySync;
          const records = yield* Records;
          const ids = yield* createTestConnection(salesforceVendor.connector, session.config);
          const target = { ...ids, entity: salesforceVendor.entity } satisfies SyncTarget;

          // A user's creates and edit: read back normalized; each later by a whole second.
          const first = yield* Effect.promise(() => session.create(salesforceVendor.sample(1)));
          const second = yield* Effect.promise(() => session.create(salesforceVendor.sample(2)));
          expect(session.read(first)).toEqual({ ...salesforceVendor.sample(1), accountId: null });
          expect(session.liveIds()).toEqual([first, second]);
          yield* Effect.promise(() => session.edit(first, { phone: "+1 555 0000001" }));
          expect(session.read(first)).toMatchObject({ phone: "+1 555 0000001", firstName: "First1" });

          // A pull sees them under the same field names.
          yield* engine.run({ ...target, mode: "full" });
          expect((yield* storedRecord(target, first)).data).toMatchObject({
            ...salesforceVendor.sample(1),
            phone: "+1 555 0000001",
          });
          expect(session.writes()).toEqual([]);

          // The engine's writes: a local edit and two local creates, one refused per item.
          yield* records.update(target.tenantId, { ...target, externalId: second, fields: { firstName: "Local" } });
          const refused = yield* Effect.promise(() => salesforceVendor.refusedCreate(session));
          yield* records.create(target.tenantId, { ...target, localId: "host-3", fields: salesforceVendor.sample(3) });
          yield* records.create(target.tenantId, { ...target, localId: "host-4", fields: refused.fields });
          const pushed = yield* engine.run({ ...target, mode: "push" });
          expect(pushed).toMatchObject({ created: 1, updated: 1 });
          expect(pushed.errors).toHaveLength(1);
          expect(pushed.errors[0]!.message).toMatch(refused.message);
          expect(session.read(second)).toMatchObject({ firstName: "Local" });
          const third = session.liveIds().find((id) => id !== first && id !== second)!;
          expect(session.read(third)).toMatchObject(salesforceVendor.sample(3));
          const writes = session.writes();
          expect(writes.filter((w) => w.kind === "update")).toEqual([{ kind: "update", ids: [second] }]);
          // The collection create is one write; the refused record has no id in it.
          expect(writes.filter((w) => w.kind === "create")).toEqual([{ kind: "create", ids: [third] }]);

          // A change notification: verified, parsed, and the record it names synced.
          yield* Effect.promise(() => session.edit(second, { phone: "+1 555 0000222" }));
          const change = received(session.config, session.notification(second, "change", endpoint));
          expect(change.verified).toBe(true);
          expect(change.events).toEqual([expect.objectContaining({ externalId: second, entity: "contacts" })]);
          const changed = yield* engine.syncRecord(target, change.events[0]!);
          expect(changed.action).toBe("updated");
          expect((yield* storedRecord(target, second)).data).toMatchObject({
            firstName: "Local",
            phone: "+1 555 0000222",
          });

          // A deletion: Salesforce sends no notification of it, but one of the last change arrives late.
          yield* Effect.promise(() => session.remove(second));
          expect(session.read(second)).toBeUndefined();
          expect(session.liveIds()).not.toContain(second);
          const late = received(session.config, session.notification(second, "delete", endpoint));
          expect(late.verified).toBe(true);
          expect((yield* engine.syncRecord(target, late.events[0]!)).action).toBe("deleted");
          expect((yield* storedRecord(target, second)).deletedAt).not.toBeNull();

          // A local delete is one delete write.
          yield* records.delete(target.tenantId, { ...target, externalId: first });
          expect((yield* engine.run({ ...target, mode: "push" })).deleted).toBe(1);
          expect(session.read(first)).toBeUndefined();
          expect(session.writes().at(-1)).toEqual({ kind: "delete", ids: [first] });

          session.reset();
          expect(session.writes()).toEqual([]);
          expect(session.liveIds()).toEqual([]);
        }),
      ).pipe(Effect.scoped),
    );
  }

  it.effect("a user's edit lands a whole second after the record's last change, so a conditional write sees it", () =>
    live(
      Effect.gen(function* () {
        const session = yield* Effect.promise(() => salesforceVendor.start("msw"));
        server.resetHandlers(...session.handlers);
        yield* Effect.addFinalizer(() => Effect.promise(() => session.close()));
        const engine = yield* EntitySync;
        const records = yield* Records;
        const ids = yield* createTestConnection(salesforceVendor.connector, session.config);
        const target = { ...ids, entity: salesforceVendor.entity } satisfies SyncTarget;
        const id = yield* Effect.promise(() => session.create(salesforceVendor.sample(1)));
        yield* Effect.promise(() => session.edit(id, { phone: "+1 555 0001111" }));
        yield* engine.run({ ...target, mode: "full" });
        const pulled = (yield* storedRecord(target, id)).data as { createdAt: string; lastModifiedAt: string };
        const secondOf = (iso: string) => Math.floor(Date.parse(iso) / 1000);
        expect(secondOf(pulled.lastModifiedAt)).toBeGreaterThan(secondOf(pulled.createdAt));
        // Within the same wall-clock second as the pull, most likely: Salesforce's 412 needs the next one.
        yield* Effect.promise(() => session.edit(id, { phone: "+1 555 0009999" }));
        yield* records.update(target.tenantId, { ...target, externalId: id, fields: { firstName: "Local" } });
        yield* engine.run({ ...target, mode: "push" });
        yield* engine.run({ ...target, mode: "push" });
        // Merged, not overwritten: the remote phone stays, the local first name goes.
        expect(session.read(id)).toMatchObject({ phone: "+1 555 0009999", firstName: "Local" });
        // The refused conditional write is a write request received, with no record written.
        expect(session.writes()).toEqual([
          { kind: "update", ids: [] },
          { kind: "update", ids: [id] },
        ]);
      }),
    ).pipe(Effect.scoped),
  );
});
