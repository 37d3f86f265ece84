import { expect, layer } from "@effect/vitest";
import {
  Conflicts,
  Database,
  defineSyncJob,
  EntitySync,
  JobQueue,
  LocalChanges,
  OutboundWebhooks,
  RecordStore,
  SyncJobHandlers,
  SyncJobs,
  type SyncTarget,
} from "@tandem/core";
import {
  type AcmeContact,
  AcmeCrm,
  acmeConnector,
  acmeEffectConnector,
  createTestConnection,
  dialects,
  startAcmeServer,
  storedRecord,
  testEngineLayer,
} from "@tandem/testkit";
import { Chunk, Effect, Fiber, Stream, TestClock, TestServices } from "effect";
import { type Kysely, sql } from "kysely";
import { afterAll, beforeAll } from "vitest";

const acme = new AcmeCrm();

/** The Acme connector with a policy on contacts: local edits win overlapping fields. */
const localWins = {
  ...acmeConnector,
  name: "acme-crm-local-wins",
  entities: {
    contacts: {
      ...acmeConnector.entities.contacts,
      conflictPolicy: { kind: "source-priority", default: "local" } as const,
    },
  },
};
let server: ReturnType<typeof startAcmeServer>;
beforeAll(() => {
  server = startAcmeServer(acme);
});
afterAll(() => server.close());

/** A fresh fake API and a new connection to it (records of earlier tests live under other connections). */
const setup = (options: { connector?: string; pageSize?: number } = {}) =>
  Effect.gen(function* () {
    acme.reset();
    const ids = yield* createTestConnection(options.connector ?? "acme-crm", {
      baseUrl: acme.baseUrl,
      token: acme.token,
      pageSize: options.pageSize ?? 10,
    });
    return { ...ids, entity: "contacts" } satisfies SyncTarget;
  });

/**
 * Engine tests run on the real clock: the fake API has its own clock, and the
 * rate budget would wait forever on a TestClock nobody advances. (The rate
 * budget tests drive TestClock on purpose.)
 */
const live = TestServices.provideLive;

/** Waits (on the real clock, up to 30 s) until `condition` holds. */
const eventually = (condition: () => boolean | Effect.Effect<boolean, unknown, any>) =>
  Effect.gen(function* () {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const result = condition();
      if (typeof result === "boolean" ? result : yield* result) return;
      if (Date.now() > deadline) return yield* Effect.dieMessage("condition not met within 30 s");
      yield* Effect.sleep("50 millis");
    }
  });

const allChanges = (target: SyncTarget, after?: string) =>
  Effect.flatMap(RecordStore, (s) => s.changes(target, { after, limit: 1000 }));

