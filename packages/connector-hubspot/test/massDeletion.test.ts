import { expect, layer } from "@effect/vitest";
import {
  ALERTS_EVALUATE_JOB_KIND,
  Alerts,
  DeletionQuarantine,
  EntitySync,
  InboundWebhooks,
  JobQueue,
  RecordStore,
  SyncJobHandlers,
  type SyncTarget,
} from "@tandem/core";
import {
  createHubSpotWebhookEmitter,
  createTestConnection,
  dialects,
  hubSpotFakeToken,
  storedRecord,
  storedRecords,
  testEngineLayer,
} from "@tandem/testkit";
import { Duration, Effect, Schedule, TestServices } from "effect";
import hubspot from "../src/index.ts";
import { hubSpotFakeWithReceiver } from "./support/fakeWithReceiver.ts";

/*
 * The mass-deletion guard on each path that deletes on the vendor's word, through the engine
 * against the HubSpot fake (MSW), on PGlite and PostgreSQL: a delta's archived listing, webhook
 * deliveries run by a queue worker, and reconciliation. The limit is 5 deletions an hour here
 * (the default is 100), so a burst is a handful of contacts.
 */

const baseUrl = "https://hubspot.guard.test";
const receiverUrl = "https://tandem.test/webhooks/hubspot/guard";
const clientSecret = "guard-client-secret";
// The fake starts at the real time: a delta's 5-minute overlap then reads recent tombstones again, as it would in production.
const { clock, fake, received } = hubSpotFakeWithReceiver({ baseUrl, receiverUrl, start: Date.now() });
const config = { baseUrl, accessToken: hubSpotFakeToken, webhooks: { clientSecret, signatureVersions: ["v3"] } };
const operator = "api-key:operator";

/** A clean fake (a roomy rate window, so the budget does not pace the test), a connection, the default alert rules. */
const setup = Effect.gen(function* () {
  fake.reset();
  received.length = 0;
  fake.knobs.rateLimit = { max: 1_000_000, intervalMs: 1_000 };
  const ids = yield* createTestConnection("hubspot", config);
  yield* (yield* Alerts).ensureDefaultRules(ids.tenantId);
  return { ...ids, entity: "contacts" } satisfies SyncTarget;
});

/** Every change after this one is strictly later than everything before. */
const tick = () => clock.advance(1_000);

/** The target's deletions waiting for review, oldest first. */
const pendingOf = (target: SyncTarget) =>
  Effect.flatMap(DeletionQuarantine, (q) =>
    q.list(target.tenantId, { status: "pending", connectionId: target.connectionId, entity: target.entity }),
  ).pipe(Effect.map((page) => page.items));

/** The tenant's mass-deletion alerts of one status. */
const massDeletionAlerts = (tenantId: string, status: "firing" | "resolved") =>
  Effect.flatMap(Alerts, (a) => a.list(tenantId, { status })).pipe(
    Effect.map((page) => page.items.filter((alert) => alert.kind === "mass_deletion")),
  );

/** The ids of the store's live records. */
const liveIds = (target: SyncTarget) => Effect.map(storedRecords(target), (records) => [...records.keys()].sort());

const fakeLiveIds = () =>
  fake
    .live("contacts")
    .map((o) => o.id)
    .sort();

/** Starts a queue worker for sync and alert jobs, for the rest of the scope. */
const startWorker = Effect.gen(function* () {
  const { handlers } = yield* SyncJobHandlers;
  const alerts = yield* Alerts;
  return yield* (yield* JobQueue).worker({ handlers: { ...handlers, ...alerts.handlers }, pollMs: 50, concurrency: 4 });
});

/** Waits until the tenant has no queued or running job. */
const drained = (tenantId: string) =>
  Effect.flatMap(JobQueue, (queue) =>
    queue.counts({ tenantId }).pipe(
      Effect.map((counts) => counts.queued + counts.running),
      Effect.repeat({ until: (open) => open === 0, schedule: Schedule.spaced("50 millis") }),
      Effect.timeoutFail({ duration: Duration.seconds(90), onTimeout: () => new Error("jobs did not finish") }),
    ),
  );

/** Delivers what the emitter sent since the last call to the intake, as the webhook route does. */
const deliver = (emitter: ReturnType<typeof createHubSpotWebhookEmitter>, connectionId: string) =>
  Effect.gen(function* () {
    received.length = 0;
    yield* Effect.promise(() => emitter.flush());
    const inbound = yield* InboundWebhooks;
    for (const request of received) yield* inbound.receive("hubspot", connectionId, request);
  });

/** Engine tests run on the real clock: the rate budget must not wait on a TestClock nobody advances. */
const live = <A, E, R>(effect: Effect.Effect<A, E, R>) => TestServices.provideLive(Effect.scoped(effect));

