import { randomBytes } from "node:crypto";
import { expect, layer } from "@effect/vitest";
import {
  Conflicts,
  Connections,
  ConnectorRegistry,
  CredentialCipher,
  type InboundWebhookRequest,
  InboundWebhooks,
  JobQueue,
  Locks,
  OutboundWebhooks,
  RateBudget,
  RecordStore,
  RetryPolicy,
  Scheduler,
  SyncEngine,
  SyncRuns,
  Syncs,
  Tenants,
} from "@tandem/core";
import {
  createHubSpotFake,
  createHubSpotWebhookEmitter,
  createManualClock,
  createTestConnection,
  type Dialect,
  dialects,
  hubSpotFakeToken,
  seededRandom,
  testDatabaseLayer,
} from "@tandem/testkit";
import { Chunk, Duration, Effect, Layer, Redacted, Schedule, Stream, TestServices } from "effect";
import { HttpResponse, http } from "msw";
import { setupServer } from "msw/node";
import { afterAll, beforeAll } from "vitest";
import hubspot from "../src/index.ts";

/*
 * HubSpot webhooks through the whole durable pipeline, as the server runs it: the fake's
 * emitter POSTs signed deliveries (duplicated, reordered); InboundWebhooks verifies them with
 * the connector, parses, stores each event once (dedupe by event id) and enqueues jobs; a
 * queue worker runs them (get by id, upsert or soft-delete). The store must end as the fake.
 */

const baseUrl = "https://hubspot.pipeline.test";
const receiverUrl = "https://tandem.test/webhooks/hubspot/pipeline";
const clientSecret = "pipeline-client-secret";
const clock = createManualClock(Date.UTC(2026, 6, 1));
const fake = createHubSpotFake({ baseUrl, clock });

const received: Array<InboundWebhookRequest> = [];
const server = setupServer(
  ...fake.handlers,
  http.post(receiverUrl, async ({ request }) => {
    received.push({
      method: request.method,
      url: request.url,
      headers: new Headers(request.headers),
      rawBody: await request.text(),
    });
    return new HttpResponse(null, { status: 204 });
  }),
);
beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
afterAll(() => {
  fake.close();
  server.close();
});

/** The server's service graph (packages/server/src/runtime.ts) on a fresh test database. */
const pipelineLayer = (dialect: Dialect) => {
  const infra = Layer.mergeAll(
    CredentialCipher.layer(Redacted.make(randomBytes(32))),
    ConnectorRegistry.layer([hubspot]),
    RateBudget.layer,
    RetryPolicy.layer(),
  ).pipe(Layer.provideMerge(testDatabaseLayer(dialect)));
  const stores = Layer.mergeAll(
    Tenants.layer,
    Connections.layer,
    RecordStore.layer,
    Conflicts.layer,
    SyncRuns.layer,
  ).pipe(Layer.provideMerge(infra));
  const engine = SyncEngine.layer.pipe(Layer.provideMerge(stores));
  const durable = Layer.mergeAll(Scheduler.layer(), Locks.layer, OutboundWebhooks.layer()).pipe(
    Layer.provideMerge(JobQueue.layerNoDeps),
    Layer.provideMerge(engine),
  );
  return InboundWebhooks.layer.pipe(Layer.provideMerge(Syncs.layer.pipe(Layer.provideMerge(durable))));
};

const iso = (ms: number) => new Date(ms).toISOString();

for (const dialect of dialects) {
  layer(pipelineLayer(dialect), { timeout: 120_000 })(`HubSpot webhooks through the pipeline on ${dialect}`, (it) => {
    it.effect(
      "duplicated and reordered deliveries are stored once, and the worker leaves exactly the fake's data",
      () =>
        TestServices.provideLive(
          Effect.scoped(
            Effect.gen(function* () {
              fake.reset();
              received.length = 0;
              fake.knobs.rateLimit = { max: 1_000_000, intervalMs: 1_000 };
              const engine = yield* SyncEngine;
              const inbound = yield* InboundWebhooks;
              const queue = yield* JobQueue;
              const store = yield* RecordStore;
              const ids = yield* createTestConnection("hubspot", {
                baseUrl,
                accessToken: hubSpotFakeToken,
                webhooks: { clientSecret, signatureVersions: ["v3"] },
              });
              const target = { ...ids, entity: "contacts" };
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
              const sent = received.length;
              expect(sent).toBeGreaterThan(1);

              let accepted = 0;
              let duplicates = 0;
              for (const request of received) {
                const receipt = yield* inbound.receive("hubspot", ids.connectionId, request);
                accepted += receipt.accepted;
                duplicates += receipt.duplicates;
              }
              // Each distinct event once; the rest were HubSpot's duplicates.
              expect(accepted).toBe(distinct);
              expect(duplicates).toBeGreaterThan(0);
              // A forged delivery is refused before anything is stored.
              const forged = {
                ...received[0]!,
                rawBody: received[0]!.rawBody.replace(/"objectId":\d+/, '"objectId":1'),
              };
              const refused = yield* inbound.receive("hubspot", ids.connectionId, forged).pipe(Effect.flip);
              expect(refused._tag).toBe("WebhookRejected");

              const syncs = yield* Syncs;
              yield* queue.worker({ handlers: syncs.handlers, pollMs: 100, concurrency: 4 });
              yield* Effect.gen(function* () {
                const counts = yield* queue.counts({ connectionId: ids.connectionId });
                return counts.queued + counts.running;
              }).pipe(
                Effect.repeat({ until: (open) => open === 0, schedule: Schedule.spaced("100 millis") }),
                Effect.timeoutFail({
                  duration: Duration.seconds(60),
                  onTimeout: () => new Error("webhook jobs did not finish"),
                }),
              );
              const counts = yield* queue.counts({ connectionId: ids.connectionId });
              expect(counts.dead).toBe(0);

              const local = new Map(
                Chunk.toReadonlyArray(yield* Stream.runCollect(store.stream(target))).map((r) => [r.externalId, r]),
              );
              const remote = fake.live("contacts");
              expect([...local.keys()].sort()).toEqual(remote.map((o) => o.id).sort());
              for (const object of remote) {
                expect(local.get(object.id)!.data.updatedAt).toBe(iso(object.updatedAt));
                expect(local.get(object.id)!.data.phone).toBe(object.properties.phone ?? null);
              }
            }),
          ),
        ),
    );
  });
}
