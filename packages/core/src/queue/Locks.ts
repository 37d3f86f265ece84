import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { Clock, Context, Data, Deferred, Duration, Effect, Layer, Schedule, type Scope } from "effect";
import { type RawBuilder, sql } from "kysely";
import { Database } from "../db/Database.ts";

/** The lock is held by someone else (until `expiresAt`, unless renewed). */
export class LockHeld extends Data.TaggedError("LockHeld")<{
  readonly key: string;
  /** The process holding it: host:pid:random. */
  readonly holder: string;
  /** The job holding it, when the holder said so: what a second trigger reports. */
  readonly jobId: string | null;
  readonly expiresAt: Date;
}> {
  override get message() {
    const job = this.jobId === null ? "" : ` for job ${this.jobId}`;
    return `lock ${this.key} is held by ${this.holder || "(unknown)"}${job} until ${this.expiresAt.toISOString()}`;
  }
}

/** The lock was taken over (it expired unrenewed, or was released) while work ran under it. */
export class LockLost extends Data.TaggedError("LockLost")<{
  readonly key: string;
  readonly token: string;
}> {}

/** A held lock. `token` is its fencing token: strictly greater than every earlier holder's. */
export interface LockLease {
  readonly key: string;
  readonly token: string;
  readonly holder: string;
}

/** A lock held for a Scope; `lost` completes if the lease is ever lost. */
export interface HeldLock extends LockLease {
  readonly lost: Effect.Effect<void>;
}

/** How a lock is taken. */
export interface AcquireOptions {
  /** Lease length; renewed by `scoped`/`withLock` at a third of it. Default 30 s. */
  readonly ttlMs?: number;
  /**
   * The job taking the lock: recorded, so a contender can say which job holds it, and the lock's
   * owner: a later attempt of the same job takes over a lock an earlier attempt left (see
   * `acquire`).
   */
  readonly jobId?: string | undefined;
  /** Keep trying this long before failing with LockHeld. Default 0 (fail at once). */
  readonly waitMs?: number;
}

/** The lock for one sync of a connection's entity (full, delta, reconcile all share it). */
export const syncLockKey = (connectionId: string, entity: string) => `sync:${connectionId}:${entity}`;

/** The lock that keeps a push and a pull of one record from interleaving. */
export const recordLockKey = (connectionId: string, entity: string, externalId: string) =>
  `record:${connectionId}:${entity}:${externalId}`;

