import { expect, layer } from "@effect/vitest";
import { Database, fencedBy, LockHeld, Locks, recordLockKey, syncLockKey } from "@tandem/core";
import { dialects, testDatabaseLayer } from "@tandem/testkit";
import { Effect, Fiber, Layer, TestClock, TestServices } from "effect";
import { sql } from "kysely";

/** Wall-clock sleep: lets database I/O started by a TestClock wake-up finish. */
const realSleep = (ms: number) => Effect.promise(() => new Promise((r) => setTimeout(r, ms)));

const locksLayer = (dialect: (typeof dialects)[number]) =>
  Locks.layer.pipe(Layer.provideMerge(testDatabaseLayer(dialect)));

const lockRow = (key: string) =>
  Effect.flatMap(Database, (db) =>
    db.query((k) => k.selectFrom("locks").selectAll().where("key", "=", key).executeTakeFirst()),
  ).pipe(Effect.orDie);

/**
 * Deletes of lock rows whose key starts with `release-fault:` fail as a terminated backend does
 * (SQLSTATE 57P01), the first `times` of them: the database failing over under a release. The
 * count is a sequence, which a rolled-back statement does not undo.
 */
const failReleases = (times: number) =>
  Effect.flatMap(Database, (db) =>
    db.query(async (k) => {
      await sql`create sequence if not exists release_faults`.execute(k);
      await sql`select setval('release_faults', 1, false)`.execute(k);
      await sql
        .raw(`
        create or replace function fail_releases() returns trigger language plpgsql as $$
        begin
          if old.key like 'release-fault:%' and nextval('release_faults') <= ${times} then
            raise exception 'terminating connection due to administrator command' using errcode = 'admin_shutdown';
          end if;
          return old;
        end $$`)
        .execute(k);
      await sql`drop trigger if exists fail_releases on locks`.execute(k);
      await sql`create trigger fail_releases before delete on locks for each row execute function fail_releases()`.execute(
        k,
      );
    }),
  ).pipe(Effect.orDie);

