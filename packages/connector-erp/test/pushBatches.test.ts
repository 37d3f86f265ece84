import { expect, layer } from "@effect/vitest";
import { Conflicts, EntitySync, RecordStore, type SyncTarget } from "@tandem/core";
import {
  businessCentralFakeApp,
  businessCentralFakeIds,
  businessCentralHandlers,
  createBusinessCentralFake,
  createManualClock,
  createTestConnection,
  storedRecord,
  testEngineLayer,
} from "@tandem/testkit";
import { Effect, TestServices } from "effect";
import { setupServer } from "msw/node";
import { afterAll, beforeAll } from "vitest";
import erp from "../src/index.ts";

/*
 * Pushes to Business Central through the engine: `$batch` writes (100 operations a request, each
 * with If-Match the record's etag), per-record failures, and an item changed in BC between pull
 * and push (409 Request_EntityChanged) merged instead of overwritten. PostgreSQL.
 */

const baseUrl = "https://bc.push-batches.test";
const authorityUrl = "https://login.push-batches.test";
const clock = createManualClock(Date.UTC(2026, 4, 1));
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
  pageSize: 100,
  requestsPerSecond: 10_000,
};

/** BC whose items settle overlapping edits in the remote's favour (the default is manual). */
const remoteWins = {
  ...erp,
  name: "erp-remote-wins",
  entities: {
    ...erp.entities,
    items: { ...erp.entities.items, conflictPolicy: { kind: "source-priority", default: "remote" } as const },
  },
};

const setup = (connector = "erp") =>
  Effect.gen(function* () {
    fake.reset();
    const ids = yield* createTestConnection(connector, config);
    return { ...ids, entity: "items" } satisfies SyncTarget;
  });

const tick = () => clock.advance(1_000);
const since = (from: number) => fake.requests().slice(from);
const isBatch = (r: { method: string; url: string }) => r.method === "POST" && r.url.split("?")[0]!.endsWith("/$batch");
const isSingleItemWrite = (r: { method: string; url: string }) => r.method === "PATCH" && r.url.includes("/items(");

const live = TestServices.provideLive;

layer(testEngineLayer({ dialect: "postgres", connectors: [erp, remoteWins] }), { timeout: 180_000 })(
  "pushes to Business Central in batches, conditionally",
  (it) => {
    const test = <A, E>(name: string, body: () => Effect.Effect<A, E, any>) =>
      it.effect(name, () => live(body()) as Effect.Effect<A, E, never>);

    test("150 edits go in two $batch requests; a refused one fails alone with BC's message", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const store = yield* RecordStore;
        const target = yield* setup();
        const seeded = fake.seedItems(150);
        yield* engine.run({ ...target, mode: "full" });
        tick();
        for (const [i, item] of seeded.entries()) {
          // The 10th changes a read-only field: BC refuses that operation alone.
          yield* store.applyLocalChange(target, item.id, i === 9 ? { inventory: 1_000 } : { unitPrice: 100 + i });
        }
        const from = fake.requests().length;
        const pushed = yield* engine.run({ ...target, mode: "push" });
        expect(pushed.updated).toBe(149);
        expect(pushed.errors).toEqual([expect.objectContaining({ externalId: seeded[9]!.id, type: "InvalidRecord" })]);
        const batches = since(from).filter(isBatch);
        // Chunks go 4 at a time, so they may arrive in either order.
        expect(batches.map((r) => r.operations ?? 0).sort((a, b) => b - a)).toEqual([100, 50]);
        expect(since(from).filter(isSingleItemWrite)).toHaveLength(0);
        for (const [i, item] of seeded.entries()) {
          if (i === 9) continue;
          expect(fake.store.get("items", item.id)!.fields.unitPrice).toBe(100 + i);
          expect(yield* storedRecord(target, item.id)).toMatchObject({ syncStatus: "synced", pendingChanges: null });
        }
        expect(yield* storedRecord(target, seeded[9]!.id)).toMatchObject({ syncStatus: "failed" });
      }));

    test("an item changed in BC between pull and push: 409 Request_EntityChanged becomes a merge, never an overwrite", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const store = yield* RecordStore;
        const conflicts = yield* Conflicts;
        const target = yield* setup("erp-remote-wins");
        const [a, b, c] = fake.seedItems(3);
        yield* engine.run({ ...target, mode: "full" });
        tick();
        yield* store.applyLocalChange(target, a!.id, { unitPrice: 11 });
        yield* store.applyLocalChange(target, b!.id, { displayName: "Local name" });
        yield* store.applyLocalChange(target, c!.id, { unitPrice: 33 });
        tick();
        fake.store.update("items", a!.id, { displayName: "Remote name A" });
        fake.store.update("items", b!.id, { displayName: "Remote name B" });
        tick();
        const first = yield* engine.run({ ...target, mode: "push" });
        expect(first.updated).toBe(1);
        expect(first.errors.map((e) => e.externalId).sort()).toEqual([a!.id, b!.id].sort());
        expect(first.errors[0]!.message).toContain("merged");
        yield* engine.run({ ...target, mode: "push" });
        expect(fake.store.get("items", a!.id)!.fields).toMatchObject({ displayName: "Remote name A", unitPrice: 11 });
        expect(fake.store.get("items", b!.id)!.fields.displayName).toBe("Remote name B");
        expect(fake.store.get("items", c!.id)!.fields.unitPrice).toBe(33);
        expect(yield* storedRecord(target, a!.id)).toMatchObject({ syncStatus: "synced", pendingChanges: null });
        expect((yield* storedRecord(target, b!.id)).data.displayName).toBe("Remote name B");
        const audit = (yield* conflicts.list(target.tenantId, { connectionId: target.connectionId })).items;
        expect(audit).toEqual([
          expect.objectContaining({ externalId: b!.id, fields: ["displayName"], status: "resolved" }),
        ]);
      }));
  },
);