for (const dialect of dialects) {
  layer(
    testEngineLayer({
      dialect,
      connectors: [hubspot],
      config: { deletionGuard: { maxDeletions: 5, windowMinutes: 60 } },
    }),
    { timeout: 120_000 },
  )(`the mass-deletion guard through the engine on ${dialect}`, (it) => {
    it.effect(
      "delta: a burst of tombstones is held whole with the records live, raises one alert; approve, reject and approve-all settle it",
      () =>
        live(
          Effect.gen(function* () {
            const engine = yield* EntitySync;
            const store = yield* RecordStore;
            const quarantine = yield* DeletionQuarantine;
            const alerts = yield* Alerts;
            const queue = yield* JobQueue;
            const target = yield* setup;
            const seeded = fake.seedContacts(40);
            yield* engine.run({ ...target, mode: "full" });

            // A small cleanup passes: 3 deletions are within 5 an hour.
            tick();
            for (const o of seeded.slice(30, 33)) fake.store.archive("contacts", o.id);
            const cleanup = yield* engine.run({ ...target, mode: "delta" });
            expect(cleanup).toMatchObject({ deleted: 3, errors: [] });
            expect(cleanup.quarantined).toBeUndefined();

            // 8 more: with the 3 already deleted this hour, past the limit. All 8 are held.
            tick();
            const burst = seeded.slice(0, 8);
            for (const o of burst) fake.store.archive("contacts", o.id);
            const delta = yield* engine.run({ ...target, mode: "delta" });
            expect(delta).toMatchObject({ deleted: 0, quarantined: 8, errors: [] });
            expect(yield* store.count(target)).toBe(37);
            const held = yield* pendingOf(target);
            expect(held.map((d) => d.externalId).sort()).toEqual(burst.map((o) => o.id).sort());
            for (const d of held) expect(d).toMatchObject({ source: "delta", status: "pending", keepsRecord: false });
            expect(held[0]!.guard).toEqual({
              rule: "max-deletions",
              deletionsInWindow: 3,
              incoming: 8,
              maxDeletions: 5,
              windowMinutes: 60,
            });

            // The guard asked for the tenant's alerts to be evaluated now; the pass raises one alert.
            const asked = yield* queue.list({ kind: ALERTS_EVALUATE_JOB_KIND, tenantId: target.tenantId });
            expect(asked).toHaveLength(1);
            expect(asked[0]!.payload).toEqual({ tenantId: target.tenantId });
            expect((yield* alerts.evaluate(target.tenantId)).triggered).toBe(1);
            const firing = yield* massDeletionAlerts(target.tenantId, "firing");
            expect(firing).toEqual([
              expect.objectContaining({
                subject: `${target.connectionId}:contacts`,
                connectionId: target.connectionId,
                entity: "contacts",
                details: expect.objectContaining({ pendingDeletions: 8, sources: ["delta"] }),
              }),
            ]);

            // The next delta reads the same tombstones again (its overlap): nothing new is queued,
            // and the burst stays one alert.
            const overlap = yield* engine.run({ ...target, mode: "delta" });
            expect(overlap).toMatchObject({ deleted: 0, quarantined: 8 });
            expect(yield* pendingOf(target)).toHaveLength(8);
            expect((yield* alerts.evaluate(target.tenantId)).triggered).toBe(0);

            // Approve one: the record is deleted through the store, in the change feed.
            const feed = yield* store.changes(target, { limit: 1_000 });
            const approved = yield* quarantine.approve(target.tenantId, held[0]!.id, operator);
            expect(approved).toMatchObject({ status: "approved", resolvedBy: operator, recordDeleted: true });
            expect((yield* storedRecord(target, held[0]!.externalId)).deletedAt).not.toBeNull();
            const changes = yield* store.changes(target, { after: feed.cursor, limit: 1_000 });
            expect(changes.records.map((r) => [r.externalId, r.deletedAt !== null])).toEqual([
              [held[0]!.externalId, true],
            ]);
            const twice = yield* Effect.flip(quarantine.approve(target.tenantId, held[0]!.id, operator));
            expect(twice._tag).toBe("PreconditionFailed");

            // Reject one: the record stays, with the reason in the row.
            const rejected = yield* quarantine.reject(target.tenantId, held[1]!.id, operator, "still a customer");
            expect(rejected).toMatchObject({
              status: "rejected",
              resolvedBy: operator,
              reason: "still a customer",
              keepsRecord: true,
            });
            expect((yield* storedRecord(target, held[1]!.externalId)).deletedAt).toBeNull();

            // The kept record's tombstone read again by a delta, and its absence seen by a
            // reconciliation, do not delete it; the deltas' held deletions stay for the operator.
            tick();
            yield* engine.run({ ...target, mode: "delta" });
            const reconciled = yield* engine.run({ ...target, mode: "reconcile" });
            expect(reconciled).toMatchObject({ deleted: 0, quarantined: 6 });
            expect(reconciled.quarantine).toBeUndefined();
            expect((yield* storedRecord(target, held[1]!.externalId)).deletedAt).toBeNull();
            expect(yield* pendingOf(target)).toHaveLength(6);

            // Another tenant can neither see nor settle them.
            const other = yield* createTestConnection("hubspot", config);
            expect((yield* quarantine.list(other.tenantId)).items).toEqual([]);
            expect((yield* Effect.flip(quarantine.approve(other.tenantId, held[2]!.id, operator)))._tag).toBe(
              "ResourceNotFound",
            );
            const foreign = yield* Effect.flip(
              quarantine.approveAll(
                other.tenantId,
                { connectionId: target.connectionId, entity: "contacts" },
                operator,
              ),
            );
            expect(foreign._tag).toBe("ResourceNotFound");

            // Approve the rest at once: applied, the queue empty, the alert resolved.
            const all = yield* quarantine.approveAll(
              target.tenantId,
              { connectionId: target.connectionId, entity: "contacts" },
              operator,
            );
            expect(all).toEqual({ approved: 6, deleted: 6 });
            expect(yield* pendingOf(target)).toEqual([]);
            expect((yield* alerts.evaluate(target.tenantId)).resolved).toBe(1);
            expect(yield* massDeletionAlerts(target.tenantId, "firing")).toEqual([]);
            expect(yield* massDeletionAlerts(target.tenantId, "resolved")).toHaveLength(1);
            // The store holds the fake's live contacts, and the one the operator kept.
            expect(yield* liveIds(target)).toEqual([...fakeLiveIds(), held[1]!.externalId].sort());

            // The approval started a new window: a deletion right after it is not part of the burst.
            tick();
            fake.store.archive("contacts", seeded[20]!.id);
            expect(yield* engine.run({ ...target, mode: "delta" })).toMatchObject({ deleted: 1 });
          }),
        ),
    );

    it.effect(
      "webhook burst: deletions within the limit apply, the rest is held; records restored remotely leave the queue by webhook, delta and reconciliation",
      () =>
        live(
          Effect.gen(function* () {
            const engine = yield* EntitySync;
            const quarantine = yield* DeletionQuarantine;
            const target = yield* setup;
            const seeded = fake.seedContacts(30);
            yield* engine.run({ ...target, mode: "full" });
            yield* startWorker;
            const emitter = createHubSpotWebhookEmitter({
              store: fake.store,
              targetUrl: receiverUrl,
              clientSecret,
              maxEventsPerRequest: 2,
            });

            // 9 deletions in deliveries of 2, run by concurrent jobs: exactly 5 apply, 4 are held.
            tick();
            const burst = seeded.slice(0, 9);
            for (const o of burst) fake.store.archive("contacts", o.id);
            yield* deliver(emitter, target.connectionId);
            yield* drained(target.tenantId);
            const held = yield* pendingOf(target);
            expect(held).toHaveLength(4);
            const heldIds = held.map((d) => d.externalId);
            const deletedIds = burst.map((o) => o.id).filter((id) => !heldIds.includes(id));
            expect(deletedIds).toHaveLength(5);
            for (const id of deletedIds) expect((yield* storedRecord(target, id)).deletedAt).not.toBeNull();
            for (const id of heldIds) expect((yield* storedRecord(target, id)).deletedAt).toBeNull();
            for (const d of held) expect(d.source).toBe("webhook");
            // The first deletion past the limit tripped it; the rest of the burst joined the queue.
            expect(held.map((d) => d.guard.rule).sort()).toEqual([
              "max-deletions",
              "pending-review",
              "pending-review",
              "pending-review",
            ]);
            // The worker ran the alert evaluation the guard asked for: one alert for the burst. It may
            // have opened while the burst was still arriving (its figures are those of that moment):
            // the later held deletions joined it.
            const firing = yield* massDeletionAlerts(target.tenantId, "firing");
            expect(firing).toEqual([
              expect.objectContaining({ subject: `${target.connectionId}:contacts`, details: expect.anything() }),
            ]);
            expect(firing[0]!.details).toMatchObject({ sources: ["webhook"] });
            expect(firing[0]!.details.pendingDeletions).toBeGreaterThanOrEqual(1);
            expect(firing[0]!.details.pendingDeletions).toBeLessThanOrEqual(4);

            // Restored in HubSpot: the restore webhook brings the record back and out of the queue.
            tick();
            expect(fake.store.restore("contacts", heldIds[0]!)).not.toHaveProperty("failure");
            yield* deliver(emitter, target.connectionId);
            yield* drained(target.tenantId);
            // Restored again, seen by a delta (no webhook this time).
            tick();
            expect(fake.store.restore("contacts", heldIds[1]!)).not.toHaveProperty("failure");
            emitter.close();
            const delta = yield* engine.run({ ...target, mode: "delta" });
            expect(delta.errors).toEqual([]);
            // Restored a third time, seen by reconciliation's id listing. The last held one is still
            // gone remotely: reconciliation leaves its deletion to the operator.
            tick();
            expect(fake.store.restore("contacts", heldIds[2]!)).not.toHaveProperty("failure");
            const reconciled = yield* engine.run({ ...target, mode: "reconcile" });
            expect(reconciled).toMatchObject({ deleted: 0, quarantined: 1 });
            expect((yield* storedRecord(target, heldIds[3]!)).deletedAt).toBeNull();

            const settled = yield* quarantine.list(target.tenantId, { connectionId: target.connectionId });
            const statusOf = (id: string) => settled.items.find((d) => d.externalId === id);
            for (const id of heldIds.slice(0, 3)) {
              expect(statusOf(id)).toMatchObject({ status: "reappeared", resolvedBy: "remote" });
              expect((yield* storedRecord(target, id)).deletedAt).toBeNull();
            }
            expect((yield* pendingOf(target)).map((d) => d.externalId)).toEqual([heldIds[3]]);

            // Rejected: the record stays, and the queue is empty.
            const rejected = yield* quarantine.rejectAll(
              target.tenantId,
              { connectionId: target.connectionId, entity: "contacts" },
              operator,
              "checking with the sales team",
            );
            expect(rejected).toEqual({ rejected: 1 });
            expect(yield* pendingOf(target)).toEqual([]);
            yield* drained(target.tenantId);
            expect(yield* massDeletionAlerts(target.tenantId, "firing")).toEqual([]);
            expect(yield* liveIds(target)).toEqual([...fakeLiveIds(), heldIds[3]!].sort());
          }),
        ),
    );

    it.effect(
      "reconciliation: over the share every vanished record is held; listed again it leaves the queue; approve-all applies the rest",
      () =>
        live(
          Effect.gen(function* () {
            const engine = yield* EntitySync;
            const quarantine = yield* DeletionQuarantine;
            const target = yield* setup;
            const seeded = fake.seedContacts(20);
            yield* engine.run({ ...target, mode: "full" });

            // Half of the contacts gone (a wrong portal, an outage): nothing is deleted, all are queued.
            tick();
            for (const o of seeded.slice(0, 10)) fake.store.archive("contacts", o.id);
            const guarded = yield* engine.run({ ...target, mode: "reconcile" });
            expect(guarded).toMatchObject({ deleted: 0, quarantined: 10, quarantine: { wouldDelete: 10, share: 0.5 } });
            const held = yield* pendingOf(target);
            expect(held).toHaveLength(10);
            for (const d of held) expect(d).toMatchObject({ source: "reconcile", guard: { rule: "max-share" } });
            expect(held[0]!.guard).toMatchObject({ vanished: 10, stored: 20, share: 0.5, maxDeleteShare: 0.2 });

            // Two come back: the next reconciliation lists them, and they leave the queue. The other 8
            // are still more than 20%: still held.
            tick();
            fake.store.restore("contacts", seeded[0]!.id);
            fake.store.restore("contacts", seeded[1]!.id);
            const again = yield* engine.run({ ...target, mode: "reconcile" });
            expect(again).toMatchObject({ deleted: 0, quarantined: 8 });
            expect((yield* pendingOf(target)).map((d) => d.externalId).sort()).toEqual(
              seeded
                .slice(2, 10)
                .map((o) => o.id)
                .sort(),
            );
            const reappeared = (yield* quarantine.list(target.tenantId, { status: "reappeared" })).items;
            expect(reappeared.map((d) => d.externalId).sort()).toEqual([seeded[0]!.id, seeded[1]!.id].sort());

            const all = yield* quarantine.approveAll(
              target.tenantId,
              { connectionId: target.connectionId, entity: "contacts" },
              operator,
            );
            expect(all).toEqual({ approved: 8, deleted: 8 });
            expect(yield* liveIds(target)).toEqual(fakeLiveIds());
            // Nothing vanished is left: the next reconciliation deletes and holds nothing.
            expect(yield* engine.run({ ...target, mode: "reconcile" })).toMatchObject({ deleted: 0 });
          }),
        ),
    );
  });
}
