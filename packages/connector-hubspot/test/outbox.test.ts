import { expect, layer } from "@effect/vitest";
import {
  Conflicts,
  EntitySync,
  JobQueue,
  LocalChanges,
  PUSH_DRAIN_JOB_KIND,
  RecordStore,
  Records,
  type SyncTarget,
} from "@tandem/core";
import { dialects, eventually, startQueueWorker, testEngineLayer } from "@tandem/testkit";
import { Effect, TestServices } from "effect";
import hubspot from "../src/index.ts";
import { hubSpotOverMsw } from "./support/hubSpotOverMsw.ts";

/*
 * Local changes reach HubSpot by themselves: the test engine's queue worker runs (as a server's
 * does) and nothing below asks for a push. The HubSpot fake answers through MSW on the real
 * clock; each test polls the fake until it holds the change, then checks the record store.
 */

const { fake, connect } = hubSpotOverMsw({ baseUrl: "https://hubspot.outbox.test" });

/** HubSpot whose contacts wait a minute before a non-critical change is pushed: critical ones must not. */
const slowHubspot = {
  ...hubspot,
  name: "hubspot-slow-push",
  entities: { ...hubspot.entities, contacts: { ...hubspot.entities.contacts, pushIntervalMs: 60_000 } },
};

/** The fake's write requests to one contact (or to the collection: a create). */
const writesTo = (path: string, method: string) =>
  fake.requests().filter((r) => r.method === method && r.path === `/crm/v3/objects/contacts${path}`);

const statusOf = (target: SyncTarget, ref: { externalId?: string; localId?: string }) =>
  Effect.flatMap(LocalChanges, (l) => l.find(target.tenantId, { ...target, ...ref })).pipe(
    Effect.map((r) => r.syncStatus),
    Effect.orDie,
  );

/** Engine tests run on the real clock: the rate budget and the push interval must pass. */
const live = TestServices.provideLive;

