import { expect, layer } from "@effect/vitest";
import { EntitySync, type SyncTarget } from "@tandem/core";
import { createTestConnection, dialects, hubSpotFakeToken, storedRecord, testEngineLayer } from "@tandem/testkit";
import { Effect, TestServices } from "effect";
import hubspot from "../src/index.ts";
import { hubSpotFakeWithReceiver } from "./support/fakeWithReceiver.ts";

/*
 * Drift: an update no delta sees, because HubSpot's search (what deltas read) does not return
 * the object, as when its index lags a write. Reconciliation lists ids with their modification
 * time and re-fetches what is newer remotely. Through the engine on PGlite and PostgreSQL,
 * against the HubSpot fake on a manual clock.
 */

const baseUrl = "https://hubspot.drift.test";
const { clock, fake } = hubSpotFakeWithReceiver({
  baseUrl,
  receiverUrl: "https://tandem.test/webhooks/hubspot/drift-test",
  start: Date.UTC(2026, 4, 1),
});

const setup = () =>
  Effect.gen(function* () {
    fake.reset();
    fake.knobs.rateLimit = { max: 1_000_000, intervalMs: 1_000 };
    const ids = yield* createTestConnection("hubspot", { baseUrl, accessToken: hubSpotFakeToken });
    return { ...ids, entity: "contacts" } satisfies SyncTarget;
  });

const tick = () => clock.advance(1_000);
const iso = (ms: number) => new Date(ms).toISOString();

/** Engine tests run on the real clock: the rate budget must not wait on a TestClock nobody advances. */
const live = TestServices.provideLive;

for (const dialect of dialects) {
  layer(testEngineLayer({ dialect, connectors: [hubspot] }), { timeout: 120_000 })(
    `HubSpot drift repaired by reconciliation on ${dialect}`,
    (it) => {
      const test = <A, E>(name: string, body: () => Effect.Effect<A, E, any>) =>
        it.effect(name, () => live(body()) as Effect.Effect<A, E, never>);

      test("an update two deltas missed (hidden from search) is re-fetched by the next reconciliation", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const target = yield* setup();
          const seeded = fake.seedContacts(30);
          yield* engine.run({ ...target, mode: "full" });
          const [, missed, seen] = seeded;
          const before = yield* storedRecord(target, missed!.id);

          // Search lags the write of `missed`; `seen` is searchable as usual.
          tick();
          fake.hideFromSearch(missed!.id);
          fake.store.update("contacts", missed!.id, { lifecyclestage: "customer", jobtitle: "CFO" });
          fake.store.update("contacts", seen!.id, { phone: "+15550100" });
          const firstDelta = yield* engine.run({ ...target, mode: "delta" });
          expect(firstDelta).toMatchObject({ updated: 1, errors: [] });
          expect((yield* storedRecord(target, seen!.id)).data.phone).toBe("+15550100");
          expect((yield* storedRecord(target, missed!.id)).data).toEqual(before.data);

          // The next delta misses it as well: its cursor is past the update already.
          tick();
          const secondDelta = yield* engine.run({ ...target, mode: "delta" });
          expect(secondDelta).toMatchObject({ updated: 0, errors: [] });
          expect((yield* storedRecord(target, missed!.id)).data).toEqual(before.data);

          const requestsBefore = fake.requests().length;
          const reconciled = yield* engine.run({ ...target, mode: "reconcile" });
          expect(reconciled).toMatchObject({ drifted: 1, updated: 1, created: 0, deleted: 0, errors: [] });
          const repaired = yield* storedRecord(target, missed!.id);
          expect(repaired.data).toMatchObject({ lifecycleStage: "customer", jobTitle: "CFO" });
          expect(repaired.data.updatedAt).toBe(iso(fake.store.get("contacts", missed!.id)!.updatedAt));
          const requests = fake.requests().slice(requestsBefore);
          // The listing asked for the one property, and the drifted record came in a batch read.
          expect(
            requests.filter((r) => r.method === "GET").every((r) => r.path.includes("properties=lastmodifieddate")),
          ).toBe(true);
          expect(requests.filter((r) => r.path.endsWith("/batch/read"))).toHaveLength(1);

          // Repaired for good: the next reconciliation finds nothing newer.
          const again = yield* engine.run({ ...target, mode: "reconcile" });
          expect(again).toMatchObject({ drifted: 0, updated: 0, errors: [] });
        }));

      test("companies list hs_lastmodifieddate; a missed update and a missed creation are both repaired", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const target = { ...(yield* setup()), entity: "companies" };
          const seeded = fake.seedCompanies(8);
          yield* engine.run({ ...target, mode: "full" });
          tick();
          const [missed] = seeded;
          fake.hideFromSearch(missed!.id);
          fake.store.update("companies", missed!.id, { city: "Reykjavik" });
          const created = fake.store.create("companies", { name: "Hidden Co" });
          if ("failure" in created) throw new Error(created.failure.message);
          fake.hideFromSearch(created.object.id);
          expect(yield* engine.run({ ...target, mode: "delta" })).toMatchObject({ created: 0, updated: 0 });
          const reconciled = yield* engine.run({ ...target, mode: "reconcile" });
          expect(reconciled).toMatchObject({ drifted: 1, updated: 1, created: 1, errors: [] });
          expect((yield* storedRecord(target, missed!.id)).data.city).toBe("Reykjavik");
          expect((yield* storedRecord(target, created.object.id)).data.name).toBe("Hidden Co");
        }));
    },
  );
}
