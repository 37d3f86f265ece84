import { expect, layer } from "@effect/vitest";
import type { ListedId } from "@tandem/connector-sdk";
import {
  EntitySync,
  JobQueue,
  RecordStore,
  RunHistory,
  SyncJobHandlers,
  type SyncTarget,
  SyncTriggers,
} from "@tandem/core";
import {
  AcmeCrm,
  acmeConnector,
  createTestConnection,
  dialects,
  startAcmeServer,
  storedRecord,
  testEngineLayer,
} from "@tandem/testkit";
import { Effect, TestServices } from "effect";
import { afterAll, beforeAll } from "vitest";

/*
 * Reconciliation compares modification times as well as ids when the entity lists them, on
 * PGlite and PostgreSQL, against the Acme fake. Acme's own `readIds` lists bare ids (the
 * ids-only path); `acme-crm-stamped` lists each id with its `updatedAt`, read from Acme's
 * contact pages, and may list `badTimes` with a time that is not one.
 */

const acme = new AcmeCrm();
let server: ReturnType<typeof startAcmeServer>;
beforeAll(() => {
  server = startAcmeServer(acme);
});
afterAll(() => server.close());

/** Ids the stamped listing lists with an unusable time. */
const badTimes = new Set<string>();

const contacts = acmeConnector.entities.contacts;
const stamped = {
  ...acmeConnector,
  name: "acme-crm-stamped",
  entities: {
    contacts: {
      ...contacts,
      readIds: async function* (ctx: Parameters<typeof contacts.read>[0]) {
        for await (const page of contacts.read(ctx, {}) as AsyncIterable<{
          records: ReadonlyArray<{ id: string; updatedAt: string }>;
        }>) {
          yield page.records.map(
            (r): ListedId => ({ id: r.id, updatedAt: badTimes.has(r.id) ? ("soon" as never) : new Date(r.updatedAt) }),
          );
        }
      },
    },
  },
};

const setup = (connector: string) =>
  Effect.gen(function* () {
    acme.reset();
    badTimes.clear();
    const ids = yield* createTestConnection(connector, { baseUrl: acme.baseUrl, token: acme.token, pageSize: 10 });
    return { ...ids, entity: "contacts" } satisfies SyncTarget;
  });

/** Engine tests run on the real clock (the fake has its own; the rate budget must not wait on a TestClock). */
const live = TestServices.provideLive;