for (const dialect of dialects) {
  layer(
    testEngineLayer({
      dialect,
      connectors: [hubspot, slowHubspot],
      // Quick retries, and a dead push after the third failed attempt. A push interval of 1 s (the
      // default is 500 ms): the coalescing test's edits, one after the other, fit inside it on a
      // loaded machine too.
      config: {
        retry: { baseDelayMs: 50, maxDelayMs: 200, defaultMaxAttempts: 3 },
        push: { intervalMs: 1_000 },
      },
    }),
    { timeout: 120_000 },
  )(`local changes reach HubSpot by themselves on ${dialect}`, (it) => {
    const test = <A, E>(name: string, body: () => Effect.Effect<A, E, any>) =>
      it.effect(name, () => live(Effect.scoped(body())) as Effect.Effect<A, E, never>);

    test("a local edit, create and delete reach the fake with no push asked for; the create takes HubSpot's id", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const records = yield* Records;
        const target = yield* connect();
        const [a, b] = fake.seedContacts(3);
        yield* engine.run({ ...target, mode: "full" });
        yield* startQueueWorker;

        const edited = yield* records.update(target.tenantId, {
          ...target,
          externalId: a!.id,
          fields: { jobTitle: "Head of Sync" },
        });
        expect(edited).toMatchObject({ syncStatus: "pending", pushImmediately: false });
        yield* eventually(
          "the edit in HubSpot",
          () => fake.store.get("contacts", a!.id)?.properties.jobtitle === "Head of Sync",
        );

        const created = yield* records.create(target.tenantId, {
          ...target,
          localId: "host-42",
          fields: { firstName: "Ada", lastName: "Lovelace", jobTitle: "Analyst" },
        });
        // Only local so far: no vendor id, found by the host's.
        expect(created).toMatchObject({ externalId: null, localId: "host-42", syncStatus: "pending" });
        yield* eventually("the created contact in HubSpot", () =>
          fake.live("contacts").some((o) => o.properties.firstname === "Ada"),
        );
        const remote = fake.live("contacts").find((o) => o.properties.firstname === "Ada")!;
        yield* eventually("the create settled", () =>
          Effect.map(statusOf(target, { localId: "host-42" }), (s) => s === "synced"),
        );
        const byLocalId = yield* records.get(target.tenantId, { ...target, localId: "host-42" });
        expect(byLocalId).toMatchObject({
          externalId: remote.id,
          localId: "host-42",
          syncStatus: "synced",
          pendingChanges: null,
          data: { id: remote.id, firstName: "Ada", lastName: "Lovelace", jobTitle: "Analyst" },
        });
        // The same record by the vendor's id, and once only in the change feed's latest state.
        expect(yield* records.get(target.tenantId, { ...target, externalId: remote.id })).toEqual(byLocalId);
        expect(writesTo("", "POST")).toHaveLength(1);

        const deleted = yield* records.delete(target.tenantId, { ...target, externalId: b!.id });
        expect(deleted).toMatchObject({ syncStatus: "pending" });
        expect(deleted.deletedAt).not.toBeNull();
        yield* eventually("the archive in HubSpot", () => fake.store.get("contacts", b!.id)?.archived === true);
        yield* eventually("the delete settled", () =>
          Effect.map(statusOf(target, { externalId: b!.id }), (s) => s === "synced"),
        );

        // Both ids travel with the change feed.
        const feed = yield* (yield* RecordStore).changes(target, { limit: 100 });
        const ada = feed.records.find((r) => r.localId === "host-42");
        expect(ada).toMatchObject({ externalId: remote.id, provisional: false });
        // What we pushed comes back through the next delta unchanged, and causes no write.
        const writes = () => fake.requests().filter((r) => r.method === "PATCH" || r.method === "DELETE").length;
        const before = writes();
        const delta = yield* engine.run({ ...target, mode: "delta", options: { overlapMs: 60_000 } });
        expect(delta).toMatchObject({ created: 0, updated: 0, errors: [] });
        expect(writes()).toBe(before);
      }));

    test("three edits of one record within the push interval are one write to HubSpot", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const local = yield* LocalChanges;
        const target = yield* connect();
        const [a] = fake.seedContacts(2);
        yield* engine.run({ ...target, mode: "full" });
        yield* startQueueWorker;
        // Within the interval (1 s here): submitted one after the other, well inside it.
        for (const title of ["First", "Second", "Third"]) {
          yield* local.update(target.tenantId, { ...target, externalId: a!.id, fields: { jobTitle: title } });
        }
        yield* local.update(target.tenantId, { ...target, externalId: a!.id, fields: { phone: "+1 555 0100" } });
        yield* eventually(
          "the edits in HubSpot",
          () => fake.store.get("contacts", a!.id)?.properties.jobtitle === "Third",
        );
        yield* eventually("the record synced", () =>
          Effect.map(statusOf(target, { externalId: a!.id }), (s) => s === "synced"),
        );
        // Conditional (HubSpot has no conditional write: a batch/read version check, then
        // batch/update): the one contact edited, so one update request is one write to it.
        expect(writesTo("/batch/update", "POST")).toHaveLength(1);
        expect(writesTo(`/${a!.id}`, "PATCH")).toHaveLength(0);
        expect(fake.store.get("contacts", a!.id)!.properties.phone).toBe("+1 555 0100");
      }));

    test("a change to a critical field goes at once with high priority; the others wait for the entity's interval", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const local = yield* LocalChanges;
        const queue = yield* JobQueue;
        const target = yield* connect("hubspot-slow-push");
        const [a, b] = fake.seedContacts(2);
        yield* engine.run({ ...target, mode: "full" });
        yield* startQueueWorker;

        const minor = yield* local.update(target.tenantId, {
          ...target,
          externalId: b!.id,
          fields: { jobTitle: "Later" },
        });
        expect(minor.immediate).toBe(false);
        const critical = yield* local.update(target.tenantId, {
          ...target,
          externalId: a!.id,
          fields: { lifecycleStage: "customer" },
        });
        expect(critical.immediate).toBe(true);
        yield* eventually(
          "the critical change in HubSpot",
          () => fake.store.get("contacts", a!.id)?.properties.lifecyclestage === "customer",
        );
        // The minor change waits for its minute: queued for then, at the on-demand priority.
        const drains = yield* queue.list({ kind: PUSH_DRAIN_JOB_KIND, connectionId: target.connectionId });
        expect(drains.map((j) => j.priority).sort()).toEqual([0, 1]);
        const waiting = drains.find((j) => j.priority === 1)!;
        expect(waiting.status).toBe("queued");
        expect(new Date(waiting.runAt).getTime() - Date.now()).toBeGreaterThan(30_000);
        expect(fake.store.get("contacts", b!.id)!.properties.jobtitle).not.toBe("Later");
        expect(yield* statusOf(target, { externalId: b!.id })).toBe("pending");
        expect(writesTo(`/${b!.id}`, "PATCH")).toHaveLength(0);
      }));

    test("a failing vendor: pending with the error while retried, then a dead push; retried from the dead list it lands", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const local = yield* LocalChanges;
        const target = yield* connect();
        const [a] = fake.seedContacts(1);
        yield* engine.run({ ...target, mode: "full" });
        // Every attempt of the policy's three answers 503.
        fake.failNext(
          { kind: "status", status: 503 },
          { kind: "status", status: 503 },
          { kind: "status", status: 503 },
        );
        yield* startQueueWorker;
        yield* local.update(target.tenantId, { ...target, externalId: a!.id, fields: { jobTitle: "Stubborn" } });

        yield* eventually("a dead push", () =>
          Effect.map(local.deadPushes(target.tenantId, { connectionId: target.connectionId }), (d) => d.length === 1),
        );
        const [dead] = yield* local.deadPushes(target.tenantId, { connectionId: target.connectionId });
        expect(dead).toMatchObject({ externalId: a!.id, operation: "update", attempts: 3 });
        expect(dead!.error).toContain("Unavailable");
        // Each attempt's first request (the version check before the conditional update) got the 503.
        expect(writesTo("/batch/read", "POST").map((r) => r.status)).toEqual([503, 503, 503]);
        expect(writesTo("/batch/update", "POST")).toHaveLength(0);
        const failed = yield* local.find(target.tenantId, { ...target, externalId: a!.id });
        expect(failed).toMatchObject({ syncStatus: "failed", data: { jobTitle: "Stubborn" } });
        expect(failed.syncError).toContain("Unavailable");

        // The vendor is back: retried from the dead list, it lands and the list is empty.
        const retried = yield* local.retryDeadPush(target.tenantId, dead!.id);
        expect(retried.id).toBe(dead!.id);
        yield* eventually(
          "the retried edit in HubSpot",
          () => fake.store.get("contacts", a!.id)?.properties.jobtitle === "Stubborn",
        );
        yield* eventually("the record synced", () =>
          Effect.map(statusOf(target, { externalId: a!.id }), (s) => s === "synced"),
        );
        expect(yield* local.deadPushes(target.tenantId, { connectionId: target.connectionId })).toEqual([]);
        const settled = yield* local.find(target.tenantId, { ...target, externalId: a!.id });
        expect(settled).toMatchObject({ syncError: null, pendingChanges: null });
      }));

    test("a vendor refusal is a dead push at once; discarding it takes the record back to HubSpot's state", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const local = yield* LocalChanges;
        const target = yield* connect();
        const [a, b] = fake.seedContacts(2);
        yield* engine.run({ ...target, mode: "full" });
        yield* startQueueWorker;
        // b takes a's email: HubSpot answers 409 CONFLICT, never retried.
        const taken = a!.properties.email;
        yield* local.update(target.tenantId, { ...target, externalId: b!.id, fields: { email: taken, jobTitle: "x" } });
        yield* eventually("a dead push", () =>
          Effect.map(local.deadPushes(target.tenantId, { entity: "contacts" }), (d) =>
            d.some((p) => p.connectionId === target.connectionId),
          ),
        );
        const dead = (yield* local.deadPushes(target.tenantId, { connectionId: target.connectionId }))[0]!;
        expect(dead).toMatchObject({ attempts: 1, operation: "update" });
        expect(dead.error).toContain("Conflict");
        // Written once (a conditional update: HubSpot's batch/update with b alone), never retried.
        expect(writesTo("/batch/update", "POST")).toHaveLength(1);

        const discarded = yield* local.discardDeadPush(target.tenantId, dead.id);
        expect(discarded.record).toMatchObject({
          syncStatus: "synced",
          pendingChanges: null,
          data: { email: b!.properties.email, jobTitle: b!.properties.jobtitle ?? null },
        });
        expect(yield* local.deadPushes(target.tenantId, { connectionId: target.connectionId })).toEqual([]);
        const again = yield* local.discardDeadPush(target.tenantId, dead.id).pipe(Effect.flip);
        expect(again._tag).toBe("ResourceNotFound");
      }));

    test("local changes are checked against the contact schema when submitted, naming the field", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const local = yield* LocalChanges;
        const target = yield* connect();
        const [a] = fake.seedContacts(1);
        yield* engine.run({ ...target, mode: "full" });
        const refusal = (fields: Record<string, unknown>) =>
          local.update(target.tenantId, { ...target, externalId: a!.id, fields }).pipe(Effect.flip);

        const wrongType = yield* refusal({ jobTitle: 12345 });
        expect(wrongType).toMatchObject({ _tag: "InvalidInput" });
        expect(wrongType._tag === "InvalidInput" && wrongType.issues.map((i) => i.path)).toEqual(["fields.jobTitle"]);
        const unknown = yield* refusal({ favouriteColour: "teal" });
        expect(unknown).toMatchObject({
          _tag: "InvalidInput",
          issues: [{ path: "fields.favouriteColour", message: "contacts has no such field" }],
        });
        const archived = yield* refusal({ archived: true });
        expect(archived).toMatchObject({ _tag: "InvalidInput", issues: [{ path: "fields.archived" }] });
        expect(archived.message).toContain("records.delete");
        const readOnly = yield* refusal({ id: "999", firstName: "ok" });
        expect(readOnly).toMatchObject({ _tag: "InvalidInput", issues: [{ path: "fields.id" }] });
        expect(yield* refusal({})).toMatchObject({ _tag: "InvalidInput", issues: [{ path: "fields" }] });
        const badCreate = yield* local.create(target.tenantId, { ...target, fields: { email: 42 } }).pipe(Effect.flip);
        expect(badCreate).toMatchObject({ _tag: "InvalidInput", issues: [{ path: "fields.email" }] });

        // Nothing was stored, and nothing is waiting to be pushed.
        const record = yield* local.find(target.tenantId, { ...target, externalId: a!.id });
        expect(record).toMatchObject({ syncStatus: "synced", pendingChanges: null });
        expect(yield* (yield* RecordStore).count(target)).toBe(1);
      }));

    test("get, update and delete by the host's id; a taken localId is refused", () =>
      Effect.gen(function* () {
        const records = yield* Records;
        const target = yield* connect();
        yield* startQueueWorker;
        const created = yield* records.create(target.tenantId, {
          ...target,
          localId: "crm-7",
          fields: { firstName: "Grace" },
        });
        expect(created.externalId).toBeNull();
        const duplicate = yield* records
          .create(target.tenantId, { ...target, localId: "crm-7", fields: { firstName: "Other" } })
          .pipe(Effect.flip);
        expect(duplicate._tag).toBe("AlreadyExists");
        // Edited by its localId, before or after its create reached HubSpot: one contact either way.
        yield* records.update(target.tenantId, { ...target, localId: "crm-7", fields: { lastName: "Hopper" } });
        yield* eventually("the contact in HubSpot", () =>
          fake.live("contacts").some((o) => o.properties.firstname === "Grace" && o.properties.lastname === "Hopper"),
        );
        yield* eventually("synced", () => Effect.map(statusOf(target, { localId: "crm-7" }), (s) => s === "synced"));
        expect(fake.live("contacts").filter((o) => o.properties.firstname === "Grace")).toHaveLength(1);
        const id = (yield* records.get(target.tenantId, { ...target, localId: "crm-7" })).externalId!;

        yield* records.delete(target.tenantId, { ...target, localId: "crm-7" });
        yield* eventually("archived in HubSpot", () => fake.store.get("contacts", id)?.archived === true);
        const gone = yield* records.get(target.tenantId, { ...target, localId: "crm-7" });
        expect(gone.deletedAt).not.toBeNull();
        const missing = yield* records.get(target.tenantId, { ...target, localId: "nobody" }).pipe(Effect.flip);
        expect(missing._tag).toBe("ResourceNotFound");
        const both = yield* records
          .get(target.tenantId, { ...target, localId: "crm-7", externalId: id })
          .pipe(Effect.flip);
        expect(both._tag).toBe("InvalidInput");
      }));

    test("a conflict's resolution is pushed by itself", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const local = yield* LocalChanges;
        const target = yield* connect();
        const [a] = fake.seedContacts(1);
        yield* engine.run({ ...target, mode: "full" });
        // Edited on both sides before any push: the next pull opens a conflict (manual policy).
        yield* local.update(target.tenantId, { ...target, externalId: a!.id, fields: { jobTitle: "Local" } });
        fake.store.update("contacts", a!.id, { jobtitle: "Remote" });
        yield* engine.run({ ...target, mode: "delta" });
        expect(yield* statusOf(target, { externalId: a!.id })).toBe("conflict");
        yield* startQueueWorker;

        const conflicts = yield* Conflicts;
        const open = (yield* conflicts.list(target.tenantId, { status: "open" })).items.find(
          (c) => c.externalId === a!.id,
        )!;
        yield* (yield* Records).resolveConflict(target.tenantId, open.id, { choose: "local" }, "api-key:test");
        yield* eventually(
          "the resolution in HubSpot",
          () => fake.store.get("contacts", a!.id)?.properties.jobtitle === "Local",
        );
        yield* eventually("synced", () => Effect.map(statusOf(target, { externalId: a!.id }), (s) => s === "synced"));
      }));

    test("a record created and deleted before its create was pushed never reaches HubSpot", () =>
      Effect.gen(function* () {
        const records = yield* Records;
        const target = yield* connect("hubspot-slow-push");
        yield* startQueueWorker;
        yield* records.create(target.tenantId, { ...target, localId: "tmp-1", fields: { firstName: "Fleeting" } });
        const deleted = yield* records.delete(target.tenantId, { ...target, localId: "tmp-1" });
        expect(deleted).toMatchObject({ syncStatus: "synced", externalId: null });
        expect(deleted.deletedAt).not.toBeNull();
        // Nothing is left to push: a push asked for now writes nothing.
        const push = yield* (yield* EntitySync).run({ ...target, mode: "push" });
        expect(push).toMatchObject({ created: 0, updated: 0, deleted: 0, errors: [] });
        expect(writesTo("", "POST")).toHaveLength(0);

        // Created without the host's id: one of ours, to find it by before HubSpot has it.
        const anonymous = yield* records.create(target.tenantId, { ...target, fields: { firstName: "Nameless" } });
        expect(anonymous.localId).toMatch(/^tandem:/);
        expect(yield* records.get(target.tenantId, { ...target, localId: anonymous.localId! })).toMatchObject({
          externalId: null,
          data: { firstName: "Nameless" },
        });
      }));
  });
}
