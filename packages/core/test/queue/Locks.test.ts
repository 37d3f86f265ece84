import { expect, layer } from "@effect/vitest";
import { Database, LockHeld, Locks, syncLockKey } from "@tandem/core";
import { dialects, testDatabaseLayer } from "@tandem/testkit";
import { Effect, Layer, TestServices } from "effect";
import { sql } from "kysely";

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
  });
}
