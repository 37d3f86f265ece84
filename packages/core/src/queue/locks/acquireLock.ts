import { Duration, Effect, Schedule } from "effect";
import type { DatabaseService } from "../../db/Database.ts";
import { currentDate } from "../currentDate.ts";
import * as store from "../LockStore.ts";
import { type AcquireOptions, LockHeld, type LockLease } from "../Locks.ts";

/**
 * One try at the lock. Re-entrant by job: a lock row naming the job that asks was left by an
 * earlier attempt of that job, whose release failed (its connection died) or never ran (its
 * process was killed). A job's attempts run one at a time (the queue leases the job to one
 * attempt until it is settled or its lease expires), so that attempt is over, or a zombie that
 * lost its lease: the new attempt takes the lock at once, with a new fencing token that fences
 * the zombie's writes off, instead of waiting out the row's expiry. Taking the same key twice
 * within one attempt would take it from itself; nothing nests a lock that way.
 */
const tryAcquire = (db: DatabaseService, holder: string, key: string, ttlMs: number, jobId: string | null) =>
  Effect.gen(function* () {
    const at = yield* currentDate;
    const expiresAt = new Date(at.getTime() + ttlMs);
    const token = yield* db.query((k) => store.take(k, { key, holder, jobId, now: at, expiresAt })).pipe(Effect.orDie);
    if (token !== undefined) return { key, token, holder } satisfies LockLease;
    const current = yield* db.query((k) => store.holderOf(k, key)).pipe(Effect.orDie);
    return yield* new LockHeld({
      key,
      holder: current?.holder ?? "",
      jobId: current?.job_id ?? null,
      expiresAt: current?.expires_at ?? at,
    });
  });

/** Takes the lock, trying for `waitMs` (default: once); fails with LockHeld. */
export const acquireLock = Effect.fn("Locks.acquire")(function* (
  db: DatabaseService,
  holder: string,
  key: string,
  options: AcquireOptions = {},
) {
  const attempt = tryAcquire(db, holder, key, options.ttlMs ?? 30_000, options.jobId ?? null);
  const waitMs = options.waitMs ?? 0;
  if (waitMs <= 0) return yield* attempt;
  return yield* attempt.pipe(
    Effect.retry({
      schedule: Schedule.spaced("25 millis").pipe(Schedule.upTo(Duration.millis(waitMs))),
      while: (e) => e._tag === "LockHeld",
    }),
  );
});
