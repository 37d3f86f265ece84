import { expect, layer } from "@effect/vitest";
import { EntitySync } from "@tandem/core";
import {
  businessCentralFakeApp,
  businessCentralFakeIds,
  businessCentralHandlers,
  createBusinessCentralFake,
  createManualClock,
  createTestConnection,
  dialects,
  storedRecord,
  testEngineLayer,
} from "@tandem/testkit";
import { Effect, TestServices } from "effect";
import { setupServer } from "msw/node";
import { afterAll, beforeAll } from "vitest";
import erp from "../src/index.ts";

/*
 * Drift in Business Central: an entity whose `lastModifiedDateTime` was taken by a transaction
 * that committed after the delta cursor moved past it. Reconciliation lists
 * `$select=id,lastModifiedDateTime` and re-fetches what is newer remotely (one GET per entity:
 * BC has no batch read). On PGlite and PostgreSQL, against the BC fake on a manual clock.
 */

const baseUrl = "https://bc.drift.test";
const authorityUrl = "https://login.drift.test";
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
  pageSize: 40,
  requestsPerSecond: 10_000,
};

const hour = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();

/** Engine tests run on the real clock: the rate budget must not wait on a TestClock nobody advances. */
const live = TestServices.provideLive;

for (const dialect of dialects) {
  layer(testEngineLayer({ dialect, connectors: [erp] }), { timeout: 120_000 })(
    `Business Central drift repaired by reconciliation on ${dialect}`,
    (it) => {
      it.effect("a change committed late (time behind the delta cursor) is re-fetched by reconciliation", () =>
        live(
          Effect.gen(function* () {
            const engine = yield* EntitySync;
            fake.reset();
            const target = { ...(yield* createTestConnection("erp", config)), entity: "items" };
            const seeded = fake.seedItems(90);
            const fullAt = clock.now();
            yield* engine.run({ ...target, mode: "full" });
            const [late, early] = seeded;

            clock.advance(hour);
            fake.store.update("items", early!.id, { unitPrice: 12 });
            expect(yield* engine.run({ ...target, mode: "delta" })).toMatchObject({ updated: 1, errors: [] });

            // Half an hour old when it commits: behind the delta cursor minus the 5-minute overlap.
            const now = clock.now();
            clock.set(fullAt + hour / 2);
            fake.store.update("items", late!.id, { displayName: "Late committer" });
            clock.set(now + 1_000);
            expect(yield* engine.run({ ...target, mode: "delta" })).toMatchObject({ updated: 0, errors: [] });
            expect((yield* storedRecord(target, late!.id)).data.displayName).not.toBe("Late committer");

            const before = fake.requests().length;
            const reconciled = yield* engine.run({ ...target, mode: "reconcile" });
            expect(reconciled).toMatchObject({ drifted: 1, updated: 1, created: 0, deleted: 0, errors: [] });
            const repaired = yield* storedRecord(target, late!.id);
            expect(repaired.data.displayName).toBe("Late committer");
            expect(repaired.data.updatedAt).toBe(
              iso(fake.records("items").find((r) => r.id === late!.id)!.lastModifiedAt),
            );
            const requests = fake.requests().slice(before);
            const listings = requests.filter((r) => r.url.includes("$select="));
            expect(listings.length).toBeGreaterThan(1);
            expect(listings.every((r) => r.url.includes("$select=id,lastModifiedDateTime"))).toBe(true);
            expect(requests.filter((r) => r.url.includes(`items(${late!.id})`))).toHaveLength(1);

            const again = yield* engine.run({ ...target, mode: "reconcile" });
            expect(again).toMatchObject({ drifted: 0, updated: 0, errors: [] });
          }),
        ),
      );
    },
  );
}