for (const dialect of dialects) {
  layer(
    testEngineLayer({
      dialect,
      connectors: [acmeConnector, acmeEffectConnector, localWins],
      // Local changes that are not critical wait a minute here, so a test sees them pending.
      config: { push: { intervalMs: 60_000 } },
    }),
    { timeout: 60_000 },
  )(`EntitySync on ${dialect}`, (it) => {
    const test = <A, E>(name: string, body: () => Effect.Effect<A, E, any>) =>
      it.effect(name, () => live(body()) as Effect.Effect<A, E, never>);
    for (const connector of ["acme-crm", "acme-crm-effect"]) {
      test(`full sync stores every record, and a second run rewrites nothing (${connector})`, () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const store = yield* RecordStore;
          const target = yield* setup({ connector });
          acme.seed(25);
          const first = yield* engine.run({ ...target, mode: "full" });
          expect(first).toMatchObject({ created: 25, updated: 0, unchanged: 0, deleted: 0, errors: [], pages: 3 });
          expect(yield* store.count(target)).toBe(25);
          const c3 = yield* storedRecord(target, "c000003");
          expect(c3.data).toMatchObject({ id: "c000003", email: "contact3@acme.test" });
          expect(c3.syncStatus).toBe("synced");
          expect(c3.remoteUpdatedAt?.toISOString()).toBe(acme.contacts.get("c000003")!.updatedAt);

          const feed = yield* allChanges(target);
          const second = yield* engine.run({ ...target, mode: "full" });
          expect(second).toMatchObject({ created: 0, updated: 0, unchanged: 25, errors: [] });
          // Same content hash: no rewrite, so no change event and no version bump.
          const after = yield* allChanges(target, feed.cursor);
          expect(after.records).toEqual([]);
          expect((yield* storedRecord(target, "c000003")).version).toBe(1);
        }));
    }

    test("a record that fails to decode is an item error and the run goes on", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const store = yield* RecordStore;
        const target = yield* setup();
        acme.seed(12);
        acme.faults.corrupt.set("c000003", { email: 42 });
        acme.faults.corrupt.set("c000005", { id: undefined });
        acme.faults.corrupt.set("c000007", { updatedAt: "not a date" });
        const result = yield* engine.run({ ...target, mode: "full" });
        expect(result.created).toBe(9);
        expect(result.errors).toHaveLength(3);
        expect(result.errors.map((e) => e.type)).toEqual(["InvalidRecord", "InvalidRecord", "InvalidRecord"]);
        expect(result.errors[0]).toMatchObject({ externalId: "c000003" });
        expect(result.errors[0]!.message).toContain("email");
        expect(result.errors[1]).toMatchObject({ externalId: "unknown" });
        expect(result.errors[2]).toMatchObject({ externalId: "c000007" });
        expect(yield* store.count(target)).toBe(9);
      }));

    test("an interrupted full run resumes from its checkpoint", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const store = yield* RecordStore;
        const target = yield* setup({ pageSize: 10 });
        acme.seed(45);
        // Pages 1 and 2 succeed, page 3 fails (and keeps failing for the retries ctx.http does not do).
        acme.fail(503, { path: "/contacts", after: 2 });
        const error = yield* engine.run({ ...target, mode: "full", options: { batchSize: 10 } }).pipe(Effect.flip);
        expect(error._tag).toBe("Unavailable");
        expect(yield* store.count(target)).toBe(20);
        const cursor = yield* store.cursor(target);
        expect(cursor?.checkpoints.full).toMatchObject({ mode: "full", pages: 2 });
        const checkpointCursor = cursor!.checkpoints.full!.cursor;
        expect(checkpointCursor).toBeDefined();

        acme.requests = [];
        const resumed = yield* engine.run({ ...target, mode: "full", options: { batchSize: 10 } });
        expect(resumed).toMatchObject({ resumed: true, created: 25, unchanged: 0, pages: 3, errors: [] });
        // The resumed run starts at the checkpoint: pages 1 and 2 are not read again.
        expect(acme.requestsTo("/contacts")[0]!.query.cursor).toBe(checkpointCursor);
        expect(acme.requestsTo("/contacts")).toHaveLength(3);
        expect(yield* store.count(target)).toBe(45);
        expect((yield* store.cursor(target))?.checkpoints).toEqual({});
      }));

    test("a run interrupted mid-read (cancelled, shut down) resumes from its last checkpoint", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const store = yield* RecordStore;
        const target = yield* setup({ pageSize: 10 });
        acme.seed(60);
        let run: Fiber.RuntimeFiber<unknown, unknown> | undefined;
        acme.beforePage = (i) => {
          // While the 4th page is requested, the job is cancelled from outside.
          if (i === 3 && run !== undefined) Effect.runFork(Fiber.interrupt(run));
        };
        run = yield* Effect.fork(engine.run({ ...target, mode: "full", options: { batchSize: 10 } }));
        const exit = yield* Fiber.await(run);
        expect(exit._tag).toBe("Failure");
        const checkpoint = (yield* store.cursor(target))!.checkpoints.full!;
        const storedBefore = yield* store.count(target);
        // Pages are checkpointed with their batch: what is stored is exactly what the checkpoint covers.
        expect(storedBefore).toBe(checkpoint.pages * 10);
        expect(checkpoint.pages).toBeGreaterThanOrEqual(1);
        expect(checkpoint.pages).toBeLessThan(6);

        acme.beforePage = undefined;
        acme.requests = [];
        const resumed = yield* engine.run({ ...target, mode: "full", options: { batchSize: 10 } });
        expect(resumed).toMatchObject({ resumed: true, created: 60 - storedBefore, unchanged: 0 });
        expect(acme.requestsTo("/contacts")[0]!.query.cursor).toBe(checkpoint.cursor);
        expect(yield* store.count(target)).toBe(60);
      }));

    test("a delta run in between does not erase an interrupted full run's checkpoint", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const store = yield* RecordStore;
        const target = yield* setup({ pageSize: 10 });
        acme.seed(30);
        acme.fail(503, { path: "/contacts", after: 1 });
        yield* engine.run({ ...target, mode: "full", options: { batchSize: 10 } }).pipe(Effect.flip);
        const checkpoint = (yield* store.cursor(target))!.checkpoints.full!;
        const delta = yield* engine.run({ ...target, mode: "delta", options: { batchSize: 10 } });
        expect(delta.errors).toEqual([]);
        expect((yield* store.cursor(target))!.checkpoints).toEqual({ full: checkpoint });
        acme.requests = [];
        const resumed = yield* engine.run({ ...target, mode: "full", options: { batchSize: 10 } });
        expect(resumed).toMatchObject({ resumed: true, unchanged: 20, pages: 2 });
        expect(acme.requestsTo("/contacts")[0]!.query.cursor).toBe(checkpoint.cursor);
        expect((yield* store.cursor(target))!.checkpoints).toEqual({});
      }));

    test("delta reads from cursor minus overlap, and a record changed during a long run is not missed", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const store = yield* RecordStore;
        const target = yield* setup({ pageSize: 2 });
        acme.seed(20);
        const full = yield* engine.run({ ...target, mode: "full" });
        // The cursor is the newest updatedAt seen (the fake's clock), not our clock at the end.
        expect(full.deltaCursor).toBe(acme.contacts.get("c000020")!.updatedAt);

        acme.update("c000004", { lastName: "Changed" });
        acme.update("c000017", { lastName: "Changed" });
        acme.requests = [];
        // While the delta runs, c000001 (on a page already read) changes at the source.
        let page = 0;
        acme.beforePage = () => {
          if (page++ === 1) acme.update("c000001", { email: "moved@acme.test" });
        };
        const overlapMs = 2_000;
        const delta = yield* engine.run({ ...target, mode: "delta", options: { overlapMs } });
        const since = acme.requestsTo("/contacts")[0]!.query.updatedAfter;
        expect(since).toBe(new Date(Date.parse(full.deltaCursor!) - overlapMs).toISOString());
        // c000018..20 fall in the (inclusive) overlap window: re-read, same hash, not rewritten.
        expect(delta).toMatchObject({ created: 0, updated: 2, unchanged: 3, errors: [], pages: 3 });
        expect((yield* storedRecord(target, "c000018")).version).toBe(1);
        expect((yield* storedRecord(target, "c000004")).data.lastName).toBe("Changed");
        expect((yield* storedRecord(target, "c000001")).data.email).toBe("contact1@acme.test");
        expect(delta.deltaCursor).toBe(acme.contacts.get("c000017")!.updatedAt);

        acme.beforePage = undefined;
        const next = yield* engine.run({ ...target, mode: "delta", options: { overlapMs } });
        expect((yield* storedRecord(target, "c000001")).data.email).toBe("moved@acme.test");
        expect(next.updated).toBe(1);
        expect((yield* store.cursor(target))?.deltaCursor?.toISOString()).toBe(acme.contacts.get("c000001")!.updatedAt);
      }));

    test("reconciliation soft-deletes vanished records and fetches missing ones", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const store = yield* RecordStore;
        const target = yield* setup();
        acme.seed(20);
        yield* engine.run({ ...target, mode: "full" });
        const feed = yield* allChanges(target);
        acme.remove("c000003");
        acme.remove("c000011");
        acme.create({ id: "c900000", email: "missed@acme.test" });
        acme.requests = [];
        const result = yield* engine.run({ ...target, mode: "reconcile" });
        expect(result).toMatchObject({ deleted: 2, created: 1, errors: [] });
        expect(result.quarantine).toBeUndefined();
        // Ids only were listed; the one missing record was fetched by id, nothing else.
        expect(acme.requestsTo("/contacts")).toHaveLength(0);
        expect(acme.requests.filter((r) => r.path.startsWith("/contacts/c"))).toEqual([
          expect.objectContaining({ path: "/contacts/c900000" }),
        ]);
        expect((yield* storedRecord(target, "c000003")).deletedAt).not.toBeNull();
        expect((yield* storedRecord(target, "c900000")).data.email).toBe("missed@acme.test");
        expect(yield* store.count(target)).toBe(19);
        // Deletions are in the change feed.
        const changes = yield* allChanges(target, feed.cursor);
        expect(changes.records.map((r) => [r.externalId, r.deletedAt !== null])).toEqual([
          ["c000003", true],
          ["c000011", true],
          ["c900000", false],
        ]);
        expect((yield* store.cursor(target))?.lastReconcileAt).not.toBeNull();
      }));

    test("the mass-deletion guard quarantines instead of deleting, and can be configured or overridden", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const store = yield* RecordStore;
        const target = yield* setup();
        acme.seed(20);
        yield* engine.run({ ...target, mode: "full" });
        acme.faults.emptyIds = true;
        const guarded = yield* engine.run({ ...target, mode: "reconcile" });
        expect(guarded.deleted).toBe(0);
        expect(guarded.quarantine).toMatchObject({ wouldDelete: 20, stored: 20, share: 1 });
        expect(guarded.quarantine!.sample.slice(0, 2)).toEqual(["c000001", "c000002"]);
        expect(yield* store.count(target)).toBe(20);
        expect((yield* store.cursor(target))?.quarantine).toMatchObject({ wouldDelete: 20 });

        // 5 of 20 (25%) is above the default 20% but under a configured 30%.
        acme.faults.emptyIds = false;
        for (const id of ["c000001", "c000002", "c000003", "c000004", "c000005"]) acme.remove(id);
        const strict = yield* engine.run({ ...target, mode: "reconcile" });
        expect(strict).toMatchObject({ deleted: 0, quarantine: { wouldDelete: 5, share: 0.25 } });
        const relaxed = yield* engine.run({ ...target, mode: "reconcile", options: { maxDeleteShare: 0.3 } });
        expect(relaxed.deleted).toBe(5);
        expect(relaxed.quarantine).toBeUndefined();
        expect((yield* store.cursor(target))?.quarantine).toBeNull();

        acme.remove("c000006");
        acme.remove("c000007");
        acme.remove("c000008");
        acme.remove("c000009");
        const forced = yield* engine.run({
          ...target,
          mode: "reconcile",
          options: { maxDeleteShare: 0.01, allowMassDeletion: true },
        });
        expect(forced.deleted).toBe(4);
        expect(yield* store.count(target)).toBe(11);
      }));

    test("a reconciliation whose id listing fails deletes nothing", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const store = yield* RecordStore;
        const target = yield* setup();
        acme.seed(10);
        yield* engine.run({ ...target, mode: "full" });
        acme.fail(500, { path: "/contacts/ids" });
        const error = yield* engine.run({ ...target, mode: "reconcile" }).pipe(Effect.flip);
        expect(error._tag).toBe("Unavailable");
        expect(yield* store.count(target)).toBe(10);
      }));

    test("webhook sync: get(id) then upsert or soft-delete; an older read never overwrites newer data", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const target = yield* setup();
        acme.seed(3);
        yield* engine.run({ ...target, mode: "full" });
        acme.update("c000002", { firstName: "V2" });
        acme.update("c000002", { firstName: "V3" });
        expect(yield* engine.syncRecord(target, { externalId: "c000002", kind: "updated" })).toEqual({
          action: "updated",
          externalId: "c000002",
        });
        expect((yield* storedRecord(target, "c000002")).data.firstName).toBe("V3");

        // The event for V2 arrives late and the API answers with the older version (a lagging replica).
        acme.faults.staleGet.add("c000002");
        expect(yield* engine.syncRecord(target, { externalId: "c000002", kind: "updated" })).toMatchObject({
          action: "unchanged",
        });
        expect((yield* storedRecord(target, "c000002")).data.firstName).toBe("V3");
        acme.faults.staleGet.clear();

        const created = acme.create({ firstName: "New" });
        expect(yield* engine.syncRecord(target, { externalId: created.id, kind: "created" })).toMatchObject({
          action: "created",
        });
        acme.remove("c000001");
        expect(yield* engine.syncRecord(target, { externalId: "c000001", kind: "deleted" })).toMatchObject({
          action: "deleted",
        });
        expect((yield* storedRecord(target, "c000001")).deletedAt).not.toBeNull();
        // A redelivered event is idempotent.
        expect(yield* engine.syncRecord(target, { externalId: "c000001", kind: "deleted" })).toMatchObject({
          action: "unchanged",
        });
      }));

    test("batch import: split, validated concurrently, committed at the end (or not at all)", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const store = yield* RecordStore;
        const target = yield* setup();
        const make = (i: number) => ({
          id: `imp${String(i).padStart(5, "0")}`,
          firstName: `F${i}`,
          lastName: `L${i}`,
          email: `i${i}@x.test`,
          lifecycleStage: "customer",
          updatedAt: "2026-02-01T00:00:00.000Z",
        });
        const bad = [...Array.from({ length: 1_200 }, (_, i) => make(i)), { id: "broken" }, make(5)];
        const rejected = yield* engine.importRecords(target, bad, { batchSize: 500, concurrency: 3 });
        expect(rejected).toMatchObject({ committed: false, batches: 3, created: 0 });
        expect(rejected.errors.map((e) => [e.externalId, e.type])).toEqual([
          ["broken", "InvalidRecord"],
          ["imp00005", "InvalidRecord"],
        ]);
        expect(yield* store.count(target)).toBe(0);

        const skipped = yield* engine.importRecords(target, bad, { batchSize: 500, onInvalid: "skip-invalid" });
        expect(skipped).toMatchObject({ committed: true, created: 1_200 });
        expect(skipped.errors).toHaveLength(2);
        expect(yield* store.count(target)).toBe(1_200);

        async function* generated() {
          for (let i = 0; i < 10; i++) yield make(i);
        }
        const again = yield* engine.importRecords(target, generated());
        expect(again).toMatchObject({ committed: true, created: 0, unchanged: 10, errors: [] });
      }));

    test("export streams an entity as NDJSON or CSV", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const target = yield* setup();
        acme.create({ firstName: 'Ann "A", Jr.', lastName: "Line\nBreak" });
        acme.create({ firstName: "Bob" });
        acme.create({ firstName: "Gone" });
        yield* engine.run({ ...target, mode: "full" });
        acme.remove("c000003");
        yield* engine.syncRecord(target, { externalId: "c000003" });

        const ndjson = Chunk.toReadonlyArray(yield* Stream.runCollect(engine.export(target, "ndjson"))).join("");
        const lines = ndjson
          .trimEnd()
          .split("\n")
          .map((l) => JSON.parse(l));
        expect(lines.map((l) => l.id)).toEqual(["c000001", "c000002"]);
        expect(lines[0].data.firstName).toBe('Ann "A", Jr.');

        const csv = Chunk.toReadonlyArray(
          yield* Stream.runCollect(engine.export(target, "csv", { columns: ["firstName", "lastName", "email"] })),
        ).join("");
        expect(csv).toBe(
          'externalId,firstName,lastName,email\r\nc000001,"Ann ""A"", Jr.","Line\nBreak",contact1@acme.test\r\nc000002,Bob,Last2,contact2@acme.test\r\n',
        );
        const withDeleted = Chunk.toReadonlyArray(
          yield* Stream.runCollect(engine.export(target, "csv", { includeDeleted: true })),
        );
        // Without explicit columns: the first record's fields, sorted.
        expect(withDeleted[0]).toBe("externalId,email,firstName,id,lastName,lifecycleStage,updatedAt\r\n");
        expect(withDeleted).toHaveLength(4);
      }));

    test("hybrid: a change to a critical field is pushed at once, others wait for the push run", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const local = yield* LocalChanges;
          const target = yield* setup();
          acme.seed(3);
          yield* engine.run({ ...target, mode: "full" });
          // The queue's worker runs push drains as a server's does: nothing below asks for a push
          // until the explicit push run at the end.
          yield* (yield* JobQueue).worker({ handlers: (yield* SyncJobHandlers).handlers, pollMs: 100 });

          const critical = yield* local.update(target.tenantId, {
            ...target,
            externalId: "c000001",
            fields: { email: "vip@acme.test" },
          });
          expect(critical.immediate).toBe(true);
          yield* eventually(() => acme.contacts.get("c000001")!.email === "vip@acme.test");
          expect(acme.requestsTo("/contacts/c000001", "PATCH")).toHaveLength(1);
          yield* eventually(() => Effect.map(storedRecord(target, "c000001"), (r) => r.syncStatus === "synced"));

          // This suite's push interval is a minute: the change waits for it, or for a push run.
          const minor = yield* local.update(target.tenantId, {
            ...target,
            externalId: "c000002",
            fields: { firstName: "Later" },
          });
          expect(minor.immediate).toBe(false);
          expect(minor.record).toMatchObject({ syncStatus: "pending", pendingChanges: { firstName: "Later" } });
          expect(acme.contacts.get("c000002")!.firstName).toBe("First2");

          const push = yield* engine.run({ ...target, mode: "push" });
          expect(push).toMatchObject({ updated: 1, errors: [] });
          expect(acme.contacts.get("c000002")!.firstName).toBe("Later");
          const after = yield* storedRecord(target, "c000002");
          expect(after).toMatchObject({ syncStatus: "synced", pendingChanges: null });
          expect(after.remoteUpdatedAt?.toISOString()).toBe(acme.contacts.get("c000002")!.updatedAt);

          // What we pushed comes back through the next delta unchanged: no bounce, no rewrite.
          const delta = yield* engine.run({ ...target, mode: "delta", options: { overlapMs: 0 } });
          expect(delta.updated).toBe(0);
        }),
      ));

    test("push: a transient failure stays pending, a permanent one fails", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const target = yield* setup();
        const store = yield* RecordStore;
        acme.seed(2);
        yield* engine.run({ ...target, mode: "full" });
        yield* store.applyLocalChange(target, "c000001", { firstName: "A" });
        yield* store.applyLocalChange(target, "c000002", { firstName: "B" });
        acme.fail(503, { method: "PATCH", path: "/contacts/c000001" });
        acme.remove("c000002");
        const push = yield* engine.run({ ...target, mode: "push" });
        expect(push.errors.map((e) => [e.externalId, e.type]).sort()).toEqual([
          ["c000001", "Unavailable"],
          ["c000002", "NotFound"],
        ]);
        expect(yield* storedRecord(target, "c000001")).toMatchObject({ syncStatus: "pending" });
        expect((yield* storedRecord(target, "c000001")).syncError).toContain("Unavailable");
        expect(yield* storedRecord(target, "c000002")).toMatchObject({ syncStatus: "failed" });
        const retry = yield* engine.run({ ...target, mode: "push" });
        expect(retry).toMatchObject({ updated: 1, errors: [] });
        expect(acme.contacts.get("c000001")!.firstName).toBe("A");
      }));

    test("bad input: malformed JSON and a repeating cursor end as typed errors; nothing stored is lost", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const store = yield* RecordStore;
        const target = yield* setup({ pageSize: 5 });
        acme.seed(12);
        yield* engine.run({ ...target, mode: "full" });

        acme.faults.malformedJson = true;
        const malformed = yield* engine.run({ ...target, mode: "full" }).pipe(Effect.flip);
        expect(malformed._tag).toBe("InvalidPage");
        expect(malformed.message).toContain("not { records");
        acme.faults.malformedJson = false;

        acme.faults.repeatCursor = true;
        const looping = yield* engine.run({ ...target, mode: "full" }).pipe(Effect.flip);
        expect(looping._tag).toBe("InvalidPage");
        expect(looping.message).toContain("repeated");
        acme.faults.repeatCursor = false;
        expect(yield* store.count(target)).toBe(12);

        acme.faults.duplicateInPage = true;
        acme.update("c000001", { firstName: "Dup" });
        const duplicated = yield* engine.run({ ...target, mode: "full" });
        // The fake repeats the first record of each of the 3 pages.
        expect(duplicated.errors.map((e) => [e.externalId, e.type])).toEqual([
          ["c000001", "InvalidRecord"],
          ["c000006", "InvalidRecord"],
          ["c000011", "InvalidRecord"],
        ]);
        expect(duplicated.updated).toBe(1);
        expect((yield* storedRecord(target, "c000001")).data.firstName).toBe("Dup");
      }));

    test("an unknown entity or a missing capability is a typed error", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const target = yield* setup({ connector: "acme-crm-effect" });
        const unknown = yield* engine.run({ ...target, entity: "deals", mode: "full" }).pipe(Effect.flip);
        expect(unknown._tag).toBe("EntityNotSupported");
        const noIds = yield* engine.run({ ...target, mode: "reconcile" }).pipe(Effect.flip);
        expect(noIds).toMatchObject({ _tag: "EntityNotSupported", message: expect.stringContaining("readIds") });
        const noWrite = yield* engine.run({ ...target, mode: "push" }).pipe(Effect.flip);
        expect(noWrite._tag).toBe("EntityNotSupported");
      }));

    it.effect("ctx.http waits for the connection's rate budget, learned from the vendor's headers", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const target = yield* setup({ pageSize: 5 });
        acme.seed(10);
        // Every answer says: nothing left in this window, which resets in 5 s (TestClock time).
        acme.faults.rateLimit = { remaining: 0, resetMs: 5_000 };
        const run = yield* Effect.fork(engine.run({ ...target, mode: "full" }));
        yield* live(Effect.sleep("300 millis"));
        expect(acme.requestsTo("/contacts")).toHaveLength(1);
        yield* TestClock.adjust("4 seconds");
        yield* live(Effect.sleep("100 millis"));
        expect(acme.requestsTo("/contacts")).toHaveLength(1);
        yield* TestClock.adjust("1 second");
        const result = yield* Fiber.join(run);
        expect(result.created).toBe(10);
        expect(acme.requestsTo("/contacts")).toHaveLength(2);
      }),
    );

    test("a user's own sink: a SyncJob whose source is the connector entity", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const db = yield* Database;
        const target = yield* setup({ pageSize: 4 });
        const table = `crm_people_${dialect}`;
        yield* db
          .query((k) => sql`create table ${sql.table(table)} (id text primary key, email text not null)`.execute(k))
          .pipe(Effect.orDie);
        const k = db.kysely as Kysely<any>;
        acme.seed(9);
        acme.faults.corrupt.set("c000004", { email: null });
        const job = defineSyncJob<AcmeContact, { id: string; email: string }>({
          name: "acme-contacts-to-crm-people",
          fetchExternal: () => engine.source(target) as Stream.Stream<AcmeContact, unknown>,
          getExternalId: (c) => c.id,
          findLocal: (id) =>
            Effect.promise(() => k.selectFrom(table).selectAll().where("id", "=", id).executeTakeFirst()).pipe(
              Effect.map((row) => (row as { id: string; email: string } | undefined) ?? null),
            ),
          create: (c) => Effect.promise(() => k.insertInto(table).values({ id: c.id, email: c.email }).execute()),
          update: (c, local) =>
            c.email === local.email
              ? Effect.succeed(false)
              : Effect.promise(() => k.updateTable(table).set({ email: c.email }).where("id", "=", c.id).execute()),
        });
        const first = yield* SyncJobs.run(job);
        // The record that does not decode is skipped (and logged) by the source.
        expect(first).toMatchObject({ created: 8, updated: 0, errors: [] });
        acme.update("c000002", { email: "two@acme.test" });
        const second = yield* SyncJobs.run(job);
        expect(second).toMatchObject({ created: 0, updated: 1, unchanged: 7 });
        const row = yield* Effect.promise(() =>
          k.selectFrom(table).selectAll().where("id", "=", "c000002").executeTakeFirst(),
        );
        expect(row?.email).toBe("two@acme.test");
        // The engine's own record store was not involved.
        expect(yield* (yield* RecordStore).count(target)).toBe(0);
      }));

    test("a 401 is AuthExpired and a 429 is RateLimited with Retry-After", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const target = yield* setup();
        acme.seed(2);
        acme.fail(401, { path: "/contacts" });
        expect((yield* engine.run({ ...target, mode: "full" }).pipe(Effect.flip))._tag).toBe("AuthExpired");
        acme.fail(429, { path: "/contacts", retryAfter: "0" });
        const limited = yield* engine.run({ ...target, mode: "full" }).pipe(Effect.flip);
        expect(limited).toMatchObject({ _tag: "RateLimited", retryAfterMs: 0 });
      }));

    test("a pull merges remote edits with unpushed local edits of other fields; the local ones stay pending", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const store = yield* RecordStore;
        const conflicts = yield* Conflicts;
        const target = yield* setup();
        acme.seed(3);
        yield* engine.run({ ...target, mode: "full" });
        yield* store.applyLocalChange(target, "c000001", { firstName: "Local" });
        acme.update("c000001", { lastName: "Remote" });
        const run = yield* engine.run({ ...target, mode: "full" });
        expect(run).toMatchObject({ created: 0, updated: 1, unchanged: 2, errors: [] });
        expect(yield* storedRecord(target, "c000001")).toMatchObject({
          syncStatus: "pending",
          data: { firstName: "Local", lastName: "Remote" },
          base: { firstName: "First1", lastName: "Remote" },
          pendingChanges: { firstName: "Local" },
        });
        expect((yield* conflicts.list(target.tenantId, {})).items).toEqual([]);
        expect((yield* store.cursor(target))?.checkpoints.full).toBeUndefined();
      }));

    test("overlapping edits under the default manual policy: one open conflict, conflict.detected, local data kept", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const store = yield* RecordStore;
        const conflicts = yield* Conflicts;
        const outbound = yield* OutboundWebhooks;
        const db = yield* Database;
        const target = yield* setup();
        const subscription = yield* outbound.create(target.tenantId, {
          url: "https://hooks.example.test/conflicts",
          events: ["conflict.detected"],
        });
        acme.seed(3);
        yield* engine.run({ ...target, mode: "full" });
        yield* store.applyLocalChange(target, "c000002", { firstName: "Local" });
        acme.update("c000002", { firstName: "Remote", email: "new@acme.test" });
        const run = yield* engine.run({ ...target, mode: "full" });
        expect(run).toMatchObject({ updated: 0, unchanged: 3, errors: [] });
        expect(yield* storedRecord(target, "c000002")).toMatchObject({
          syncStatus: "conflict",
          data: { firstName: "Local", email: "contact2@acme.test" },
        });
        const open = (yield* conflicts.list(target.tenantId, { status: "open" })).items;
        expect(open.map((c) => [c.externalId, c.fields, c.policy])).toEqual([["c000002", ["firstName"], "manual"]]);
        expect(open[0]).toMatchObject({
          local: { firstName: "Local" },
          remote: { firstName: "Remote", email: "new@acme.test" },
        });
        const deliveries = yield* db
          .query((k) =>
            k
              .selectFrom("webhook_deliveries")
              .select("event_type")
              .where("subscription_id", "=", subscription.id)
              .execute(),
          )
          .pipe(Effect.orDie);
        expect(deliveries.map((d) => d.event_type)).toEqual(["conflict.detected"]);
        // The same remote version again: no second conflict.
        yield* engine.run({ ...target, mode: "full" });
        expect((yield* conflicts.list(target.tenantId, {})).items).toHaveLength(1);
      }));

    test("an entity's policy settles overlapping edits during the pull, with an audit row", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const store = yield* RecordStore;
        const conflicts = yield* Conflicts;
        const target = yield* setup({ connector: localWins.name });
        acme.seed(2);
        yield* engine.run({ ...target, mode: "full" });
        yield* store.applyLocalChange(target, "c000001", { firstName: "Local" });
        acme.update("c000001", { firstName: "Remote", lastName: "Remote" });
        const run = yield* engine.run({ ...target, mode: "delta" });
        expect(run).toMatchObject({ updated: 1, errors: [] });
        expect(yield* storedRecord(target, "c000001")).toMatchObject({
          syncStatus: "pending",
          data: { firstName: "Local", lastName: "Remote" },
          pendingChanges: { firstName: "Local" },
        });
        const audit = (yield* conflicts.list(target.tenantId, {})).items;
        expect(audit.map((c) => [c.status, c.fields, c.policy, c.resolution, c.resolvedBy])).toEqual([
          ["resolved", ["firstName"], "source-priority", { firstName: "Local" }, "policy:source-priority"],
        ]);
      }));
  });
}
