import { expect, layer } from "@effect/vitest";
import {
  Database,
  EntitySync,
  type InboundWebhookRequest,
  InboundWebhooks,
  JobQueue,
  Locks,
  RecordStore,
  recordLockKey,
  SyncJobHandlers,
  SyncTriggers,
} from "@tandem/core";
import {
  createHubSpotWebhookEmitter,
  createTestConnection,
  type Dialect,
  dialects,
  hubSpotFakeToken,
  hubSpotSignatureHeaders,
  seededRandom,
  testDatabaseLayer,
  testEngineLayer,
} from "@tandem/testkit";
import { Chunk, Duration, Effect, Layer, Schedule, Stream, TestClock, TestServices } from "effect";
import { type KyselyPlugin, SelectQueryNode, TableNode } from "kysely";
import hubspot from "../src/index.ts";
import { hubSpotFakeWithReceiver } from "./support/fakeWithReceiver.ts";

/*
 * HubSpot webhooks through the whole durable pipeline, as the server runs it: the fake's
 * emitter POSTs signed deliveries (duplicated, reordered); InboundWebhooks verifies them with
 * the connector, parses, stores each event once (dedupe by event id) and enqueues jobs; a
 * queue worker runs them (get by id, upsert or soft-delete). The store must end as the fake.
 * And syncs triggered as jobs under 429s and 5xx, completed by the queue's own retries.
 */

const baseUrl = "https://hubspot.pipeline.test";
const receiverUrl = "https://tandem.test/webhooks/hubspot/pipeline";
const clientSecret = "pipeline-client-secret";
const { clock, fake, received } = hubSpotFakeWithReceiver({ baseUrl, receiverUrl, start: Date.UTC(2026, 6, 1) });

/** Statements that read the connections table, as the webhook intake's config lookups do. */
let connectionReads = 0;
const countConnectionReads: KyselyPlugin = {
  transformQuery: ({ node }) => {
    if (
      SelectQueryNode.is(node) &&
      node.from?.froms.some((f) => TableNode.is(f) && f.table.identifier.name === "connections")
    ) {
      connectionReads++;
    }
    return node;
  },
  transformResult: async ({ result }) => result,
};

/** The test database, every statement of it seen by countConnectionReads. */
const countingDatabaseLayer = (dialect: Dialect) =>
  Layer.effect(
    Database,
    Effect.map(Database, (db) => ({ ...db, query: (f) => db.query((k) => f(k.withPlugin(countConnectionReads))) })),
  ).pipe(Layer.provide(testDatabaseLayer(dialect)));

/** The server's service graph (core's Engine.layer) on a fresh test database. */
const pipelineLayer = (dialect: Dialect) =>
  testEngineLayer({
    dialect,
    connectors: [hubspot],
    database: countingDatabaseLayer(dialect),
    // Short backoff so retried jobs run within the test; 429s still wait their Retry-After.
    config: { retry: { baseDelayMs: 50, maxDelayMs: 400, maxAttemptsByConnector: { hubspot: 40 } } },
  });

const iso = (ms: number) => new Date(ms).toISOString();

/** One HubSpot webhook event, as HubSpot posts it. */
const hubSpotEvent = (eventId: number, objectId: string, subscriptionType: string, occurredAt: number) => ({
  eventId,
  subscriptionId: 1,
  portalId: 1,
  appId: 1,
  occurredAt,
  subscriptionType,
  attemptNumber: 0,
  objectId: Number(objectId),
  changeSource: "CRM",
});

/** A delivery of `events` to the receiver, signed (v3) now. */
const signedDelivery = (events: ReadonlyArray<ReturnType<typeof hubSpotEvent>>): InboundWebhookRequest => {
  const rawBody = JSON.stringify(events);
  const headers = hubSpotSignatureHeaders({
    clientSecret,
    method: "POST",
    uri: receiverUrl,
    body: rawBody,
    timestamp: Date.now(),
    versions: ["v3"],
  });
  return { method: "POST", url: receiverUrl, headers: new Headers(headers), rawBody };
};

const config = { baseUrl, accessToken: hubSpotFakeToken, webhooks: { clientSecret, signatureVersions: ["v3"] } };

/** A clean fake (with a roomy rate window, so the connection's budget does not pace the test) and a connection. */
const setup = Effect.gen(function* () {
  fake.reset();
  received.length = 0;
  fake.knobs.rateLimit = { max: 1_000_000, intervalMs: 1_000 };
  const ids = yield* createTestConnection("hubspot", config);
  return { ids, target: { ...ids, entity: "contacts" } };
});

