import { expect, layer } from "@effect/vitest";
import {
  Conflicts,
  InboundWebhooks,
  JobQueue,
  OutboundWebhooks,
  RecordEvents,
  Records,
  SyncJobHandlers,
  type SyncTarget,
  SyncTriggers,
} from "@tandem/core";
import {
  AcmeCrm,
  type AcmeWebhookEvent,
  acmeConnector,
  acmeWebhookRequest,
  createTestConnection,
  dialects,
  startAcmeServer,
  testEngineLayer,
} from "@tandem/testkit";
import { Clock, Duration, Effect, TestServices } from "effect";
import { HttpResponse, http } from "msw";
import { afterAll, beforeAll } from "vitest";

/*
 * Outbound `record.*` events come from the change feed: every path that changes a record (a sync
 * run, a webhook job, a local edit, a push result, a pulled conflict and its resolution) yields
 * its event exactly once per change and per subscription, with nothing sent twice except a
 * redelivery. The engine runs as a server does: a queue worker and the record event dispatcher.
 */

const acme = new AcmeCrm();
const WEBHOOK_SECRET = "whsec-acme-events";

/** Where the subscriptions deliver, answered by MSW like the vendor: what arrived, and what it was answered. */
const RECEIVER = "https://receiver.test";
interface Received {
  readonly path: string;
  readonly status: number;
  readonly eventId: string;
  readonly body: {
    readonly id: string;
    readonly type: string;
    readonly data: {
      readonly externalId: string;
      readonly position: string;
      readonly version: number;
      readonly record?: Record<string, unknown>;
    };
  };
}
const receiver = { received: [] as Array<Received>, status: 200 };

let server: ReturnType<typeof startAcmeServer>;
beforeAll(() => {
  server = startAcmeServer(acme);
  server.server.use(
    http.post(`${RECEIVER}/:subscription`, async ({ request, params }) => {
      const body = (await request.json()) as Received["body"];
      const status = receiver.status;
      receiver.received.push({
        path: String(params.subscription),
        status,
        eventId: request.headers.get("tandem-event-id") ?? "",
        body,
      });
      return new HttpResponse(null, { status });
    }),
  );
});
afterAll(() => server.close());

/** Contacts with a person deciding overlapping edits: a pull that meets a local edit opens a conflict. */
const acmeManual = {
  ...acmeConnector,
  name: "acme-crm-manual",
  entities: { contacts: { ...acmeConnector.entities.contacts, conflictPolicy: { kind: "manual" } as const } },
};

const live = TestServices.provideLive;

/** Polls `check` until it holds, for up to a minute (a loaded machine is slow, never wrong). */
const eventually = <E, R>(what: string, check: Effect.Effect<boolean, E, R>) =>
  Effect.gen(function* () {
    const deadline = (yield* Clock.currentTimeMillis) + 60_000;
    while (!(yield* check)) {
      if ((yield* Clock.currentTimeMillis) > deadline) return yield* Effect.dieMessage(`timed out waiting: ${what}`);
      yield* Effect.sleep(Duration.millis(50));
    }
  });

/** The engine's background work, for the test's scope: a worker for every job kind, and the dispatcher. */
const startEngine = Effect.gen(function* () {
  const handlers = (yield* SyncJobHandlers).handlers;
  yield* (yield* JobQueue).worker({ handlers, concurrency: 4, pollMs: 100 });
  yield* (yield* RecordEvents).run({ pollMs: 100 });
});

/** A connection to a fresh fake with `n` contacts, and two subscriptions: every `record.*` event, and updates only. */
const setup = (n: number) =>
  Effect.gen(function* () {
    acme.reset();
    receiver.received.length = 0;
    receiver.status = 200;
    acme.seed(n);
    const ids = yield* createTestConnection("acme-crm-manual", {
      baseUrl: acme.baseUrl,
      token: acme.token,
      webhookSecret: WEBHOOK_SECRET,
    });
    const target: SyncTarget = { ...ids, entity: "contacts" };
    return target;
  });

const subscribe = (
  tenantId: string,
  path: string,
  events: ReadonlyArray<"record.created" | "record.updated" | "record.deleted">,
) => Effect.flatMap(OutboundWebhooks, (o) => o.create(tenantId, { url: `${RECEIVER}/${path}`, events }));

/** Runs a sync mode as a queued job, to its end. */
const runJob = (target: SyncTarget, mode: "full" | "delta" | "push") =>
  Effect.gen(function* () {
    const { jobId } = yield* (yield* SyncTriggers).trigger(target.tenantId, { ...target, mode });
    const queue = yield* JobQueue;
    yield* eventually(
      `${mode} job ${jobId}`,
      Effect.map(queue.get(jobId), (j) => j.status === "completed"),
    );
  });

