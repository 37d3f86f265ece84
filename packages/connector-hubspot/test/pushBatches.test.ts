import { expect, layer } from "@effect/vitest";
import { Conflicts, EntitySync, RecordStore, Records, type SyncTarget } from "@tandem/core";
import {
  createHubSpotWebhookEmitter,
  createTestConnection,
  hubSpotFakeToken,
  seededRandom,
  storedRecord,
  testEngineLayer,
} from "@tandem/testkit";
import { Effect, Schema, TestServices } from "effect";
import hubspot, { HubSpotConfig } from "../src/index.ts";
import { hubSpotFakeWithReceiver } from "./support/fakeWithReceiver.ts";

/*
 * Pushes to HubSpot through the engine (drain, batch writes, conditional writes, the merge of a
 * moved record) against the HubSpot fake over MSW, on PostgreSQL. The fake runs on a manual
 * clock: every change below advances it first, so `updatedAt`s strictly increase.
 */

const baseUrl = "https://hubspot.push-batches.test";
const receiverUrl = "https://tandem.test/webhooks/hubspot/push-batches";
const clientSecret = "push-batches-client-secret";
const { clock, fake, received } = hubSpotFakeWithReceiver({ baseUrl, receiverUrl, start: Date.UTC(2026, 4, 1) });
const config = { baseUrl, accessToken: hubSpotFakeToken, webhooks: { clientSecret, signatureVersions: ["v3"] } };

/** HubSpot whose contacts settle overlapping edits in the remote's favour (the default is manual). */
const remoteWins = {
  ...hubspot,
  name: "hubspot-remote-wins",
  entities: {
    ...hubspot.entities,
    contacts: { ...hubspot.entities.contacts, conflictPolicy: { kind: "source-priority", default: "remote" } as const },
  },
};

/** HubSpot contacts with neither batch nor conditional writes: the engine compares versions itself. */
const plainWrites = {
  ...hubspot,
  name: "hubspot-plain-writes",
  entities: {
    ...hubspot.entities,
    contacts: {
      ...hubspot.entities.contacts,
      write: { ...hubspot.entities.contacts.write!, conditional: false, batch: undefined },
    },
  },
};

const setup = (connector = "hubspot") =>
  Effect.gen(function* () {
    fake.reset();
    received.length = 0;
    fake.knobs.rateLimit = { max: 1_000_000, intervalMs: 1_000 };
    const ids = yield* createTestConnection(connector, config);
    return { ...ids, entity: "contacts" } satisfies SyncTarget;
  });

const tick = () => clock.advance(1_000);

/** The fake's requests to contacts since `from` (an index into the log), by method and path prefix. */
const requestsSince = (from: number, method: string, path: string) =>
  fake
    .requests()
    .slice(from)
    .filter((r) => r.method === method && r.path.split("?")[0] === `/crm/v3/objects/contacts${path}`);
const singleWritesSince = (from: number) =>
  fake
    .requests()
    .slice(from)
    .filter((r) => r.method === "PATCH" && /^\/crm\/v3\/objects\/contacts\/\d+$/.test(r.path.split("?")[0]!));

const live = TestServices.provideLive;