for (const dialect of dialects) {
  layer(locksLayer(dialect), { timeout: 60_000 })(`Locks on ${dialect}`, (it) => {
    it.effect("LockHeld names the lock, the process and the job holding it", () =>
      Effect.gen(function* () {
        const locks = yield* Locks;
        const key = syncLockKey(crypto.randomUUID(), "contacts");
        const jobId = crypto.randomUUID();
        const lease = yield* locks.acquire(key, { jobId });
        const held = yield* locks.acquire(key, { jobId: crypto.randomUUID() }).pipe(Effect.flip);
        expect(held).toBeInstanceOf(LockHeld);
        expect(held.key).toBe(key);
        expect(held.holder).toBe(lease.holder);
        expect(held.jobId).toBe(jobId);
        expect(held.message).toContain(`lock ${key} is held by ${lease.holder} for job ${jobId} until `);
      }),
    );

    it.effect("a job's next attempt takes over the lock its earlier attempt left; other jobs still wait", () =>
      Effect.gen(function* () {
        const locks = yield* Locks;
        const key = syncLockKey(crypto.randomUUID(), "contacts");
        const jobId = crypto.randomUUID();
        // The first attempt's release never ran (its process was killed): the row stays 30 s.
        const first = yield* locks.acquire(key, { jobId });
        const other = yield* locks.acquire(key, { jobId: crypto.randomUUID() }).pipe(Effect.flip);
        expect(other._tag).toBe("LockHeld");
        expect((yield* locks.acquire(key).pipe(Effect.flip))._tag).toBe("LockHeld");
        const second = yield* locks.acquire(key, { jobId });
        expect(BigInt(second.token)).toBeGreaterThan(BigInt(first.token));
        // The earlier attempt is fenced off: it can neither renew nor release the new holder's lock.
        expect(yield* locks.isCurrent(first)).toBe(false);
        expect(yield* locks.renew(first)).toBe(false);
        expect(yield* locks.release(first)).toBe(false);
        expect(yield* locks.isCurrent(second)).toBe(true);
        expect(yield* locks.release(second)).toBe(true);
      }),
    );

    it.effect("a release that fails while the database fails over is retried: no row is left behind", () =>
      TestServices.provideLive(
        Effect.gen(function* () {
          const locks = yield* Locks;
          yield* failReleases(2);
          const key = `release-fault:${crypto.randomUUID()}`;
          const result = yield* locks.withLock(key, { jobId: crypto.randomUUID() }, () => Effect.succeed("done"));
          expect(result).toBe("done");
          expect(yield* lockRow(key)).toBeUndefined();
          // Anyone can take it at once.
          const next = yield* locks.acquire(key, { jobId: crypto.randomUUID() });
          expect(next.key).toBe(key);
        }),
      ),
    );

    it.effect("locks: one holder at a time, expiry by the clock, fencing tokens reject a stale holder", () =>
      Effect.gen(function* () {
        const locks = yield* Locks;
        const db = yield* Database;
        const key = recordLockKey("c", "contacts", crypto.randomUUID());
        const first = yield* locks.acquire(key, { ttlMs: 1_000, jobId: "00000000-0000-0000-0000-000000000001" });
        const held = yield* locks.acquire(key).pipe(Effect.flip);
        expect(held).toBeInstanceOf(LockHeld);
        expect(held.jobId).toBe("00000000-0000-0000-0000-000000000001");
        yield* TestClock.adjust("999 millis");
        expect((yield* locks.acquire(key).pipe(Effect.flip))._tag).toBe("LockHeld");
        yield* TestClock.adjust("1 millis");
        const second = yield* locks.acquire(key, { ttlMs: 1_000 });
        expect(BigInt(second.token)).toBeGreaterThan(BigInt(first.token));
        expect(yield* locks.isCurrent(first)).toBe(false);
        expect(yield* locks.renew(first)).toBe(false);
        expect(yield* locks.release(first)).toBe(false);
        // A write fenced by the stale lease changes nothing; the current lease's write lands.
        const write = (lease: typeof first) =>
          db
            .query((k) =>
              k
                .updateTable("locks")
                .set({ holder: "written" })
                .where("key", "=", key)
                .where(fencedBy(lease))
                .executeTakeFirst(),
            )
            .pipe(
              Effect.orDie,
              Effect.map((r) => Number(r.numUpdatedRows)),
            );
        expect(yield* write(first)).toBe(0);
        expect(yield* write(second)).toBe(1);
        expect(yield* locks.release(second)).toBe(true);
        const third = yield* locks.acquire(key);
        expect(yield* locks.release(third)).toBe(true);
      }),
    );

    it.effect("work under a lock that is lost (taken over) is interrupted with LockLost", () =>
      Effect.gen(function* () {
        const locks = yield* Locks;
        const db = yield* Database;
        const key = recordLockKey("c", "contacts", crypto.randomUUID());
        let finished = false;
        const fiber = yield* Effect.fork(
          locks.withLock(key, { ttlMs: 900 }, () =>
            Effect.zipRight(
              Effect.sleep("1 hour"),
              Effect.sync(() => (finished = true)),
            ),
          ),
        );
        yield* realSleep(100);
        // Another holder's token replaces ours (as after an expiry and a takeover).
        yield* db
          .query((k) => k.updateTable("locks").set({ token: "999999999" }).where("key", "=", key).execute())
          .pipe(Effect.orDie);
        yield* TestClock.adjust("300 millis");
        yield* realSleep(100);
        const exit = yield* Fiber.await(fiber);
        expect(exit._tag).toBe("Failure");
        expect(exit._tag === "Failure" && String(exit.cause)).toContain("LockLost");
        expect(finished).toBe(false);
      }),
    );

    it.effect("a push and a pull of one record never interleave", () =>
      TestServices.provideLive(
        Effect.gen(function* () {
          const locks = yield* Locks;
          const key = recordLockKey("c", "contacts", crypto.randomUUID());
          const events: string[] = [];
          const step = (name: string) =>
            locks.withLock(key, { ttlMs: 5_000, waitMs: 5_000 }, () =>
              Effect.gen(function* () {
                events.push(`${name}:start`);
                yield* realSleep(60);
                events.push(`${name}:end`);
              }),
            );
          yield* Effect.all([step("push"), step("pull")], { concurrency: "unbounded" });
          expect(events.length).toBe(4);
          expect(events[0]!.split(":")[0]).toBe(events[1]!.split(":")[0]);
          expect(events[2]!.split(":")[0]).toBe(events[3]!.split(":")[0]);
          const counted = yield* locks.withTransactionLock(
            key,
            Effect.flatMap(Database, (db) =>
              db.query((k) => sql<{ n: number }>`select 1 as n`.execute(k)).pipe(Effect.orDie),
            ),
          );
          expect(counted.rows[0]?.n).toBe(1);
        }),
      ),
    );
  });
}
