import { expect, layer } from "@effect/vitest";
import { Conflicts, EntitySync, RecordStore, type SyncTarget } from "@tandem/core";
import {
  createManualClock,
  createSalesforceFake,
  createTestConnection,
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
 * Pushes to Salesforce through the engine: batch writes (Composite for conditional updates, each
 * subrequest with If-Unmodified-Since), per-record failures, and a record changed at Salesforce
 * between pull and push (412) merged instead of overwritten. PostgreSQL; the fake on a manual clock.
 */

const instanceUrl = "https://acme.push-batches.my.salesforce.test";
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
  pageSize: 200,
  outboundMessageOrgId: fake.organizationId,
};

/** Salesforce whose accounts settle overlapping edits in the remote's favour (the default is manual). */
const remoteWins = {
  ...salesforce,
  name: "salesforce-remote-wins",
  entities: {
    ...salesforce.entities,
    accounts: {
      ...salesforce.entities.accounts,
      conflictPolicy: { kind: "source-priority", default: "remote" } as const,
    },
  },
};

const setup = (connector = "salesforce") =>
  Effect.gen(function* () {
    fake.reset();
    const ids = yield* createTestConnection(connector, config);
    return { ...ids, entity: "accounts" } satisfies SyncTarget;
  });

const tick = () => clock.advance(1_000);

const since = (from: number) => fake.requests().slice(from);
const isSingleAccountWrite = (r: { method: string; path: string }) =>
  r.method === "PATCH" && /\/sobjects\/Account\/[^/]+$/.test(r.path.split("?")[0]!);

const live = TestServices.provideLive;

layer(testEngineLayer({ dialect: "postgres", connectors: [salesforce, remoteWins] }), { timeout: 180_000 })(
  "pushes to Salesforce in batches, conditionally",
  (it) => {
    const test = <A, E>(name: string, body: () => Effect.Effect<A, E, any>) =>
      it.effect(name, () => live(body()) as Effect.Effect<A, E, never>);

    test("60 edits go in composite requests of 25; a refused one fails alone with Salesforce's message", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const store = yield* RecordStore;
        const target = yield* setup();
        const seeded = fake.seedAccounts(60);
        yield* engine.run({ ...target, mode: "full" });
        tick();
        for (const [i, account] of seeded.entries()) {
          // The 5th clears a required field: REQUIRED_FIELD_MISSING for it alone.
          yield* store.applyLocalChange(target, account.Id, i === 4 ? { name: null } : { industry: `Industry ${i}` });
        }
        const from = fake.requests().length;
        const pushed = yield* engine.run({ ...target, mode: "push" });
        expect(pushed.updated).toBe(59);
        expect(pushed.errors).toEqual([expect.objectContaining({ externalId: seeded[4]!.Id, type: "InvalidRecord" })]);
        expect(pushed.errors[0]!.message).toContain("REQUIRED_FIELD_MISSING");
        const composites = since(from).filter((r) => r.method === "POST" && /\/composite$/.test(r.path.split("?")[0]!));
        // 60 conditional updates, 25 subrequests a composite request: 3 requests, not 60.
        expect(composites).toHaveLength(3);
        expect(since(from).filter(isSingleAccountWrite)).toHaveLength(0);
        for (const [i, account] of seeded.entries()) {
          if (i === 4) continue;
          expect(fake.store.get("Account", account.Id)!.fields.Industry).toBe(`Industry ${i}`);
          expect(yield* storedRecord(target, account.Id)).toMatchObject({ syncStatus: "synced", pendingChanges: null });
        }
        expect(fake.store.get("Account", seeded[4]!.Id)!.fields.Name).toBe(seeded[4]!.fields.Name);
        expect(yield* storedRecord(target, seeded[4]!.Id)).toMatchObject({ syncStatus: "failed" });
      }));

    test("a remote edit made between pull and push: Salesforce's 412 becomes a merge, never an overwrite", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const store = yield* RecordStore;
        const conflicts = yield* Conflicts;
        const target = yield* setup("salesforce-remote-wins");
        const [a, b, c] = fake.seedAccounts(3);
        yield* engine.run({ ...target, mode: "full" });
        tick();
        yield* store.applyLocalChange(target, a!.Id, { industry: "Local industry" });
        yield* store.applyLocalChange(target, b!.Id, { name: "Local name" });
        yield* store.applyLocalChange(target, c!.Id, { industry: "Unmoved" });
        tick();
        fake.store.update("Account", a!.Id, { Name: "Remote name A" });
        fake.store.update("Account", b!.Id, { Name: "Remote name B" });
        tick();
        const from = fake.requests().length;
        const first = yield* engine.run({ ...target, mode: "push" });
        // c was written; a and b were refused (412) and merged with Salesforce's records.
        expect(first.updated).toBe(1);
        expect(since(from).some((r) => r.status === 412 || r.path.includes("composite"))).toBe(true);
        yield* engine.run({ ...target, mode: "push" });
        expect(fake.store.get("Account", a!.Id)!.fields).toMatchObject({
          Name: "Remote name A",
          Industry: "Local industry",
        });
        expect(fake.store.get("Account", b!.Id)!.fields.Name).toBe("Remote name B");
        expect(fake.store.get("Account", c!.Id)!.fields.Industry).toBe("Unmoved");
        expect(yield* storedRecord(target, a!.Id)).toMatchObject({ syncStatus: "synced", pendingChanges: null });
        expect((yield* storedRecord(target, a!.Id)).data).toMatchObject({
          name: "Remote name A",
          industry: "Local industry",
        });
        expect((yield* storedRecord(target, b!.Id)).data.name).toBe("Remote name B");
        const audit = (yield* conflicts.list(target.tenantId, { connectionId: target.connectionId })).items;
        expect(audit).toEqual([expect.objectContaining({ externalId: b!.Id, fields: ["name"], status: "resolved" })]);
      }));
  },
);
