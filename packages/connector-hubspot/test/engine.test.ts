import { expect, layer } from "@effect/vitest";
import {
  callConnector,
  EntitySync,
  makeConnectorContext,
  makeTokenBucket,
  RecordStore,
  type StoredRecord,
  type SyncTarget,
} from "@tandem/core";
import {
  createHubSpotWebhookEmitter,
  createTestConnection,
  dialects,
  type HubSpotObjectType,
  hubSpotFakeToken,
  runSyncUntilDone,
  seededRandom,
  storedRecord,
  storedRecords,
  testEngineLayer,
} from "@tandem/testkit";
import { Effect, Schema, TestServices } from "effect";
import { http } from "msw";
import hubspot, { HubSpotConfig, hubSpotRateLimit, upsertContactsByEmail } from "../src/index.ts";
import { hubSpotFakeWithReceiver } from "./support/fakeWithReceiver.ts";

/*
 * The HubSpot connector through the EntitySync and the real record store, on PGlite and
 * PostgreSQL, against the testkit's HubSpot fake (MSW). The fake runs on a manual clock:
 * record timestamps are ours to place, and every change below advances it first so the
 * vendor's modification times strictly increase.
 */

const baseUrl = "https://hubspot.engine.test";
const receiverUrl = "https://tandem.test/webhooks/hubspot/engine-test";
const clientSecret = "engine-test-client-secret";
const { clock, fake, received, server } = hubSpotFakeWithReceiver({
  baseUrl,
  receiverUrl,
  start: Date.UTC(2026, 4, 1),
});

const config = {
  baseUrl,
  accessToken: hubSpotFakeToken,
  webhooks: { clientSecret, signatureVersions: ["v3"] },
};

/** A clean fake and a new connection to it (earlier tests' records live under other connections). */
const setup = (entity: HubSpotObjectType = "contacts") =>
  Effect.gen(function* () {
    fake.reset();
    received.length = 0;
    // A roomy window, so the connection's token bucket learns a high rate from the headers and
    // the suite is not paced at HubSpot's 19 calls a second. The 429 test injects its own.
    fake.knobs.rateLimit = { max: 1_000_000, intervalMs: 1_000 };
    const ids = yield* createTestConnection("hubspot", config);
    return { ...ids, entity } satisfies SyncTarget;
  });

/** Every change after this one is strictly later than everything before. */
const tick = () => clock.advance(1_000);

const iso = (ms: number) => new Date(ms).toISOString();

/** The store holds exactly the fake's live objects, each at its current version. */
const expectMirrors = (target: SyncTarget, type: HubSpotObjectType) =>
  Effect.gen(function* () {
    const local = yield* storedRecords(target);
    const remote = fake.live(type);
    expect([...local.keys()].sort()).toEqual(remote.map((o) => o.id).sort());
    for (const object of remote) {
      const record = local.get(object.id) as StoredRecord;
      expect(record.data.updatedAt, `updatedAt of ${object.id}`).toBe(iso(object.updatedAt));
      if (type === "contacts") {
        expect(record.data.email).toBe(object.properties.email ?? null);
        expect(record.data.lifecycleStage).toBe(object.properties.lifecyclestage ?? null);
        expect(record.data.phone).toBe(object.properties.phone ?? null);
      } else {
        expect(record.data.name).toBe(object.properties.name ?? null);
        expect(record.data.city).toBe(object.properties.city ?? null);
      }
    }
  });

/** A connector context made the way the engine makes one, for the calls the engine has no strategy for (batch upsert). */
const connectorContext = makeConnectorContext(
  hubspot,
  Schema.decodeUnknownSync(HubSpotConfig)(config),
  makeTokenBucket(hubSpotRateLimit),
  new AbortController().signal,
);

/** Engine tests run on the real clock: the rate budget must not wait on a TestClock nobody advances. */
const live = TestServices.provideLive;