layer(testEngineLayer({ dialect: "postgres", connectors: [hubspot, remoteWins, plainWrites] }), { timeout: 180_000 })(
  "pushes to HubSpot in batches, conditionally",
  (it) => {
    const test = <A, E>(name: string, body: () => Effect.Effect<A, E, any>) =>
      it.effect(name, () => live(body()) as Effect.Effect<A, E, never>);

    test("150 edits go in two batch updates; a refused one fails alone with HubSpot's message", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const store = yield* RecordStore;
        const target = yield* setup();
        const seeded = fake.seedContacts(151);
        yield* engine.run({ ...target, mode: "full" });
        tick();
        const edited = seeded.slice(0, 150);
        for (const [i, contact] of edited.entries()) {
          // The 8th takes the last contact's email: HubSpot refuses it (409 CONFLICT).
          const changes = i === 7 ? { email: seeded[150]!.properties.email } : { jobTitle: `Title ${i}` };
          yield* store.applyLocalChange(target, contact.id, changes);
        }
        const from = fake.requests().length;
        const pushed = yield* engine.run({ ...target, mode: "push" });
        expect(pushed.updated).toBe(149);
        expect(pushed.errors).toEqual([expect.objectContaining({ externalId: edited[7]!.id, type: "Conflict" })]);
        expect(pushed.errors[0]!.message).toContain(`Existing ID: ${seeded[150]!.id}`);
        // Batch endpoints only: 150 updates in 100 + 50 (HubSpot refuses a whole batch for one
        // duplicate: the connector splits it, so the chunk with the refusal takes a few more).
        const batches = requestsSince(from, "POST", "/batch/update");
        expect(batches.length).toBeGreaterThanOrEqual(2);
        expect(batches.length).toBeLessThan(20);
        expect(singleWritesSince(from)).toHaveLength(0);
        for (const [i, contact] of edited.entries()) {
          if (i === 7) continue;
          expect(fake.store.get("contacts", contact.id)!.properties.jobtitle).toBe(`Title ${i}`);
          expect(yield* storedRecord(target, contact.id)).toMatchObject({ syncStatus: "synced", pendingChanges: null });
        }
        expect(fake.store.get("contacts", edited[7]!.id)!.properties.email).toBe(edited[7]!.properties.email);
        expect(yield* storedRecord(target, edited[7]!.id)).toMatchObject({ syncStatus: "failed" });
      }));

    test("local creates go in batch/create; one with a taken email fails alone, the others take HubSpot's ids", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const records = yield* Records;
        const target = yield* setup();
        yield* engine.run({ ...target, mode: "full" });
        // Initial matching (once per connection x entity, at the first push with a local create)
        // would link a local record to the vendor's contact of the same email. It is done before
        // the duplicate appears at HubSpot, so this create meets HubSpot's refusal instead.
        yield* records.create(target.tenantId, {
          ...target,
          localId: "host-first",
          fields: { email: "first@example.com" },
        });
        expect((yield* engine.run({ ...target, mode: "push" })).created).toBe(1);
        const [existing] = fake.seedContacts(1);
        const emails = ["new-1@example.com", existing!.properties.email!, "new-3@example.com"];
        for (const [i, email] of emails.entries()) {
          yield* records.create(target.tenantId, { ...target, localId: `host-${i}`, fields: { email } });
        }
        const from = fake.requests().length;
        const pushed = yield* engine.run({ ...target, mode: "push" });
        expect(pushed.created).toBe(2);
        expect(pushed.errors).toEqual([expect.objectContaining({ type: "Conflict" })]);
        expect(pushed.errors[0]!.message).toContain(`Existing ID: ${existing!.id}`);
        const creates = fake
          .requests()
          .slice(from)
          .filter((r) => r.method === "POST" && r.path.split("?")[0] === "/crm/v3/objects/contacts");
        expect(creates).toHaveLength(0);
        expect(requestsSince(from, "POST", "/batch/create").length).toBeGreaterThanOrEqual(1);
        for (const [i, email] of emails.entries()) {
          if (i === 1) continue;
          const created = fake.live("contacts").find((c) => c.properties.email === email);
          expect(created, email).toBeDefined();
          expect(yield* storedRecord(target, created!.id)).toMatchObject({
            localId: `host-${i}`,
            provisional: false,
            syncStatus: "synced",
          });
        }
        expect(fake.live("contacts")).toHaveLength(4);
      }));

    test("a remote edit made between pull and push is merged: the other field pushed, the same field by the policy", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const store = yield* RecordStore;
        const conflicts = yield* Conflicts;
        const target = yield* setup("hubspot-remote-wins");
        const [a, b] = fake.seedContacts(2);
        yield* engine.run({ ...target, mode: "full" });
        tick();
        yield* store.applyLocalChange(target, a!.id, { jobTitle: "Local title" });
        yield* store.applyLocalChange(target, b!.id, { firstName: "Local first" });
        tick();
        // After the pull, before the push: HubSpot's copies move on.
        fake.store.update("contacts", a!.id, { phone: "+15550101" });
        fake.store.update("contacts", b!.id, { firstname: "Remote first" });
        tick();
        yield* engine.run({ ...target, mode: "push" });
        // The moved records were not written over: a's merge (phone from HubSpot, title from
        // us) goes out in the next drain; b's overlapping field went to the policy (remote wins).
        yield* engine.run({ ...target, mode: "push" });
        expect(fake.store.get("contacts", a!.id)!.properties).toMatchObject({
          jobtitle: "Local title",
          phone: "+15550101",
        });
        expect(fake.store.get("contacts", b!.id)!.properties.firstname).toBe("Remote first");
        expect(yield* storedRecord(target, a!.id)).toMatchObject({ syncStatus: "synced", pendingChanges: null });
        expect((yield* storedRecord(target, a!.id)).data).toMatchObject({
          jobTitle: "Local title",
          phone: "+15550101",
        });
        expect((yield* storedRecord(target, b!.id)).data.firstName).toBe("Remote first");
        expect((yield* storedRecord(target, b!.id)).syncStatus).toBe("synced");
        const audit = (yield* conflicts.list(target.tenantId, { connectionId: target.connectionId })).items;
        expect(audit).toHaveLength(1);
        expect(audit[0]).toMatchObject({ externalId: b!.id, fields: ["firstName"] });
      }));

    test("a moved record under the default (manual) policy is left in conflict, HubSpot's value kept", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const store = yield* RecordStore;
        const conflicts = yield* Conflicts;
        const target = yield* setup();
        const [a] = fake.seedContacts(1);
        yield* engine.run({ ...target, mode: "full" });
        tick();
        yield* store.applyLocalChange(target, a!.id, { jobTitle: "Ours" });
        tick();
        fake.store.update("contacts", a!.id, { jobtitle: "Theirs" });
        tick();
        yield* engine.run({ ...target, mode: "push" });
        yield* engine.run({ ...target, mode: "push" });
        expect(fake.store.get("contacts", a!.id)!.properties.jobtitle).toBe("Theirs");
        expect((yield* storedRecord(target, a!.id)).syncStatus).toBe("conflict");
        const open = (yield* conflicts.list(target.tenantId, { connectionId: target.connectionId, status: "open" }))
          .items;
        expect(open).toEqual([expect.objectContaining({ externalId: a!.id, fields: ["jobTitle"] })]);
      }));

    test("an entity without conditional writes: the engine reads and compares, and merges a moved record", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const store = yield* RecordStore;
        const target = yield* setup("hubspot-plain-writes");
        const [a, b] = fake.seedContacts(2);
        yield* engine.run({ ...target, mode: "full" });
        tick();
        yield* store.applyLocalChange(target, a!.id, { jobTitle: "A title" });
        yield* store.applyLocalChange(target, b!.id, { jobTitle: "B title" });
        tick();
        fake.store.update("contacts", a!.id, { phone: "+15550202" });
        tick();
        const from = fake.requests().length;
        const first = yield* engine.run({ ...target, mode: "push" });
        expect(first.updated).toBe(1);
        // b (unmoved) was written; a (moved) was not written before its merge.
        expect(singleWritesSince(from).map((r) => r.path.split("?")[0])).toEqual([`/crm/v3/objects/contacts/${b!.id}`]);
        yield* engine.run({ ...target, mode: "push" });
        expect(fake.store.get("contacts", a!.id)!.properties).toMatchObject({
          jobtitle: "A title",
          phone: "+15550202",
        });
        expect(fake.store.get("contacts", b!.id)!.properties.jobtitle).toBe("B title");
        expect(yield* storedRecord(target, a!.id)).toMatchObject({ syncStatus: "synced", pendingChanges: null });
      }));

    test("the echo loop: a pushed edit and create, then their webhooks and the delta, make exactly one write each", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const store = yield* RecordStore;
        const records = yield* Records;
        const target = yield* setup();
        const seeded = fake.seedContacts(3);
        yield* engine.run({ ...target, mode: "full" });
        const emitter = createHubSpotWebhookEmitter({
          store: fake.store,
          targetUrl: receiverUrl,
          clientSecret,
          random: seededRandom(3),
        });
        tick();
        yield* store.applyLocalChange(target, seeded[0]!.id, { jobTitle: "Echo" });
        yield* store.applyLocalChange(target, seeded[1]!.id, { jobTitle: "Echo too" });
        const created = yield* records.create(target.tenantId, {
          ...target,
          localId: "host-1",
          fields: { email: "echo@example.com", firstName: "Echo" },
        });
        expect(created.syncStatus).toBe("pending");
        const from = fake.requests().length;
        const pushed = yield* engine.run({ ...target, mode: "push" });
        expect(pushed).toMatchObject({ created: 1, updated: 2, errors: [] });
        tick();
        const deliveries = yield* Effect.promise(() => emitter.flush());
        emitter.close();
        expect(deliveries.length).toBeGreaterThan(0);
        const webhooks = hubspot.webhooks!;
        const verifyConfig = Schema.decodeUnknownSync(HubSpotConfig)(config);
        const events = received.flatMap((request) => {
          expect(webhooks.verify({ config: verifyConfig, now: new Date() }, request)).toBe(true);
          return webhooks.parse(request);
        });
        const newId = fake.live("contacts").find((c) => c.properties.email === "echo@example.com")!.id;
        expect(events.map((e) => e.externalId)).toEqual(expect.arrayContaining([seeded[0]!.id, newId]));
        for (const event of events) {
          yield* engine.syncRecord(
            { ...target, entity: event.entity },
            { externalId: event.externalId, kind: event.kind, occurredAt: event.occurredAt },
          );
        }
        tick();
        yield* engine.run({ ...target, mode: "delta" });
        const again = yield* engine.run({ ...target, mode: "push" });
        expect(again).toMatchObject({ created: 0, updated: 0, deleted: 0, errors: [] });
        // Exactly one write: one batch update (both edits) and one create, nothing after the echoes.
        const writes = fake
          .requests()
          .slice(from)
          .filter((r) => r.method !== "GET" && !r.path.includes("/search") && !r.path.includes("/batch/read"));
        expect(writes.map((r) => r.path.split("?")[0]).sort()).toEqual(
          ["/crm/v3/objects/contacts", "/crm/v3/objects/contacts/batch/update"].sort(),
        );
        // The create's echo arrived under HubSpot's id: one record, the host's id kept.
        const stored = yield* storedRecord(target, newId);
        expect(stored).toMatchObject({ localId: "host-1", provisional: false, syncStatus: "synced" });
        for (const id of [seeded[0]!.id, seeded[1]!.id]) {
          expect((yield* storedRecord(target, id)).syncStatus).toBe("synced");
        }
      }));
  },
);