/** Starts a queue worker for the job kinds syncs enqueue, for the rest of the scope. */
const startWorker = Effect.gen(function* () {
  const { handlers } = yield* SyncJobHandlers;
  return yield* (yield* JobQueue).worker({ handlers, pollMs: 100, concurrency: 4 });
});

/** Waits until the connection has no queued or running job. */
const drained = (connectionId: string) =>
  Effect.flatMap(JobQueue, (queue) =>
    queue.counts({ connectionId }).pipe(
      Effect.map((counts) => counts.queued + counts.running),
      Effect.repeat({ until: (open) => open === 0, schedule: Schedule.spaced("100 millis") }),
      Effect.timeoutFail({ duration: Duration.seconds(90), onTimeout: () => new Error("jobs did not finish") }),
    ),
  );

/** The store holds exactly the fake's live contacts, each at its current version. */
const expectMirrors = (target: { readonly tenantId: string; readonly connectionId: string; readonly entity: string }) =>
  Effect.gen(function* () {
    const store = yield* RecordStore;
    const records = Chunk.toReadonlyArray(yield* Stream.runCollect(store.stream(target)));
    const local = new Map(records.map((r) => [r.externalId, r.data]));
    const remote = fake.live("contacts");
    expect([...local.keys()].sort()).toEqual(remote.map((o) => o.id).sort());
    for (const object of remote) {
      expect(local.get(object.id)!.updatedAt, `updatedAt of ${object.id}`).toBe(iso(object.updatedAt));
      expect(local.get(object.id)!.phone).toBe(object.properties.phone ?? null);
      expect(local.get(object.id)!.lifecycleStage).toBe(object.properties.lifecyclestage ?? null);
    }
  });

const live = <A, E, R>(effect: Effect.Effect<A, E, R>) => TestServices.provideLive(Effect.scoped(effect));