for (const dialect of dialects) {
  layer(testEngineLayer({ dialect, connectors: [hubspot] }), { timeout: 120_000 })(
    `HubSpot through the EntitySync on ${dialect}`,
    (it) => {
      const test = <A, E>(name: string, body: () => Effect.Effect<A, E, any>, timeout?: number) =>
        it.effect(name, () => live(body()) as Effect.Effect<A, E, never>, timeout);

      test("full sync of contacts and companies stores exactly the fake's objects; a rerun rewrites nothing", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const contacts = yield* setup("contacts");
          const companies = { ...contacts, entity: "companies" };
          fake.seedContacts(230);
          fake.seedCompanies(12);
          const first = yield* engine.run({ ...contacts, mode: "full" });
          expect(first).toMatchObject({ created: 230, updated: 0, deleted: 0, errors: [], pages: 3 });
          expect(yield* engine.run({ ...companies, mode: "full" })).toMatchObject({ created: 12, errors: [] });
          yield* expectMirrors(contacts, "contacts");
          yield* expectMirrors(companies, "companies");
          const again = yield* engine.run({ ...contacts, mode: "full" });
          expect(again).toMatchObject({ created: 0, updated: 0, unchanged: 230, errors: [] });
        }));

      // The real 10,000-result cap (not the `searchResultCap` knob): 10,300 changed contacts, 30 of
      // them sharing one timestamp near where a single query would stop. Each page is a new query
      // from the last (modification time, id) read, so no query pages past the cap, and the ties
      // kept for the next page are read exactly once.
      test(
        "delta past HubSpot's 10,000-result search cap stores every changed contact once",
        () =>
          Effect.gen(function* () {
            const engine = yield* EntitySync;
            const store = yield* RecordStore;
            const target = yield* setup();
            const now = clock.now();
            fake.seedContacts(5, { endAt: now - 20_000_000 });
            expect(yield* engine.run({ ...target, mode: "full" })).toMatchObject({ created: 5, errors: [] });
            fake.seedContacts(9_990, { endAt: now - 1_000_000, spacingMs: 10 });
            fake.seedContacts(30, { endAt: now - 500_000, spacingMs: 0 });
            fake.seedContacts(280, { endAt: now, spacingMs: 10 });
            const before = fake.requests().length;
            const delta = yield* engine.run({ ...target, mode: "delta", options: { batchSize: 2_000 } });
            expect(delta).toMatchObject({
              mode: "delta",
              created: 10_300,
              updated: 0,
              errors: [],
              deltaCursor: iso(now),
            });
            const searches = fake
              .requests()
              .slice(before)
              .filter((r) => r.path.endsWith("/search"));
            // 200 a page: more than 50 pages is past what one query could page by `after`.
            expect(searches.length).toBeGreaterThan(50);
            expect(searches.every((r) => r.status === 200)).toBe(true);
            expect(yield* store.count(target)).toBe(10_305);
            yield* expectMirrors(target, "contacts");
          }),
        120_000,
      );

      // Issue 18: 600 contacts edited in a 20-minute backlog, one of them edited again after the
      // delta's first search page was served. Paged by offset, that edit moved the contact to the
      // end of the sorted results and the next page started one later: a neighbour was never read,
      // and neither the next delta's overlap nor reconciliation (which compares ids) repaired it.
      test("a contact re-edited between two search pages of a delta leaves no other contact stale", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const target = yield* setup();
          const seeded = fake.seedContacts(600, { endAt: clock.now() - 30 * 60_000 });
          expect(yield* engine.run({ ...target, mode: "full" })).toMatchObject({ created: 600, errors: [] });
          for (const [i, object] of seeded.entries()) {
            clock.advance(2_000);
            fake.store.update("contacts", object.id, { jobtitle: `Backlog ${i}`, phone: `+1555${i}` });
          }
          const reEdited = seeded[50]!;
          let searches = 0;
          server.use(
            http.post(`${baseUrl}/crm/v3/objects/contacts/search`, () => {
              // After page 1 is served, before page 2 is answered (no answer here: the fake answers).
              if (++searches === 2) {
                clock.advance(1_000);
                fake.store.update("contacts", reEdited.id, { phone: "+15559999" });
              }
            }),
          );
          const delta = yield* engine
            .run({ ...target, mode: "delta" })
            .pipe(Effect.ensuring(Effect.sync(() => server.resetHandlers())));
          expect(searches).toBeGreaterThan(2);
          expect(delta).toMatchObject({
            errors: [],
            deltaCursor: iso(fake.store.get("contacts", reEdited.id)!.updatedAt),
          });
          yield* expectMirrors(target, "contacts");
          expect((yield* storedRecord(target, reEdited.id)).data.phone).toBe("+15559999");
        }));

      test("delta reads changes and soft-deletes what was archived since the cursor", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const store = yield* RecordStore;
          const target = yield* setup();
          const seeded = fake.seedContacts(30);
          yield* engine.run({ ...target, mode: "full" });
          tick();
          fake.store.update("contacts", seeded[3]!.id, { lifecyclestage: "customer" });
          fake.store.archive("contacts", seeded[4]!.id);
          fake.store.archive("contacts", seeded[5]!.id);
          fake.store.create("contacts", { email: "late@example.com", firstname: "Late" });
          const delta = yield* engine.run({ ...target, mode: "delta" });
          expect(delta).toMatchObject({ created: 1, updated: 1, deleted: 2, errors: [] });
          expect((yield* storedRecord(target, seeded[4]!.id)).deletedAt).not.toBeNull();
          expect(yield* store.count(target)).toBe(29);
          yield* expectMirrors(target, "contacts");
        }));

      test("reconciliation soft-deletes archived contacts, fetches missed ones, and quarantines a mass deletion", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const target = yield* setup();
          const seeded = fake.seedContacts(40);
          yield* engine.run({ ...target, mode: "full" });
          tick();
          for (const object of seeded.slice(0, 4)) fake.store.archive("contacts", object.id);
          fake.store.create("contacts", { email: "missed-1@example.com" });
          fake.store.create("contacts", { email: "missed-2@example.com" });
          const reconciled = yield* engine.run({ ...target, mode: "reconcile" });
          expect(reconciled).toMatchObject({ deleted: 4, created: 2, errors: [] });
          expect(reconciled.quarantine).toBeUndefined();
          yield* expectMirrors(target, "contacts");

          // Half the contacts gone at once looks like an outage, not a cleanup: nothing is deleted.
          tick();
          for (const object of seeded.slice(4, 24)) fake.store.archive("contacts", object.id);
          const guarded = yield* engine.run({ ...target, mode: "reconcile" });
          expect(guarded.deleted).toBe(0);
          expect(guarded.quarantine).toMatchObject({ wouldDelete: 20, stored: 38 });
          const confirmed = yield* engine.run({ ...target, mode: "reconcile", options: { allowMassDeletion: true } });
          expect(confirmed.deleted).toBe(20);
          yield* expectMirrors(target, "contacts");
        }));

      test("webhook deliveries (duplicated, reordered) verified, parsed and synced leave exactly the fake's state", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const target = yield* setup();
          const seeded = fake.seedContacts(20);
          yield* engine.run({ ...target, mode: "full" });
          const emitter = createHubSpotWebhookEmitter({
            store: fake.store,
            targetUrl: receiverUrl,
            clientSecret,
            duplicateRate: 0.5,
            reorder: true,
            maxEventsPerRequest: 4,
            random: seededRandom(7),
          });
          tick();
          fake.store.update("contacts", seeded[0]!.id, { lifecyclestage: "customer", phone: "+15550001" });
          fake.store.update("contacts", seeded[1]!.id, { jobtitle: "CTO" });
          fake.store.archive("contacts", seeded[2]!.id);
          fake.store.archive("contacts", seeded[3]!.id);
          tick();
          // Changed, then archived: a reordered propertyChange arriving last must not bring it back.
          fake.store.update("contacts", seeded[4]!.id, { phone: "+15550004" });
          tick();
          fake.store.archive("contacts", seeded[4]!.id);
          const created = fake.store.create("contacts", { email: "hooked@example.com", firstname: "Hook" });
          if ("failure" in created) throw new Error(created.failure.message);
          const deliveries = yield* Effect.promise(() => emitter.flush());
          emitter.close();
          expect(deliveries.every((d) => d.status === 204)).toBe(true);

          const webhooks = hubspot.webhooks!;
          const verifyConfig = Schema.decodeUnknownSync(HubSpotConfig)(config);
          const events = received.flatMap((request) => {
            expect(webhooks.verify({ config: verifyConfig, now: new Date() }, request)).toBe(true);
            return webhooks.parse(request);
          });
          const sent = deliveries.flatMap((d) => d.events);
          expect(events).toHaveLength(sent.length);
          const distinct = new Set(events.map((e) => e.eventId));
          expect(distinct.size).toBeLessThan(events.length); // duplicates were delivered
          const order = events.map((e) => Number(e.eventId));
          expect(order).not.toEqual([...order].sort((a, b) => a - b)); // and out of order

          // Every event, duplicates included, is a single-record sync; a replayed one changes nothing.
          const actions = new Map<string, Array<string>>();
          for (const event of events) {
            const result = yield* engine.syncRecord(
              { ...target, entity: event.entity },
              { externalId: event.externalId, kind: event.kind, occurredAt: event.occurredAt },
            );
            actions.set(event.eventId, [...(actions.get(event.eventId) ?? []), result.action]);
          }
          for (const [eventId, outcomes] of actions) {
            for (const repeat of outcomes.slice(1)) expect(repeat, `replay of event ${eventId}`).toBe("unchanged");
          }
          for (const id of [seeded[2]!.id, seeded[3]!.id, seeded[4]!.id]) {
            expect((yield* storedRecord(target, id)).deletedAt, `contact ${id} is deleted`).not.toBeNull();
          }
          expect((yield* storedRecord(target, created.object.id)).data.email).toBe("hooked@example.com");
          yield* expectMirrors(target, "contacts");
        }));

      test("pushes local changes; a duplicate email (409) fails the push for good; a 207 batch upsert stores what succeeded", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const store = yield* RecordStore;
          const target = yield* setup();
          const seeded = fake.seedContacts(10);
          yield* engine.run({ ...target, mode: "full" });
          tick();
          const [a, b, c] = seeded;
          yield* store.applyLocalChange(target, a!.id, { lifecycleStage: "customer" });
          // b takes c's email: HubSpot answers 409 CONFLICT "Contact already exists. Existing ID: c".
          yield* store.applyLocalChange(target, b!.id, { email: c!.properties.email });
          const pushed = yield* engine.run({ ...target, mode: "push" });
          expect(pushed.updated).toBe(1);
          expect(pushed.errors).toEqual([expect.objectContaining({ externalId: b!.id, type: "Conflict" })]);
          expect(pushed.errors[0]!.message).toContain(`Existing ID: ${c!.id}`);
          expect(fake.store.get("contacts", a!.id)!.properties.lifecyclestage).toBe("customer");
          expect(fake.store.get("contacts", b!.id)!.properties.email).toBe(b!.properties.email);
          expect(yield* storedRecord(target, a!.id)).toMatchObject({ syncStatus: "synced", pendingChanges: null });
          expect((yield* storedRecord(target, a!.id)).data.updatedAt).toBe(
            iso(fake.store.get("contacts", a!.id)!.updatedAt),
          );
          expect(yield* storedRecord(target, b!.id)).toMatchObject({ syncStatus: "failed" });

          // Creating a contact with a taken email: 409, a Conflict naming the existing contact.
          const ctx = yield* connectorContext;
          const duplicate = yield* callConnector(() =>
            hubspot.entities.contacts.write!.create!(ctx, { email: c!.properties.email }),
          ).pipe(Effect.flip);
          expect(duplicate).toMatchObject({ _tag: "Conflict", externalId: c!.id });

          // Batch upsert by email: one new, one existing, one refused (invalid email) -> 207.
          tick();
          const upserted = yield* Effect.promise(() =>
            upsertContactsByEmail(ctx, [
              { email: "brand-new@example.com", firstName: "Brand" },
              { email: c!.properties.email!, jobTitle: "VP Sales" },
              { email: "not an email", firstName: "Broken" },
            ]),
          );
          expect(fake.requests().at(-1)).toMatchObject({ status: 207 });
          expect(upserted.failures).toHaveLength(1);
          expect(upserted.failures[0]!.message).toContain("not an email");
          expect(upserted.contacts.map((contact) => contact.email).sort()).toEqual(
            ["brand-new@example.com", c!.properties.email].sort(),
          );
          const delta = yield* engine.run({ ...target, mode: "delta" });
          expect(delta).toMatchObject({ created: 1, errors: [] });
          expect((yield* storedRecord(target, c!.id)).data.jobTitle).toBe("VP Sales");
          const local = yield* storedRecords(target);
          expect([...local.values()].some((r) => r.data.email === "not an email")).toBe(false);
          expect(local.size).toBe(fake.live("contacts").length);
        }));

      test("full and delta syncs under 429s and 5xx complete with exactly the fake's data", () =>
        Effect.gen(function* () {
          const target = yield* setup();
          fake.seedContacts(450);
          const failures: Record<string, number> = {};
          fake.knobs.serverErrorRate = 0.2;
          fake.failNext({ kind: "rateLimit", retryAfterSeconds: 1 });
          yield* runSyncUntilDone(target, "full", failures);
          yield* expectMirrors(target, "contacts");

          tick();
          fake.churn("contacts", { updates: 15, creates: 5, archives: 3 });
          fake.failNext({ kind: "status", status: 503 }, { kind: "rateLimit", retryAfterSeconds: 1 });
          const delta = yield* runSyncUntilDone(target, "delta", failures);
          expect(delta.errors).toEqual([]);
          expect(delta.deleted).toBeGreaterThan(0);
          expect(failures.RateLimited).toBeGreaterThanOrEqual(2);
          expect(failures.Unavailable).toBeGreaterThan(0);
          fake.knobs.serverErrorRate = 0;
          yield* expectMirrors(target, "contacts");
        }));
    },
  );
}
