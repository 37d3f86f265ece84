import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { Context, Data, Effect, Layer, type Scope } from "effect";
import { Database } from "../db/Database.ts";
import { currentDate } from "./currentDate.ts";
import * as store from "./LockStore.ts";
import { acquireLock } from "./locks/acquireLock.ts";
import { type LockOps, scopedLock, withLock } from "./locks/heldLocks.ts";

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

export { fencedBy } from "./LockStore.ts";

/**
 * Lock rows in PostgreSQL with expiry and fencing tokens: every decision is a
 * statement on the `locks` table, never process memory, so all processes agree.
 */
export class Locks extends Context.Tag("@tandem/core/Locks")<Locks, LocksService>() {
  /** Needs Database. */
  static readonly layerNoDeps = Layer.effect(
    Locks,
    Effect.suspend(() => makeLocks),
  );

  /** Needs Database (a root): the same as `layerNoDeps`. */
  static readonly layer = Locks.layerNoDeps;
}

const makeLocks = Effect.gen(function* () {
  const db = yield* Database;
  const holder = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const ops: LockOps = {
    acquire: (key, options) => acquireLock(db, holder, key, options),
    renew: Effect.fn("Locks.renew")(function* (lease: LockLease, ttlMs = 30_000) {
      const at = yield* currentDate;
      return yield* db.query((k) => store.extend(k, lease, at, new Date(at.getTime() + ttlMs))).pipe(Effect.orDie);
    }),
    release: Effect.fn("Locks.release")(function* (lease: LockLease) {
      return yield* db.query((k) => store.remove(k, lease)).pipe(Effect.orDie);
    }),
  };
  return {
    ...ops,
    isCurrent: Effect.fn("Locks.isCurrent")(function* (lease: LockLease) {
      const at = yield* currentDate;
      return yield* db.query((k) => store.isCurrent(k, lease, at)).pipe(Effect.orDie);
    }),
    scoped: (key, options) => scopedLock(ops, key, options),
    withLock: (key, options, effect) => withLock(ops, key, options, effect),
    withTransactionLock: (key, effect) =>
      db.transaction(
        Effect.zipRight(db.query((k) => store.advisoryTransactionLock(k, key)).pipe(Effect.orDie), effect),
      ),
  } satisfies LocksService;
});
