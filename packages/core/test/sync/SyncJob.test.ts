import { expect, layer } from "@effect/vitest";
import {
  Database,
  defineSyncJob,
  InvalidRecord,
  registerSyncJob,
  runSync,
  type SyncJob,
  SyncJobs,
  type SyncResult,
  scheduleSyncJob,
  syncIntervals,
  syncSingleItem,
  triggerSync,
} from "@tandem/core";
import { type AcmeContactWire, AcmeCrm, dialects, startAcmeServer, testDatabaseLayer } from "@tandem/testkit";
import { Effect, Fiber, Stream, TestClock, TestServices } from "effect";
import { type Kysely, sql } from "kysely";
import { afterAll, beforeAll } from "vitest";

const acme = new AcmeCrm();
let server: ReturnType<typeof startAcmeServer>;
beforeAll(() => {
  server = startAcmeServer(acme);
});
afterAll(() => server.close());

const live = TestServices.provideLive;
const realSleep = (ms: number) => live(Effect.sleep(ms));

/** Plain TypeScript, as a user writes it (seeds/003): pages from the vendor over fetch. */
async function* fetchAcmeContacts(): AsyncGenerator<AcmeContactWire> {
  let cursor: string | null = null;
  do {
    const url = new URL(`${acme.baseUrl}/contacts`);
    url.searchParams.set("limit", "3");
    if (cursor !== null) url.searchParams.set("cursor", cursor);
    const response = await fetch(url, { headers: { authorization: `Bearer ${acme.token}` } });
    const body = (await response.json()) as { data: Array<AcmeContactWire>; nextCursor: string | null };
    yield* body.data;
    cursor = body.nextCursor;
  } while (cursor !== null);
}

interface LocalContact {
  readonly id: number;
  readonly external_id: string;
  readonly email: string;
  readonly name: string;
}

/** A user's own sink: their table, their queries (the engine never sees it). */
const userTableJob = (db: Kysely<any>, table: string, events: Array<string> = []) =>
  defineSyncJob<AcmeContactWire, LocalContact>({
    name: `acme-to-${table}`,
    fetchExternal: fetchAcmeContacts,
    getExternalId: (c) => c.id,
    findLocal: async (id) =>
      ((await db.selectFrom(table).selectAll().where("external_id", "=", id).executeTakeFirst()) as LocalContact) ??
      null,
    create: async (c) => {
      if (c.email.startsWith("bounce")) throw new Error(`cannot store ${c.email}`);
      await db
        .insertInto(table)
        .values({ external_id: c.id, email: c.email, name: `${c.firstName} ${c.lastName}` })
        .execute();
    },
    update: async (c, local) => {
      const name = `${c.firstName} ${c.lastName}`;
      if (local.email === c.email && local.name === name) return false;
      await db.updateTable(table).set({ email: c.email, name }).where("id", "=", local.id).execute();
    },
    isDeleted: (c) => c.lifecycleStage === "archived",
    delete: async (local) => {
      await db.deleteFrom(table).where("id", "=", local.id).execute();
    },
    onStart: async () => {
      events.push("start");
    },
    onComplete: async (result) => {
      events.push(`complete:${result.created}/${result.updated}/${result.unchanged}/${result.deleted}`);
    },
  });

const createTable = (table: string) =>
  Effect.flatMap(Database, (db) =>
    db.query((k) =>
      sql`create table ${sql.table(table)} (id serial primary key, external_id text unique not null, email text not null, name text not null)`.execute(
        k,
      ),
    ),
  ).pipe(Effect.orDie);

let tables = 0;