for (const dialect of dialects) {
  layer(testEngineLayer({ dialect, connectors: [acmeConnector, stamped] }), { timeout: 60_000 })(
    `reconciliation with modification times on ${dialect}`,
    (it) => {
      const test = <A, E>(name: string, body: () => Effect.Effect<A, E, any>) =>
        it.effect(name, () => live(body()) as Effect.Effect<A, E, never>);

      test("ids only: deletions and missing records as before; a remote update is not compared", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const target = yield* setup("acme-crm");
          acme.seed(12);
          yield* engine.run({ ...target, mode: "full" });
          acme.update("c000002", { lifecycleStage: "customer" });
          acme.remove("c000004");
          acme.create({ id: "c900000" });
          acme.requests = [];
          const result = yield* engine.run({ ...target, mode: "reconcile" });
          expect(result).toMatchObject({ deleted: 1, created: 1, updated: 0, errors: [] });
          // Bare ids carry no time: nothing is compared or re-fetched beyond the missing record.
          expect(result.drifted).toBeUndefined();
          expect(acme.requests.filter((r) => r.path.startsWith("/contacts/c")).map((r) => r.path)).toEqual([
            "/contacts/c900000",
          ]);
          expect((yield* storedRecord(target, "c000002")).data.lifecycleStage).toBe("lead");
        }));

      test("listed times: records newer remotely are re-fetched with get; a second run finds nothing", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const target = yield* setup("acme-crm-stamped");
          acme.seed(25);
          yield* engine.run({ ...target, mode: "full" });
          acme.update("c000003", { lifecycleStage: "customer" });
          acme.update("c000017", { lastName: "Moved" });
          acme.remove("c000009");
          acme.requests = [];
          const result = yield* engine.run({ ...target, mode: "reconcile" });
          expect(result).toMatchObject({ drifted: 2, updated: 2, created: 0, deleted: 1, errors: [] });
          // No getMany on this entity: one get per drifted record, nothing else by id.
          expect(
            acme.requests
              .filter((r) => r.path.startsWith("/contacts/c"))
              .map((r) => r.path)
              .sort(),
          ).toEqual(["/contacts/c000003", "/contacts/c000017"]);
          const c3 = yield* storedRecord(target, "c000003");
          expect(c3.data.lifecycleStage).toBe("customer");
          expect(c3.remoteUpdatedAt?.toISOString()).toBe(acme.contacts.get("c000003")!.updatedAt);
          expect((yield* storedRecord(target, "c000017")).data.lastName).toBe("Moved");
          expect((yield* storedRecord(target, "c000009")).deletedAt).not.toBeNull();

          // The stored copies now carry the listed times: nothing is drifted any more.
          acme.requests = [];
          const again = yield* engine.run({ ...target, mode: "reconcile" });
          expect(again).toMatchObject({ drifted: 0, updated: 0, deleted: 0, created: 0, errors: [] });
          expect(acme.requests.filter((r) => r.path.startsWith("/contacts/c"))).toEqual([]);
        }));

      test("a drifted record with an unpushed local edit is settled three-way, as any pull", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const target = yield* setup("acme-crm-stamped");
          acme.seed(5);
          yield* engine.run({ ...target, mode: "full" });
          yield* (yield* RecordStore).applyLocalChange(target, "c000002", { firstName: "Local" });
          acme.update("c000002", { lifecycleStage: "customer" });
          const result = yield* engine.run({ ...target, mode: "reconcile" });
          expect(result).toMatchObject({ drifted: 1, updated: 1, errors: [] });
          const merged = yield* storedRecord(target, "c000002");
          // Different fields: the remote edit merged in, the local one still to push.
          expect(merged.data).toMatchObject({ firstName: "Local", lifecycleStage: "customer" });
          expect(merged.syncStatus).toBe("pending");
          expect(merged.pendingChanges).toEqual({ firstName: "Local" });
          expect(merged.remoteUpdatedAt?.toISOString()).toBe(acme.contacts.get("c000002")!.updatedAt);
          const again = yield* engine.run({ ...target, mode: "reconcile" });
          expect(again.drifted).toBe(0);
        }));

      test("a reconcile job reports the drifted count in its result and in the run history", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const target = yield* setup("acme-crm-stamped");
          acme.seed(8);
          yield* engine.run({ ...target, mode: "full" });
          acme.update("c000005", { lastName: "Drifted" });
          const queue = yield* JobQueue;
          const { handlers } = yield* SyncJobHandlers;
          const { jobId } = yield* (yield* SyncTriggers).trigger(target.tenantId, { ...target, mode: "reconcile" });
          yield* Effect.scoped(
            Effect.gen(function* () {
              yield* queue.worker({ handlers, pollMs: 50 });
              for (let i = 0; i < 400 && (yield* queue.get(jobId)).status !== "completed"; i++) {
                yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 25)));
              }
            }),
          );
          const job = yield* queue.get(jobId);
          expect(job.status).toBe("completed");
          expect(job.result).toMatchObject({ mode: "reconcile", drifted: 1, updated: 1 });
          const [run] = yield* (yield* RunHistory).ofJob(jobId);
          expect(run).toMatchObject({ mode: "reconcile", status: "succeeded", drifted: 1, updated: 1 });
          expect((yield* storedRecord(target, "c000005")).data.lastName).toBe("Drifted");
        }));

      test("an id listed with an unusable time is an item error, kept, and neither deleted nor re-fetched", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const target = yield* setup("acme-crm-stamped");
          acme.seed(6);
          yield* engine.run({ ...target, mode: "full" });
          acme.update("c000004", { lifecycleStage: "customer" });
          badTimes.add("c000004");
          const result = yield* engine.run({ ...target, mode: "reconcile" });
          expect(result).toMatchObject({ drifted: 0, deleted: 0, updated: 0 });
          expect(result.errors).toEqual([expect.objectContaining({ externalId: "c000004", type: "InvalidRecord" })]);
          expect(result.errors[0]!.message).toContain("updatedAt");
          const kept = yield* storedRecord(target, "c000004");
          expect(kept.deletedAt).toBeNull();
          expect(kept.data.lifecycleStage).toBe("lead");
        }));
    },
  );
}