layer(
  testEngineLayer({
    dialect: "postgres",
    connectors: [hubspot],
    // Small claims, several in flight at once: a drain of 60 edits is 9 claimed batches.
    config: { push: { batchSize: 7, batchesInFlight: 3 } },
  }),
  { timeout: 180_000 },
)("pushes to HubSpot with several claimed batches in flight", (it) => {
  it.effect("every edit is written exactly once, one batch/update per claimed batch", () =>
    live(
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const store = yield* RecordStore;
        const target = yield* setup();
        const seeded = fake.seedContacts(60);
        yield* engine.run({ ...target, mode: "full" });
        tick();
        for (const [i, contact] of seeded.entries()) {
          yield* store.applyLocalChange(target, contact.id, { jobTitle: `In flight ${i}` });
        }
        const from = fake.requests().length;
        const pushed = yield* engine.run({ ...target, mode: "push" });
        expect(pushed).toMatchObject({ updated: 60, errors: [] });
        // A claim never takes an entry of a batch still in flight: 9 claims of at most 7, each
        // one batch/update (and its batch/read version check), nothing written twice.
        expect(requestsSince(from, "POST", "/batch/update")).toHaveLength(9);
        expect(requestsSince(from, "POST", "/batch/read")).toHaveLength(9);
        expect(singleWritesSince(from)).toHaveLength(0);
        for (const [i, contact] of seeded.entries()) {
          expect(fake.store.get("contacts", contact.id)!.properties.jobtitle).toBe(`In flight ${i}`);
          expect(yield* storedRecord(target, contact.id)).toMatchObject({ syncStatus: "synced", pendingChanges: null });
        }
        const again = yield* engine.run({ ...target, mode: "push" });
        expect(again).toMatchObject({ updated: 0, unchanged: 0, errors: [] });
      }),
    ),
  );
});