for (const dialect of dialects) {
  layer(testDatabaseLayer(dialect), { timeout: 60_000 })(`SyncJob on ${dialect}`, (it) => {
    const setup = Effect.gen(function* () {
      acme.reset();
      const table = `local_contacts_${++tables}`;
      yield* createTable(table);
      return { db: (yield* Database).kysely as Kysely<any>, table };
    });

    it.effect("runSync into a user table: created, updated, unchanged, deleted, hooks", () =>
      live(
        Effect.gen(function* () {
          const { db, table } = yield* setup;
          const events: Array<string> = [];
          const job = userTableJob(db, table, events);
          acme.seed(7);
          const first = yield* Effect.promise(() => runSync(job));
          expect(first).toMatchObject({
            name: job.name,
            created: 7,
            updated: 0,
            unchanged: 0,
            deleted: 0,
            errors: [],
          });
          expect(first.durationMs).toBeGreaterThanOrEqual(0);

          acme.update("c000002", { email: "new@acme.test" });
          acme.update("c000005", { lifecycleStage: "archived" });
          const second = yield* Effect.promise(() => runSync(job));
          expect(second).toMatchObject({ created: 0, updated: 1, unchanged: 5, deleted: 1, errors: [] });
          const rows = yield* Effect.promise(() => db.selectFrom(table).select(["external_id", "email"]).execute());
          expect(rows).toHaveLength(6);
          expect(rows.find((r) => r.external_id === "c000002")?.email).toBe("new@acme.test");
          expect(events).toEqual(["start", "complete:7/0/0/0", "start", "complete:0/1/5/1"]);
        }),
      ),
    );

    it.effect("one bad item is reported and the run goes on", () =>
      live(
        Effect.gen(function* () {
          const { db, table } = yield* setup;
          acme.seed(4);
          acme.create({ email: "bounce@acme.test" });
          acme.seed(2);
          const result = yield* Effect.promise(() => runSync(userTableJob(db, table)));
          expect(result.created).toBe(6);
          expect(result.errors).toEqual([
            { externalId: "c000005", type: "Error", message: "cannot store bounce@acme.test" },
          ]);
        }),
      ),
    );

    it.effect("Effect style: a Stream source and Effect sinks, typed item errors", () =>
      Effect.gen(function* () {
        const seen: Array<string> = [];
        let completed: SyncResult | undefined;
        const job: SyncJob<{ sku: string; qty: number }, { sku: string }> = defineSyncJob({
          name: "effect-inventory",
          fetchExternal: () =>
            Stream.make({ sku: "A", qty: 1 }, { sku: "B", qty: -1 }, { sku: "C", qty: 3 }, { sku: "D", qty: 4 }),
          getExternalId: (i) => i.sku,
          findLocal: (sku) => Effect.succeed(sku === "C" ? { sku } : null),
          create: (i) =>
            i.qty < 0
              ? Effect.fail(new InvalidRecord({ message: "negative stock", externalId: i.sku }))
              : Effect.sync(() => seen.push(i.sku)),
          update: (i) => Effect.sync(() => seen.push(`updated ${i.sku}`)),
          onComplete: (r) =>
            Effect.sync(() => {
              completed = r;
            }),
        });
        const result = yield* SyncJobs.run(job);
        expect(result).toMatchObject({ created: 2, updated: 1, unchanged: 0 });
        expect(result.errors).toEqual([{ externalId: "B", type: "InvalidRecord", message: "negative stock" }]);
        expect(seen).toEqual(["A", "updated C", "D"]);
        expect(completed).toEqual(result);
      }),
    );

    it.effect("a source that cannot be read fails the run with SyncSourceFailed", () =>
      Effect.gen(function* () {
        const job = defineSyncJob<{ id: string }, unknown>({
          name: "broken-source",
          fetchExternal: async () => {
            throw new Error("ERP is down");
          },
          getExternalId: (i) => i.id,
          findLocal: async () => null,
          create: async () => {},
          update: async () => {},
        });
        const error = yield* Effect.promise(() =>
          runSync(job).then(
            () => undefined,
            (e: unknown) => e,
          ),
        );
        expect(error).toMatchObject({ _tag: "SyncSourceFailed", name: "broken-source", message: "ERP is down" });
      }),
    );

    it.effect("syncSingleItem handles one webhook payload", () =>
      live(
        Effect.gen(function* () {
          const { db, table } = yield* setup;
          const job = userTableJob(db, table);
          const contact = acme.create({ firstName: "Web", lastName: "Hook" });
          expect(yield* Effect.promise(() => syncSingleItem(job, contact))).toEqual({
            action: "created",
            externalId: contact.id,
          });
          expect(yield* Effect.promise(() => syncSingleItem(job, contact))).toEqual({
            action: "unchanged",
            externalId: contact.id,
          });
          const changed = acme.update(contact.id, { lastName: "Hooked" })!;
          expect(yield* Effect.promise(() => syncSingleItem(job, changed))).toEqual({
            action: "updated",
            externalId: contact.id,
          });
          const bounced = { ...changed, id: "c999999", email: "bounce@x.test" };
          const failed = yield* Effect.promise(() => syncSingleItem(job, bounced));
          expect(failed).toMatchObject({ action: "failed", externalId: "c999999", error: { type: "Error" } });
        }),
      ),
    );

    it.effect("registerSyncJob + triggerSync by name; concurrent triggers share one run", () =>
      live(
        Effect.gen(function* () {
          const { db, table } = yield* setup;
          const events: Array<string> = [];
          const job = { ...userTableJob(db, table, events), name: `registered-${dialect}` };
          acme.seed(3);
          registerSyncJob(job);
          const [a, b] = yield* Effect.promise(() => Promise.all([triggerSync(job.name), triggerSync(job.name)]));
          expect(a).toBe(b);
          expect(a.created).toBe(3);
          expect(events.filter((e) => e === "start")).toHaveLength(1);
          const unknown = yield* Effect.promise(() =>
            triggerSync("nope").then(
              () => undefined,
              (e: unknown) => e,
            ),
          );
          expect(unknown).toMatchObject({ _tag: "UnknownSyncJob", message: 'no sync job named "nope" is registered' });
        }),
      ),
    );

    it.effect("a schedule runs the job every interval (TestClock) until interrupted", () =>
      Effect.gen(function* () {
        let runs = 0;
        registerSyncJob(
          defineSyncJob<{ id: string }, unknown>({
            name: `hourly-${dialect}`,
            fetchExternal: () => [],
            getExternalId: (i) => i.id,
            findLocal: () => null,
            create: () => {},
            update: () => {},
            onStart: () => {
              runs++;
            },
          }),
        );
        const unknown = yield* SyncJobs.schedule("never-registered", syncIntervals.hours(1)).pipe(Effect.flip);
        expect(unknown._tag).toBe("UnknownSyncJob");
        const fiber = yield* SyncJobs.schedule(`hourly-${dialect}`, syncIntervals.hours(1));
        yield* TestClock.adjust("59 minutes");
        yield* realSleep(20);
        expect(runs).toBe(0);
        yield* TestClock.adjust("1 minute");
        yield* realSleep(20);
        expect(runs).toBe(1);
        yield* TestClock.adjust("2 hours");
        yield* realSleep(20);
        expect(runs).toBe(3);
        yield* Fiber.interrupt(fiber);
        yield* TestClock.adjust("5 hours");
        yield* realSleep(20);
        expect(runs).toBe(3);
        expect(syncIntervals.minutes(30)).toEqual({ _tag: "Interval", millis: 1_800_000 });
        expect(syncIntervals.days(1)).toEqual({ _tag: "Interval", millis: 86_400_000 });
      }),
    );

    it.effect("scheduleSyncJob with a cron expression ticks through node-cron, and stops", () =>
      live(
        Effect.gen(function* () {
          let runs = 0;
          registerSyncJob(
            defineSyncJob<{ id: string }, unknown>({
              name: `cron-${dialect}`,
              fetchExternal: () => [],
              getExternalId: (i) => i.id,
              findLocal: () => null,
              create: () => {},
              update: () => {},
              onStart: () => {
                runs++;
              },
            }),
          );
          const invalid = yield* Effect.promise(() =>
            scheduleSyncJob(`cron-${dialect}`, "every now and then").then(
              () => undefined,
              (e: unknown) => e,
            ),
          );
          expect(invalid).toMatchObject({ _tag: "InvalidSchedule", expression: "every now and then" });
          expect(String(invalid)).toContain('invalid cron expression "every now and then"');
          // Six fields: node-cron's seconds field, so the test waits about a second, not a minute.
          const handle = yield* Effect.promise(() => scheduleSyncJob(`cron-${dialect}`, "* * * * * *"));
          yield* realSleep(1_300);
          yield* Effect.promise(() => handle.stop());
          const after = runs;
          expect(after).toBeGreaterThanOrEqual(1);
          yield* realSleep(1_100);
          expect(runs).toBe(after);
        }),
      ),
    );
  });
}