/** A signed Acme webhook delivery, received as the inbound route receives it. */
const vendorSays = (target: SyncTarget, event: Omit<AcmeWebhookEvent, "occurredAt">) =>
  Effect.gen(function* () {
    const now = new Date(yield* Clock.currentTimeMillis);
    const request = acmeWebhookRequest({
      secret: WEBHOOK_SECRET,
      events: [{ ...event, occurredAt: now.toISOString() }],
      now,
    });
    yield* (yield* InboundWebhooks).receive("acme-crm-manual", target.connectionId, request);
  });

/** The events a subscription's receiver accepted, as `type externalId`, once each, in arrival order. */
const accepted = (path: string) => {
  const seen = new Set<string>();
  const out: Array<string> = [];
  for (const r of receiver.received) {
    if (r.path !== path || r.status !== 200 || seen.has(r.eventId)) continue;
    seen.add(r.eventId);
    out.push(`${r.body.type} ${r.body.data.externalId}`);
  }
  return out;
};

for (const dialect of dialects) {
  layer(
    testEngineLayer({
      dialect,
      connectors: [acmeManual],
      // Deliveries retried quickly: the ordering test fails them on purpose. Local edits wait
      // for the explicit push runs below (a push by itself, a second after each edit, would
      // otherwise race the steps: one change more, or two folded into one event).
      config: { retry: { baseDelayMs: 100, maxDelayMs: 400, defaultMaxAttempts: 10 }, push: { intervalMs: 600_000 } },
    }),
    { timeout: 180_000 },
  )(`record events from the change feed on ${dialect}`, (it) => {
    it.scoped(
      "every change path yields its event exactly once per change and per subscription",
      () =>
        live(
          Effect.gen(function* () {
            yield* startEngine;
            const target = yield* setup(4);
            const records = yield* Records;
            yield* subscribe(target.tenantId, "all", ["record.created", "record.updated", "record.deleted"]);
            yield* subscribe(target.tenantId, "updates", ["record.updated"]);
            const all: Array<string> = [];
            const updates: Array<string> = [];
            /** After one step: exactly these new events have arrived at each receiver (and nothing else, later). */
            const step = (name: string, expectedAll: ReadonlyArray<string>, expectedUpdates: ReadonlyArray<string>) =>
              Effect.gen(function* () {
                all.push(...expectedAll);
                updates.push(...expectedUpdates);
                yield* eventually(
                  `${name}: ${all.length} events`,
                  Effect.sync(
                    () => accepted("all").length >= all.length && accepted("updates").length >= updates.length,
                  ),
                );
                expect(accepted("all").sort(), name).toEqual([...all].sort());
                expect(accepted("updates").sort(), name).toEqual([...updates].sort());
              });

            // A sync run creates the four records.
            yield* runJob(target, "full");
            yield* step(
              "full sync",
              ["record.created c000001", "record.created c000002", "record.created c000003", "record.created c000004"],
              [],
            );
            // A webhook job updates one and deletes another.
            acme.update("c000001", { firstName: "Hooked" });
            yield* vendorSays(target, { id: "e1", type: "contact.updated", objectId: "c000001" });
            yield* step("webhook update", ["record.updated c000001"], ["record.updated c000001"]);
            acme.remove("c000002");
            yield* vendorSays(target, { id: "e2", type: "contact.deleted", objectId: "c000002" });
            yield* step("webhook delete", ["record.deleted c000002"], []);
            // A local edit (not a critical field: pending), then the push run that writes it.
            yield* records.update(target.tenantId, {
              ...target,
              externalId: "c000003",
              fields: { firstName: "Local" },
            });
            yield* step("local edit", ["record.updated c000003"], ["record.updated c000003"]);
            yield* runJob(target, "push");
            yield* step("push result", ["record.updated c000003"], ["record.updated c000003"]);
            // A local edit and a remote edit of the same field: the pull opens a conflict, a person resolves it.
            yield* records.update(target.tenantId, { ...target, externalId: "c000004", fields: { lastName: "Mine" } });
            yield* step("second local edit", ["record.updated c000004"], ["record.updated c000004"]);
            acme.update("c000004", { lastName: "Theirs" });
            yield* runJob(target, "delta");
            yield* step("pulled conflict", ["record.updated c000004"], ["record.updated c000004"]);
            const [conflict] = (yield* (yield* Conflicts).list(target.tenantId, { status: "open" })).items;
            expect(conflict?.externalId).toBe("c000004");
            yield* records.resolveConflict(target.tenantId, conflict!.id, { choose: "remote" }, "api-key:test");
            yield* step("conflict resolution", ["record.updated c000004"], ["record.updated c000004"]);

            // Nothing more arrives: each change was one event, per subscription.
            yield* Effect.sleep(Duration.millis(1_000));
            expect(accepted("all").sort()).toEqual([...all].sort());
            expect(accepted("updates").sort()).toEqual([...updates].sort());
            // Event ids are unique, and every request was a first delivery (the receiver never failed).
            const ids = receiver.received.map((r) => `${r.path} ${r.eventId}`);
            expect(new Set(ids).size).toBe(ids.length);
            expect(receiver.received).toHaveLength(all.length + updates.length);
            // One event id per change: the two subscriptions got the same event for the same change.
            const allIds = new Set(receiver.received.filter((r) => r.path === "all").map((r) => r.eventId));
            for (const r of receiver.received.filter((r) => r.path === "updates"))
              expect(allIds.has(r.eventId)).toBe(true);
            // The run's events carry the record, positions grow per record.
            const c4 = receiver.received.filter((r) => r.path === "all" && r.body.data.externalId === "c000004");
            expect(c4.map((r) => r.body.data.version)).toEqual([1, 2, 3, 4]);
            expect(c4.at(-1)?.body.data.record).toMatchObject({ lastName: "Theirs" });
          }),
        ),
      { timeout: 180_000 },
    );

    it.scoped(
      "a record's events reach a subscription in feed order; a failed delivery is redelivered, nothing else twice",
      () =>
        live(
          Effect.gen(function* () {
            yield* startEngine;
            const target = yield* setup(2);
            const records = yield* Records;
            const outbound = yield* OutboundWebhooks;
            const sub = yield* subscribe(target.tenantId, "ordered", ["record.created", "record.updated"]);
            yield* runJob(target, "full");
            yield* eventually(
              "the created events",
              Effect.sync(() => accepted("ordered").length === 2),
            );
            const made = Effect.map(
              outbound.deliveries(target.tenantId, { subscriptionId: sub.id, limit: 100 }),
              (page) => page.items.length,
            );
            // The receiver is down while the record changes three times, each change dispatched on its own.
            receiver.status = 503;
            for (const [i, firstName] of ["One", "Two", "Three"].entries()) {
              yield* records.update(target.tenantId, { ...target, externalId: "c000001", fields: { firstName } });
              yield* eventually(
                `event ${i + 1} dispatched`,
                Effect.map(made, (n) => n === 3 + i),
              );
            }
            yield* eventually(
              "failed attempts",
              Effect.sync(() => receiver.received.filter((r) => r.status === 503).length >= 3),
            );
            receiver.status = 200;
            yield* eventually(
              "the updates accepted",
              Effect.sync(() => accepted("ordered").length === 5),
            );
            // First acceptance of each event, in the record's feed order.
            const firstAccepted = new Map<string, Received>();
            for (const r of receiver.received) {
              if (r.status === 200 && !firstAccepted.has(r.eventId)) firstAccepted.set(r.eventId, r);
            }
            const c1 = [...firstAccepted.values()].filter((r) => r.body.data.externalId === "c000001");
            expect(c1.map((r) => [r.body.type, r.body.data.version, r.body.data.record?.firstName])).toEqual([
              ["record.created", 1, "First1"],
              ["record.updated", 2, "One"],
              ["record.updated", 3, "Two"],
              ["record.updated", 4, "Three"],
            ]);
            // A request seen twice is the same event again (a redelivery): same id, same body.
            const byId = new Map<string, Array<Received>>();
            for (const r of receiver.received) byId.set(r.eventId, [...(byId.get(r.eventId) ?? []), r]);
            expect(byId.size).toBe(5);
            for (const copies of byId.values()) {
              for (const copy of copies) expect(copy.body).toEqual(copies[0]!.body);
            }
            expect(receiver.received.some((r) => r.status === 503)).toBe(true);
          }),
        ),
      { timeout: 180_000 },
    );

    it.scoped("a tenant's first record subscription hears of changes from then on, not of the history", () =>
      live(
        Effect.gen(function* () {
          yield* startEngine;
          const target = yield* setup(3);
          yield* runJob(target, "full");
          yield* subscribe(target.tenantId, "late", ["record.created", "record.updated", "record.deleted"]);
          // Several dispatcher passes: the three records synced before are not news.
          yield* Effect.sleep(Duration.millis(1_000));
          expect(accepted("late")).toEqual([]);
          yield* (yield* Records).update(target.tenantId, {
            ...target,
            externalId: "c000002",
            fields: { firstName: "Later" },
          });
          yield* eventually(
            "the edit's event",
            Effect.sync(() => accepted("late").length > 0),
          );
          yield* Effect.sleep(Duration.millis(500));
          expect(accepted("late")).toEqual(["record.updated c000002"]);
        }),
      ),
    );
  });
}
