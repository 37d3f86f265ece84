import { expect, layer } from "@effect/vitest";
import { EntitySync } from "@tandem/core";
import {
  createManualClock,
  createSalesforceFake,
  createTestConnection,
  dialects,
  salesforceFakeOAuthApp,
  salesforceHandlers,
  storedRecord,
  testEngineLayer,
} from "@tandem/testkit";
import { Effect, TestServices } from "effect";
import { setupServer } from "msw/node";
import { afterAll, beforeAll } from "vitest";
import salesforce from "../src/index.ts";

/*
 * Drift in Salesforce: a record's SystemModstamp is taken when its transaction writes, and a
 * long transaction commits after later ones. A delta whose cursor already passed that stamp
 * (beyond its overlap) never sees the change. Reconciliation lists `Id, SystemModstamp` and
 * re-fetches what is newer remotely, in SObject Collections batches. On PGlite and PostgreSQL,
 * against the Salesforce fake on a manual clock.
 */

const instanceUrl = "https://acme.drift.my.salesforce.test";
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

const hour = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();

/** Engine tests run on the real clock: the rate budget must not wait on a TestClock nobody advances. */
const live = TestServices.provideLive;

for (const dialect of dialects) {
  layer(testEngineLayer({ dialect, connectors: [salesforce] }), { timeout: 120_000 })(
    `Salesforce drift repaired by reconciliation on ${dialect}`,
    (it) => {
      it.effect("a change committed late (stamp behind the delta cursor) is re-fetched by reconciliation", () =>
        live(
          Effect.gen(function* () {
            const engine = yield* EntitySync;
            fake.reset();
            const target = { ...(yield* createTestConnection("salesforce", config)), entity: "contacts" };
            const seeded = fake.seedContacts(250);
            const fullAt = clock.now();
            yield* engine.run({ ...target, mode: "full" });
            const [late, early] = seeded;

            clock.advance(hour);
            fake.store.update("Contact", early!.Id, { Phone: "+15550001" });
            expect(yield* engine.run({ ...target, mode: "delta" })).toMatchObject({ updated: 1, errors: [] });

            // A transaction that started half an hour ago commits now: its stamp is half an hour old,
            // before the delta cursor minus the 5-minute overlap.
            const now = clock.now();
            clock.set(fullAt + hour / 2);
            fake.store.update("Contact", late!.Id, { LastName: "Late committer" });
            clock.set(now + 1_000);
            expect(yield* engine.run({ ...target, mode: "delta" })).toMatchObject({ updated: 0, errors: [] });
            expect((yield* storedRecord(target, late!.Id)).data.lastName).not.toBe("Late committer");

            const before = fake.requests().length;
            const reconciled = yield* engine.run({ ...target, mode: "reconcile" });
            expect(reconciled).toMatchObject({ drifted: 1, updated: 1, created: 0, deleted: 0, errors: [] });
            const repaired = yield* storedRecord(target, late!.Id);
            expect(repaired.data.lastName).toBe("Late committer");
            expect(repaired.data.updatedAt).toBe(iso(fake.store.get("Contact", late!.Id)!.SystemModstamp));
            const requests = fake.requests().slice(before);
            expect(requests.some((r) => r.soql === "SELECT Id, SystemModstamp FROM Contact")).toBe(true);
            expect(requests.filter((r) => r.path.includes("/composite/sobjects/Contact?"))).toHaveLength(1);

            const again = yield* engine.run({ ...target, mode: "reconcile" });
            expect(again).toMatchObject({ drifted: 0, updated: 0, errors: [] });
          }),
        ),
      );
    },
  );
}
