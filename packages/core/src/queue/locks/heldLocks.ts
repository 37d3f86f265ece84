import { Deferred, Duration, Effect, Schedule, type Scope } from "effect";
import type { AcquireOptions, HeldLock, LockHeld, LockLease } from "../Locks.ts";
import { LockLost } from "../Locks.ts";

/** The lock operations a held lock is built from. */
export interface LockOps {
  readonly acquire: (key: string, options?: AcquireOptions) => Effect.Effect<LockLease, LockHeld>;
  readonly renew: (lease: LockLease, ttlMs?: number) => Effect.Effect<boolean>;
  readonly release: (lease: LockLease) => Effect.Effect<boolean>;
}

/**
 * Releases a lease at the end of its scope. The database may be failing over right then:
 * the release is retried for a few seconds, and if it still fails the row is left to
 * expire (said in the log). That blocks no later attempt of the same job, which takes a
 * lock its own job left (see `acquireLock`); others wait for the expiry.
 */
const releaseOrLeave = (ops: LockOps, lease: LockLease) =>
  ops.release(lease).pipe(
    Effect.catchAllDefect((defect) => Effect.fail(defect)),
    Effect.retry(Schedule.exponential("50 millis").pipe(Schedule.upTo("3 seconds"))),
    Effect.catchAll((defect) =>
      Effect.logWarning(`lock ${lease.key}: release failed; the row is left to expire`, defect),
    ),
  );

/** Holds the lock for the Scope: renewed in the background at a third of its TTL, released on close. */
export const scopedLock = (
  ops: LockOps,
  key: string,
  options: AcquireOptions = {},
): Effect.Effect<HeldLock, LockHeld, Scope.Scope> =>
  Effect.gen(function* () {
    const ttlMs = options.ttlMs ?? 30_000;
    const lease = yield* Effect.acquireRelease(ops.acquire(key, options), (l) => releaseOrLeave(ops, l));
    const lost = yield* Deferred.make<void>();
    yield* ops.renew(lease, ttlMs).pipe(
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

/** Runs `effect` holding the lock; interrupts it and fails with LockLost if the lock is lost. */
export const withLock = <A, E, R>(
  ops: LockOps,
  key: string,
  options: AcquireOptions,
  effect: (lease: LockLease) => Effect.Effect<A, E, R>,
): Effect.Effect<A, E | LockHeld | LockLost, R> =>
  Effect.scoped(
    Effect.flatMap(scopedLock(ops, key, options), (held) =>
      // Losing the lock stops the work: someone else may hold it now.
      Effect.raceFirst(
        effect({ key: held.key, token: held.token, holder: held.holder }),
        Effect.zipRight(held.lost, Effect.fail(new LockLost({ key: held.key, token: held.token }))),
      ),
    ),
  );