for (const dialect of dialects) {
  layer(pipelineLayer(dialect), { timeout: 120_000 })(`HubSpot through the durable pipeline on ${dialect}`, (it) => {
    it.effect(
      "duplicated and reordered webhook deliveries are stored once, and the worker leaves the fake's data",
      () =>
        live(
          Effect.gen(function* () {
            const engine = yield* EntitySync;
            const inbound = yield* InboundWebhooks;
            const queue = yield* JobQueue;
            const { ids, target } = yield* setup;
            const seeded = fake.seedContacts(15);
            yield* engine.run({ ...target, mode: "full" });

            const emitter = createHubSpotWebhookEmitter({
              store: fake.store,
              targetUrl: receiverUrl,
              clientSecret,
              duplicateRate: 0.6,
              reorder: true,
              maxEventsPerRequest: 3,
              random: seededRandom(11),
            });
            clock.advance(1_000);
            // A value no seeded contact has: HubSpot sends no event for a write that changes nothing.
            fake.store.update("contacts", seeded[0]!.id, { lifecyclestage: "evangelist" });
            fake.store.update("contacts", seeded[1]!.id, { phone: "+15550101", jobtitle: "CFO" });
            fake.store.archive("contacts", seeded[2]!.id);
            clock.advance(1_000);
            fake.store.update("contacts", seeded[3]!.id, { phone: "+15550103" });
            clock.advance(1_000);
            fake.store.archive("contacts", seeded[3]!.id);
            fake.store.create("contacts", { email: "pipeline@example.com", firstname: "Pipe" });
            const distinct = emitter.pending().length;
            expect(distinct).toBeGreaterThanOrEqual(5);
            yield* Effect.promise(() => emitter.flush());
            emitter.close();
            expect(received.length).toBeGreaterThan(1);

            let accepted = 0;
            let duplicates = 0;
            for (const request of received) {
              const receipt = yield* inbound.receive("hubspot", ids.connectionId, request);
              if (receipt._tag !== "Receipt") throw new Error("a HubSpot POST is never a handshake");
              accepted += receipt.accepted;
              duplicates += receipt.duplicates;
            }
            // Each distinct event once; the rest were HubSpot's duplicates.
            expect(accepted).toBe(distinct);
            expect(duplicates).toBeGreaterThan(0);
            // A forged delivery is refused before anything is stored.
            const forged = { ...received[0]!, rawBody: received[0]!.rawBody.replace(/"objectId":\d+/, '"objectId":1') };
            const refused = yield* inbound.receive("hubspot", ids.connectionId, forged).pipe(Effect.flip);
            expect(refused._tag).toBe("WebhookRejected");

            yield* startWorker;
            yield* drained(ids.connectionId);
            expect((yield* queue.counts({ connectionId: ids.connectionId })).dead).toBe(0);
            yield* expectMirrors(target);
          }),
        ),
    );

    it.effect(
      "a delivery is one job: each record once with its newest event; a retry skips what was synced; a one-record job from before still runs",
      () =>
        live(
          Effect.gen(function* () {
            const inbound = yield* InboundWebhooks;
            const queue = yield* JobQueue;
            const db = yield* Database;
            const { ids } = yield* setup;
            const [a, b, c] = fake.seedContacts(3);
            const at = Date.now();
            // a: created then changed, delivered newest first; b: changed once.
            const receipt = yield* inbound.receive(
              "hubspot",
              ids.connectionId,
              signedDelivery([
                hubSpotEvent(11, a!.id, "contact.propertyChange", at - 1_000),
                hubSpotEvent(12, b!.id, "contact.propertyChange", at - 1_500),
                hubSpotEvent(13, a!.id, "contact.creation", at - 2_000),
              ]),
            );
            expect(receipt).toMatchObject({ _tag: "Receipt", accepted: 3, duplicates: 0 });

            const [job, ...others] = yield* queue.list({ connectionId: ids.connectionId, kind: "webhook.event" });
            expect(others).toHaveLength(0);
            const payload = job!.payload as {
              connectionId: string;
              records: ReadonlyArray<{ externalId: string; kind: string; occurredAt: string; eventRowIds: string[] }>;
            };
            expect(payload.connectionId).toBe(ids.connectionId);
            expect(payload.records.map((r) => [r.externalId, r.kind, r.eventRowIds.length])).toEqual([
              [a!.id, "updated", 2],
              [b!.id, "updated", 1],
            ]);
            expect(new Date(payload.records[0]!.occurredAt).getTime()).toBe(at - 1_000);

            // An earlier attempt synced b and marked its event: this one leaves it.
            yield* db.query((k) =>
              k
                .updateTable("webhook_events")
                .set({ processed_at: new Date() })
                .where("connection_id", "=", ids.connectionId)
                .where("event_id", "=", "12")
                .execute(),
            );
            // A job queued before deliveries had one job each names one record at its top level.
            const legacy = yield* queue.enqueue({
              kind: "webhook.event",
              payload: {
                connectionId: ids.connectionId,
                entity: "contacts",
                externalId: c!.id,
                kind: "updated",
                occurredAt: new Date(at).toISOString(),
                eventRowIds: [],
              },
              priority: "webhook",
              tenantId: ids.tenantId,
              connectionId: ids.connectionId,
            });

            yield* startWorker;
            yield* drained(ids.connectionId);
            const done = yield* queue.get(job!.id);
            expect(done.status).toBe("completed");
            expect(done.result).toEqual({
              records: 2,
              synced: [{ entity: "contacts", externalId: a!.id, action: "created" }],
            });
            expect((yield* queue.get(legacy.id)).result).toEqual({
              records: 1,
              synced: [{ entity: "contacts", externalId: c!.id, action: "created" }],
            });
            const store = yield* RecordStore;
            const stored = Chunk.toReadonlyArray(
              yield* Stream.runCollect(store.stream({ ...ids, entity: "contacts" })),
            ).map((r) => r.externalId);
            expect([...stored].sort()).toEqual([a!.id, c!.id].sort());
            const unprocessed = yield* db.query((k) =>
              k
                .selectFrom("webhook_events")
                .select("event_id")
                .where("connection_id", "=", ids.connectionId)
                .where("processed_at", "is", null)
                .execute(),
            );
            expect(unprocessed).toEqual([]);
          }),
        ),
    );

    it.effect(
      "a record that fails ends the attempt: the records synced before it stay marked, and the retry syncs the rest",
      () =>
        live(
          Effect.gen(function* () {
            const inbound = yield* InboundWebhooks;
            const queue = yield* JobQueue;
            const db = yield* Database;
            const { ids } = yield* setup;
            const [a, b] = fake.seedContacts(2);
            const at = Date.now();
            yield* inbound.receive(
              "hubspot",
              ids.connectionId,
              signedDelivery([
                hubSpotEvent(21, a!.id, "contact.propertyChange", at - 1_000),
                hubSpotEvent(22, b!.id, "contact.propertyChange", at - 1_000),
              ]),
            );
            const [job] = yield* queue.list({ connectionId: ids.connectionId, kind: "webhook.event" });
            // b's record lock is held elsewhere (a push of it, say): the first attempt fails at b.
            const locks = yield* Locks;
            const held = yield* locks.acquire(recordLockKey(ids.connectionId, "contacts", b!.id), { ttlMs: 60_000 });
            const processedEventIds = db
              .query((k) =>
                k
                  .selectFrom("webhook_events")
                  .select("event_id")
                  .where("connection_id", "=", ids.connectionId)
                  .where("processed_at", "is not", null)
                  .orderBy("event_id")
                  .execute(),
              )
              .pipe(Effect.map((rows) => rows.map((r) => r.event_id)));

            yield* startWorker;
            yield* queue.get(job!.id).pipe(
              Effect.repeat({
                until: (j) => j.attempts >= 1 && j.status === "queued",
                schedule: Schedule.spaced("100 millis"),
              }),
              Effect.timeoutFail({ duration: Duration.seconds(30), onTimeout: () => new Error("no failed attempt") }),
            );
            const failed = yield* queue.get(job!.id);
            expect(failed.lastError).toMatchObject({ tag: "LockHeld" });
            expect(yield* processedEventIds).toEqual(["21"]);

            yield* locks.release(held);
            yield* drained(ids.connectionId);
            const done = yield* queue.get(job!.id);
            expect(done.status).toBe("completed");
            expect(done.result).toEqual({
              records: 2,
              synced: [{ entity: "contacts", externalId: b!.id, action: "created" }],
            });
            expect(yield* processedEventIds).toEqual(["21", "22"]);
          }),
        ),
    );

    it.effect("a burst of deliveries reads the connection once, and once more when its cached config expires", () =>
      Effect.gen(function* () {
        // Signatures carry the wall-clock time, and verification reads the test clock.
        yield* TestClock.setTime(Date.now());
        const inbound = yield* InboundWebhooks;
        const { ids } = yield* setup;
        const [a] = fake.seedContacts(1);
        const burst = (firstEventId: number) =>
          Effect.forEach(
            Array.from({ length: 20 }, (_, i) => firstEventId + i),
            (eventId) =>
              inbound.receive(
                "hubspot",
                ids.connectionId,
                signedDelivery([hubSpotEvent(eventId, a!.id, "contact.propertyChange", Date.now())]),
              ),
            { concurrency: "unbounded" },
          );
        const before = connectionReads;
        const first = yield* burst(31_000);
        expect(first.every((r) => r._tag === "Receipt" && r.accepted === 1)).toBe(true);
        expect(connectionReads - before).toBe(1);
        // Cached for CONFIG_CACHE_MS (5 s).
        yield* TestClock.adjust("4 seconds");
        yield* burst(32_000);
        expect(connectionReads - before).toBe(1);
        yield* TestClock.adjust("2 seconds");
        const later = yield* burst(33_000);
        expect(later.every((r) => r._tag === "Receipt" && r.accepted === 1)).toBe(true);
        expect(connectionReads - before).toBe(2);
        // No worker ran: the 60 queued jobs would otherwise run in the next test's worker.
        const queue = yield* JobQueue;
        const queued = yield* queue.list({ connectionId: ids.connectionId, limit: 100 });
        expect(queued).toHaveLength(60);
        yield* Effect.forEach(queued, (job) => queue.cancel(job.id), { discard: true });
      }),
    );

    it.effect("full and delta syncs triggered as jobs under 429s and 5xx complete through the queue's retries", () =>
      live(
        Effect.gen(function* () {
          const syncs = yield* SyncTriggers;
          const queue = yield* JobQueue;
          const { ids, target } = yield* setup;
          fake.seedContacts(350);
          fake.knobs.serverErrorRate = 0.25;
          fake.failNext({ kind: "rateLimit", retryAfterSeconds: 1 });
          yield* startWorker;

          const sync = (mode: "full" | "delta") =>
            syncs.trigger(ids.tenantId, { connectionId: ids.connectionId, entity: "contacts", mode });
          const full = yield* sync("full");
          yield* drained(ids.connectionId);
          expect(yield* queue.get(full.jobId)).toMatchObject({ status: "completed" });
          const fullErrors = (yield* queue.attempts(full.jobId)).map((a) => a.error?.tag);
          expect(fullErrors).toContain("RateLimited");
          yield* expectMirrors(target);

          clock.advance(1_000);
          fake.churn("contacts", { updates: 12, creates: 4, archives: 3 });
          fake.failNext({ kind: "status", status: 503 });
          const delta = yield* sync("delta");
          yield* drained(ids.connectionId);
          expect(yield* queue.get(delta.jobId)).toMatchObject({ status: "completed" });
          expect((yield* queue.attempts(delta.jobId)).map((a) => a.error?.tag)).toContain("Unavailable");
          fake.knobs.serverErrorRate = 0;
          yield* expectMirrors(target);
        }),
      ),
    );
  });
}
