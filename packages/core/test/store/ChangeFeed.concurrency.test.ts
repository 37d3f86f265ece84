import { expect, layer } from "@effect/vitest";
import {
  Database,
  EntitySync,
  Locks,
  RecordStore,
  recordLockKey,
  type StoredRecord,
  type SyncTarget,
  SyncTriggers,
} from "@tandem/core";
import {
  AcmeCrm,
  acmeConnector,
  createTestConnection,
  type Dialect,
  dialects,
  startAcmeServer,
  testDatabaseLayer,
  testEngineLayer,
} from "@tandem/testkit";
import { Chunk, Clock, Effect, Random, Stream, TestServices } from "effect";
import { sql } from "kysely";
import { afterAll, beforeAll } from "vitest";
import { slowCommitsLayer } from "../fixtures/slowCommits.ts";

/*
 * The change feed under concurrent writers. A sync job (delta, full and push runs, one at a time as
 * the queue runs them), webhook jobs (one record each, under its record lock) and local edits
 * (some pushed at once) write one connection's entity at the same time, every write transaction
 * waiting a random time before it commits, while a consumer pages the feed throughout. At the end
 * the consumer's copy must equal the store: a change its cursor passed before the change was
 * visible would be missing for good.
 *
 * TANDEM_FEED_STRESS_ITERATIONS (default 1) runs more rounds per dialect; TANDEM_FEED_STRESS_MS
 * (default 2000) is how long the writers write in each.
 */
const iterations = Number(process.env.TANDEM_FEED_STRESS_ITERATIONS ?? 1);
const writeMs = Number(process.env.TANDEM_FEED_STRESS_MS ?? 2_000);
/** Rounds every writer runs at the least, however long they take. */
const minWrites = 6;

const acme = new AcmeCrm();
let server: ReturnType<typeof startAcmeServer>;
beforeAll(() => {
  server = startAcmeServer(acme);
});
afterAll(() => server.close());

/** Engine code runs on the real clock (the rate budget and the pauses sleep). */
const live = TestServices.provideLive;

/** Up to `maxMs` of real time, at random: the pause before a write commits. */
const randomPause = (maxMs: number) => Effect.flatMap(Random.nextIntBetween(0, maxMs + 1), (ms) => Effect.sleep(ms));

/** What the consumer keeps of a record: enough to tell whether it saw the record's last change. */
const copyOf = (r: StoredRecord) => ({
  version: r.version,
  deleted: r.deletedAt !== null,
  data: r.data,
  syncStatus: r.syncStatus,
});

const pick = <A>(items: ReadonlyArray<A>) => Effect.map(Random.nextIntBetween(0, items.length), (i) => items[i]!);