/** The lock operations; see Locks. */
export interface LocksService {
  /**
   * Takes the lock if it is free, its lease expired, or it was taken for the same job
   * (`jobId`); fails with LockHeld otherwise.
   */
  readonly acquire: (key: string, options?: AcquireOptions) => Effect.Effect<LockLease, LockHeld>;
  /** Extends the lease; false when it was lost (expired and taken, or released). */
  readonly renew: (lease: LockLease, ttlMs?: number) => Effect.Effect<boolean>;
  /** Releases the lock if this lease still holds it. */
  readonly release: (lease: LockLease) => Effect.Effect<boolean>;
  /** True while this lease is the lock's current holder. */
  readonly isCurrent: (lease: LockLease) => Effect.Effect<boolean>;
  /** Holds the lock for the Scope: renewed in the background, released on close. */
  readonly scoped: (key: string, options?: AcquireOptions) => Effect.Effect<HeldLock, LockHeld, Scope.Scope>;
  /** Runs `effect` holding the lock; interrupts it and fails with LockLost if the lock is lost. */
  readonly withLock: <A, E, R>(
    key: string,
    options: AcquireOptions,
    effect: (lease: LockLease) => Effect.Effect<A, E, R>,
  ) => Effect.Effect<A, E | LockHeld | LockLost, R>;
  /**
   * Runs `effect` in one transaction holding a transaction-scoped advisory lock on
   * `key` (waits for it); for critical sections that fit in a single transaction.
   */
  readonly withTransactionLock: <A, E, R>(key: string, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>;
}

/**
 * A WHERE condition that holds only while `lease` is current: add it to a write so a
 * holder whose lease expired (a paused or partitioned process) cannot write anymore.
 */
export const fencedBy = (lease: LockLease): RawBuilder<boolean> =>
  sql<boolean>`exists (select 1 from locks where key = ${lease.key} and token = ${lease.token}::bigint)`;

/**
 * Lock rows in PostgreSQL with expiry and fencing tokens: every decision is a
 * statement on the `locks` table, never process memory, so all processes agree.
 */
export class Locks extends Context.Tag("@tandem/core/Locks")<Locks, LocksService>() {
  /** Needs Database. */
  static readonly layer = Layer.effect(
    Locks,
    Effect.gen(function* () {
      const db = yield* Database;
      const holder = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
      const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms));

      /**
       * Re-entrant by job: a lock row naming the job that asks was left by an earlier attempt of
       * that job, whose release failed (its connection died) or never ran (its process was
       * killed). A job's attempts run one at a time (the queue leases the job to one attempt
       * until it is settled or its lease expires), so that attempt is over, or a zombie that
       * lost its lease: the new attempt takes the lock at once, with a new fencing token that
       * fences the zombie's writes off, instead of waiting out the row's expiry. Taking the same
       * key twice within one attempt would take it from itself; nothing nests a lock that way.
       */
      const tryAcquire = (key: string, ttlMs: number, jobId: string | null) =>
        Effect.gen(function* () {
          const at = yield* now;
          const expires = new Date(at.getTime() + ttlMs);
          const taken = yield* db
            .query((k) =>
              sql<{ token: string }>`
                insert into locks (key, holder, token, job_id, acquired_at, expires_at)
                values (${key}, ${holder}, nextval('lock_tokens'), ${jobId}, ${at}, ${expires})
                on conflict (key) do update set holder = excluded.holder, token = excluded.token,
                  job_id = excluded.job_id, acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
                where locks.expires_at <= ${at} or locks.job_id = excluded.job_id
                returning token::text as token`.execute(k),
            )
            .pipe(Effect.orDie);
          const row = taken.rows[0];
          if (row !== undefined) return { key, token: row.token, holder } satisfies LockLease;
          const current = yield* db
            .query((k) => k.selectFrom("locks").selectAll().where("key", "=", key).executeTakeFirst())
            .pipe(Effect.orDie);
          return yield* new LockHeld({
            key,
            holder: current?.holder ?? "",
            jobId: current?.job_id ?? null,
            expiresAt: current?.expires_at ?? at,
          });
        });

      const acquire = Effect.fn("Locks.acquire")(function* (key: string, options: AcquireOptions = {}) {
        const attempt = tryAcquire(key, options.ttlMs ?? 30_000, options.jobId ?? null);
        const waitMs = options.waitMs ?? 0;
        if (waitMs <= 0) return yield* attempt;
        return yield* attempt.pipe(
          Effect.retry({
            schedule: Schedule.spaced("25 millis").pipe(Schedule.upTo(Duration.millis(waitMs))),
            while: (e) => e._tag === "LockHeld",
          }),
        );
      });

      const renew = Effect.fn("Locks.renew")(function* (lease: LockLease, ttlMs = 30_000) {
        const at = yield* now;
        const result = yield* db
          .query((k) =>
            k
              .updateTable("locks")
              .set({ expires_at: new Date(at.getTime() + ttlMs) })
              .where("key", "=", lease.key)
              .where("token", "=", lease.token)
              .where("expires_at", ">", at)
              .executeTakeFirst(),
          )
          .pipe(Effect.orDie);
        return Number(result.numUpdatedRows) > 0;
      });

      const release = Effect.fn("Locks.release")(function* (lease: LockLease) {
        const result = yield* db
          .query((k) =>
            k.deleteFrom("locks").where("key", "=", lease.key).where("token", "=", lease.token).executeTakeFirst(),
          )
          .pipe(Effect.orDie);
        return Number(result.numDeletedRows) > 0;
      });

      const isCurrent = Effect.fn("Locks.isCurrent")(function* (lease: LockLease) {
        const at = yield* now;
        const row = yield* db
          .query((k) =>
            k
              .selectFrom("locks")
              .select("key")
              .where("key", "=", lease.key)
              .where("token", "=", lease.token)
              .where("expires_at", ">", at)
              .executeTakeFirst(),
          )
          .pipe(Effect.orDie);
        return row !== undefined;
      });

      /**
       * Releases a lease at the end of its scope. The database may be failing over right then:
       * the release is retried for a few seconds, and if it still fails the row is left to
       * expire (said in the log). That blocks no later attempt of the same job, which takes a
       * lock its own job left (see `tryAcquire`); others wait for the expiry.
       */
      const releaseOrLeave = (lease: LockLease) =>
        release(lease).pipe(
          Effect.catchAllDefect((defect) => Effect.fail(defect)),
          Effect.retry(Schedule.exponential("50 millis").pipe(Schedule.upTo("3 seconds"))),
          Effect.catchAll((defect) =>
            Effect.logWarning(`lock ${lease.key}: release failed; the row is left to expire`, defect),
          ),
        );

      const scoped = (key: string, options: AcquireOptions = {}) =>
        Effect.gen(function* () {
          const ttlMs = options.ttlMs ?? 30_000;
          const lease = yield* Effect.acquireRelease(acquire(key, options), releaseOrLeave);
          const lost = yield* Deferred.make<void>();
          yield* renew(lease, ttlMs).pipe(
            // An unreachable database is not a lost lock (yet): the next renewal decides.
            Effect.catchAllDefect(() => Effect.succeed(true)),
            Effect.repeat({
              schedule: Schedule.spaced(Duration.millis(Math.max(10, Math.floor(ttlMs / 3)))),
              while: (held) => held,
            }),
            Effect.zipRight(Deferred.succeed(lost, undefined)),
            Effect.forkScoped,
          );
          return { ...lease, lost: Deferred.await(lost) } satisfies HeldLock;
        });

      const withLock = <A, E, R>(
        key: string,
        options: AcquireOptions,
        effect: (lease: LockLease) => Effect.Effect<A, E, R>,
      ): Effect.Effect<A, E | LockHeld | LockLost, R> =>
        Effect.scoped(
          Effect.flatMap(scoped(key, options), (held) =>
            // Losing the lock stops the work: someone else may hold it now.
            Effect.raceFirst(
              effect({ key: held.key, token: held.token, holder: held.holder }),
              Effect.zipRight(held.lost, Effect.fail(new LockLost({ key: held.key, token: held.token }))),
            ),
          ),
        );

      const withTransactionLock = <A, E, R>(key: string, effect: Effect.Effect<A, E, R>) =>
        db.transaction(
          Effect.zipRight(
            db
              .query((k) => sql`select pg_advisory_xact_lock(hashtextextended(${key}, 0))`.execute(k))
              .pipe(Effect.orDie),
            effect,
          ),
        );

      return { acquire, renew, release, isCurrent, scoped, withLock, withTransactionLock } satisfies LocksService;
    }),
  );
}