/** One round: seed, sync, then writers and a consumer at once; then the consumer's copy against the store. */
const round = Effect.gen(function* () {
  const store = yield* RecordStore;
  const engine = yield* EntitySync;
  const triggers = yield* SyncTriggers;
  const locks = yield* Locks;
  const db = yield* Database;
  acme.reset();
  acme.seed(40);
  const ids = yield* createTestConnection("acme-crm", { baseUrl: acme.baseUrl, token: acme.token, pageSize: 15 });
  const target: SyncTarget = { ...ids, entity: "contacts" };
  yield* engine.run({ ...target, mode: "full" });

  const deadline = (yield* Clock.currentTimeMillis) + writeMs;
  // Each writer runs a few rounds even when a loaded machine lets the window pass first, so the
  // round always writes from every side (checked at the end).
  const writing = (i: number) => Effect.map(Clock.currentTimeMillis, (now) => i < minWrites || now < deadline);
  const remoteIds = () => [...acme.contacts.keys()];

  // The sync job of the entity: the queue runs one at a time (delta, full, push alike).
  const syncJob = Effect.gen(function* () {
    const modes = ["delta", "full", "push"] as const;
    for (let i = 0; yield* writing(i); i++) {
      for (let n = 0; n < 3; n++) acme.update(yield* pick(remoteIds()), { lastName: `sync-${i}-${n}` });
      yield* engine.run({ ...target, mode: modes[i % modes.length]!, options: { batchSize: 10 } });
    }
  });
  // Webhook jobs: the vendor changed, created or deleted a record and says so; each job gets it.
  const webhookJobs = Effect.gen(function* () {
    for (let i = 0; yield* writing(i); i++) {
      let id: string;
      if (i % 5 === 3) id = acme.create({}).id;
      else if (i % 5 === 0 && acme.contacts.size > 20) {
        id = yield* pick(remoteIds());
        acme.remove(id);
      } else {
        id = yield* pick(remoteIds());
        acme.update(id, { firstName: `hook-${i}` });
      }
      yield* locks
        .withLock(recordLockKey(target.connectionId, target.entity, id), { waitMs: 5_000 }, () =>
          engine.syncRecord(target, { externalId: id }),
        )
        .pipe(Effect.catchTags({ LockHeld: () => Effect.void }));
    }
  });
  // Local edits from the host application; an email change is critical, so it is pushed at once.
  const localEdits = Effect.gen(function* () {
    for (let i = 0; yield* writing(i); i++) {
      const id = yield* pick(remoteIds());
      const fields = i % 3 === 0 ? { email: `edit-${i}@acme.test` } : { lifecycleStage: `stage-${i}` };
      yield* triggers
        .push(target.tenantId, { ...target, changes: [{ externalId: id, fields }] })
        .pipe(Effect.catchTags({ ResourceNotFound: () => Effect.void, PreconditionFailed: () => Effect.void }));
    }
  });

  // The consumer: pages of a few changes, as fast as it can, throughout.
  const copy = new Map<string, ReturnType<typeof copyOf>>();
  let cursor: string | undefined;
  const readPage = Effect.gen(function* () {
    const page = yield* store.changes(target, { after: cursor, limit: 5 });
    for (const r of page.records) copy.set(r.externalId, copyOf(r));
    cursor = page.cursor;
    return page;
  });
  const consumer = Effect.gen(function* () {
    while (yield* writing(minWrites)) {
      yield* readPage;
      yield* randomPause(3);
    }
  });

  yield* Effect.all([syncJob, webhookJobs, localEdits, consumer], { concurrency: "unbounded", discard: true });

  // Every write has committed. A transaction started now comes after all of them: once the oldest
  // running transaction is younger than it, everything written is visible, so the consumer reads
  // until then and then to the end of the feed.
  const xid = (query: string) =>
    db
      .query((k) => sql<{ x: string }>`${sql.raw(query)}`.execute(k))
      .pipe(
        Effect.orDie,
        Effect.map((r) => BigInt(r.rows[0]!.x)),
      );
  const marker = yield* xid("select pg_current_xact_id()::text as x");
  for (;;) {
    const page = yield* readPage;
    if (page.hasMore) continue;
    if ((yield* xid("select pg_snapshot_xmin(pg_current_snapshot())::text as x")) > marker) {
      // One more read: the feed up to this horizon.
      while ((yield* readPage).hasMore) {}
      break;
    }
    yield* Effect.sleep(20);
  }

  const stored = Chunk.toReadonlyArray(yield* Stream.runCollect(store.stream(target, { includeDeleted: true })));
  const expected = new Map(stored.map((r) => [r.externalId, copyOf(r)]));
  const missed = [...expected].filter(([id, r]) => JSON.stringify(copy.get(id)) !== JSON.stringify(r));
  expect(missed.map(([id, r]) => ({ id, store: r, consumer: copy.get(id) }))).toEqual([]);
  expect(copy.size).toBe(expected.size);
  // The round did write from every side.
  expect(stored.some((r) => r.deletedAt !== null)).toBe(true);
  expect(stored.some((r) => r.version > 2)).toBe(true);
});

const pauseOf: Record<Dialect, number> = {
  // PGlite runs one transaction at a time: a pause there only slows everyone down.
  pglite: 2,
  postgres: 25,
};

for (const dialect of dialects) {
  layer(
    testEngineLayer({
      dialect,
      connectors: [acmeConnector],
      database: slowCommitsLayer(testDatabaseLayer(dialect), randomPause(pauseOf[dialect])),
    }),
    { timeout: 120_000 },
  )(`the change feed under concurrent writers on ${dialect}`, (it) => {
    for (let i = 1; i <= iterations; i++) {
      it.effect(`round ${i}: a consumer paging throughout ends with exactly the store`, () => live(round), {
        timeout: 120_000 + writeMs * 2,
      });
    }
  });
}
