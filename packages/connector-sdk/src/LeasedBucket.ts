import { Cause, Clock, Duration, Effect, Fiber, Option } from "effect";
import type { RateLimitHint, RateLimitPolicy } from "./Connector.ts";
import type { TokenBucket } from "./RateBudget.ts";

/*
 * A connection's budget shared by several processes. The cluster keeps ONE token bucket per
 * connection (where is the source's business: core keeps it in a PostgreSQL row); each process
 * leases a few tokens at a time from it and spends them locally, so a request costs no round
 * trip. Why a leased token may be spent only within a short window after its lease starts: a
 * token taken at time s and spent at s + d is spent later than the shared bucket counted it, so
 * in any interval T the cluster could send up to depth + rate·(T + d). Spending within `windowMs`
 * bounds d, and the shared bucket is made shallower by rate·windowMs, so the cluster never sends
 * more than the policy's `burst + rate·T` (the bound a single in-memory bucket gives).
 */

/** Shortest and longest lease window. Below 100 ms a database round trip on a busy machine eats the window. */
const minLeaseWindowMs = 100;
const maxLeaseWindowMs = 2_000;
/** A lease never waits longer than this for its answer's expected delay (see `notBefore`). */
const maxLeadMs = 5_000;

/** The shared bucket's terms, from the connection's rate and burst. */
export interface LeaseTerms {
  /** Milliseconds of refill one token costs (1 / rate). */
  readonly costMs: number;
  /** The shared bucket's depth in milliseconds of refill: `depth tokens × costMs`. */
  readonly depthMs: number;
  /** How long after its start a lease's tokens may be spent; unspent ones then expire. */
  readonly windowMs: number;
  /** The most tokens one lease takes (the shared bucket's depth, whole). */
  readonly maxTokens: number;
}

/**
 * The terms for `requestsPerSecond` and `burst`: a window of half the time a full burst takes to
 * refill (clamped to 100 ms..2 s), and a shared bucket of `burst − rate·window` tokens (at least
 * one). HubSpot's 9/s with a burst of 10: a 556 ms window, leases of up to 5 tokens.
 */
export const leaseTerms = (requestsPerSecond: number, burst: number): LeaseTerms => {
  const perMs = Math.max(requestsPerSecond, 1e-6) / 1000;
  const capacity = Math.max(1, burst);
  const windowMs = Math.min(maxLeaseWindowMs, Math.max(minLeaseWindowMs, capacity / (2 * perMs)));
  const depth = Math.max(1, capacity - perMs * windowMs);
  return { costMs: 1 / perMs, depthMs: depth / perMs, windowMs, maxTokens: Math.floor(depth) };
};

/** What a process asks of the shared budget. Times are milliseconds on the processes' clock. */
export interface LeaseRequest {
  readonly terms: LeaseTerms;
  /** Tokens wanted, at most `terms.maxTokens`. */
  readonly tokens: number;
  readonly now: number;
  /** The lease may not start earlier: `now` plus the delay its answer is expected to take. */
  readonly notBefore: number;
  /**
   * The vendor's headers stated that only `count` requests remained at time `at` (the tightest
   * such statement since the last lease, when below the bucket's depth): the shared bucket held
   * at most that many tokens then, and has refilled since.
   */
  readonly remaining?: { readonly count: number; readonly at: number } | undefined;
}

/** A lease granted: `tokens` spendable from `startsAt` (which may be in the future) for `terms.windowMs`. */
export interface LeaseGrant {
  readonly startsAt: number;
  /** The connection's shared block (a vendor's reset or Retry-After), 0 when none; the lease starts after it. */
  readonly blockedUntil: number;
}

/**
 * Where a connection's shared budget lives (core: a PostgreSQL row per connection). `lease`
 * always grants the tokens asked for, starting when the shared bucket holds them: a busy
 * connection's processes queue for the budget in order instead of polling for it.
 */
export interface RateBudgetSource {
  readonly lease: (connectionId: string, request: LeaseRequest) => Effect.Effect<LeaseGrant>;
  /** Nothing goes out on the connection before `untilMs`, from any process. */
  readonly block: (connectionId: string, untilMs: number, now: number) => Effect.Effect<void>;
}

interface Lot {
  readonly granted: number;
  tokens: number;
  readonly startsAt: number;
  readonly endsAt: number;
}

const finite = (n: number | undefined): n is number => n !== undefined && Number.isFinite(n);

/** A lease that failed (the database unreachable) is asked again after this, doubling up to 5 s. */
const retryDelayMs = (attempt: number) => Math.min(5_000, 100 * 2 ** attempt);

/**
 * A connection's bucket in this process over the cluster's shared budget. Requests spend leased
 * tokens locally. The lease size follows demand (doubled after a lease spent in full, cut to what
 * was spent after one that expired), so a busy process leases once per `maxTokens` requests and
 * an idle one wastes little; processes that all want more than the budget end up with equal
 * leases, taken in turn. When half a lease is spent the next is taken in the background, so requests
 * rarely wait for the database. When the database is slow, leases are asked to start once their
 * answer is expected to arrive; when it is unreachable, requests wait (retrying the lease with
 * backoff) rather than go out unbudgeted.
 */
export const makeLeasedBucket = (
  connectionId: string,
  policy: RateLimitPolicy,
  source: RateBudgetSource,
): TokenBucket => {
  const burst = Math.max(1, policy.burst ?? policy.requestsPerSecond);
  let terms = leaseTerms(policy.requestsPerSecond, burst);
  const lots: Array<Lot> = [];
  /** The next lease's size. */
  let want = 1;
  let blockedUntil = 0;
  let remainingHint: { readonly count: number; readonly at: number } | undefined;
  let leadMs = 0;
  let renewal: Fiber.RuntimeFiber<void> | undefined;
  // Serializes takers so waiting requests go out in arrival order (as the in-memory bucket does).
  const lock = Effect.unsafeMakeSemaphore(1);

  // A lease spent in full doubles the next (to `maxTokens`); one that expired with tokens left
  // sizes the next to what was spent of it. Processes that all want more than the budget thus
  // all lease `maxTokens`, taken in turn: equal shares.
  const dropExpired = (now: number) => {
    while (lots.length > 0 && lots[0]!.endsAt <= now) {
      const lot = lots.shift()!;
      if (lot.tokens > 0) want = Math.max(1, lot.granted - lot.tokens);
    }
  };
  const unspent = () => lots.reduce((n, lot) => n + lot.tokens, 0);
  const spend = (lot: Lot) => {
    lot.tokens -= 1;
    if (lot.tokens > 0) return;
    lots.splice(lots.indexOf(lot), 1);
    want = Math.max(want, 2 * lot.granted);
  };

  /** One lease, added to the lots; the answer's delay is remembered as the next lease's lead. */
  const lease = Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis;
    const tokens = Math.min(want, terms.maxTokens);
    const remaining = remainingHint;
    const grant = yield* source.lease(connectionId, { terms, tokens, now, notBefore: now + leadMs, remaining });
    // Delivered (unless a tighter one came meanwhile, which the next lease carries).
    if (remainingHint === remaining) remainingHint = undefined;
    const answered = yield* Clock.currentTimeMillis;
    leadMs = Math.min(maxLeadMs, 0.7 * leadMs + 0.3 * (answered - now));
    blockedUntil = Math.max(blockedUntil, grant.blockedUntil);
    const lot = { granted: tokens, tokens, startsAt: grant.startsAt, endsAt: grant.startsAt + terms.windowMs };
    lots.push(lot);
    lots.sort((a, b) => a.startsAt - b.startsAt);
  });

  /** A lease in the foreground: retried with backoff while the source fails (requests wait). */
  const leaseNow = Effect.gen(function* () {
    for (let attempt = 0; ; attempt++) {
      const exit = yield* Effect.exit(lease);
      if (exit._tag === "Success") return;
      if (Cause.isInterruptedOnly(exit.cause)) return yield* Effect.interrupt;
      yield* Effect.logWarning("rate budget: lease failed; requests wait and it is asked again", exit.cause).pipe(
        Effect.annotateLogs({ connectionId }),
      );
      yield* Effect.sleep(Duration.millis(retryDelayMs(attempt)));
    }
  });

  /** Starts the next lease in the background, unless one is under way. A failure leaves it to the foreground. */
  const renewEarly = Effect.gen(function* () {
    if (renewal !== undefined && Option.isNone(yield* renewal.poll)) return;
    renewal = yield* Effect.forkDaemon(Effect.catchAllCause(lease, () => Effect.void));
  });

  const acquire: Effect.Effect<void> = lock.withPermits(1)(
    Effect.gen(function* () {
      while (true) {
        const now = yield* Clock.currentTimeMillis;
        if (blockedUntil > now) {
          yield* Effect.sleep(Duration.millis(blockedUntil - now));
          continue;
        }
        dropExpired(now);
        // Lots are in start order; one the vendor's `remaining` emptied waits for its expiry.
        const lot = lots.find((l) => l.tokens > 0);
        if (lot !== undefined && lot.startsAt <= now) {
          spend(lot);
          if (unspent() <= Math.min(want, terms.maxTokens) / 2) yield* renewEarly;
          return;
        }
        if (lot !== undefined) {
          // Leased, starting later: the shared bucket is busy and this process's turn comes then.
          yield* Effect.sleep(Duration.millis(lot.startsAt - now));
          continue;
        }
        if (renewal !== undefined) {
          yield* Fiber.join(renewal);
          renewal = undefined;
          if (unspent() > 0) continue;
        }
        yield* leaseNow;
      }
    }),
  );

  const observe = (hint: RateLimitHint | undefined, retryAfterMs?: number) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis;
      if (finite(hint?.limit) && finite(hint?.windowMs) && hint.limit > 0 && hint.windowMs > 0) {
        // Every process reads the same headers, so each learns the rate itself; nothing to share.
        terms = leaseTerms((hint.limit / hint.windowMs) * 1000, burst);
      }
      let until = 0;
      if (finite(hint?.remaining)) {
        // The vendor counts requests from every client of the account: trust its lower number.
        const remaining = Math.max(0, hint.remaining);
        let excess = unspent() - remaining;
        for (let i = lots.length - 1; i >= 0 && excess > 0; i--) {
          const dropped = Math.min(lots[i]!.tokens, excess);
          lots[i]!.tokens -= dropped;
          excess -= dropped;
        }
        // A remaining count at or above the bucket's depth cannot tighten it: not worth sending.
        // Of several, the one that leaves the least budget now is kept.
        if (remaining * terms.costMs < terms.depthMs) {
          const spentTo = (hint: { count: number; at: number }) => hint.at - hint.count * terms.costMs;
          const seen = { count: remaining, at: now };
          if (remainingHint === undefined || spentTo(seen) > spentTo(remainingHint)) remainingHint = seen;
        }
        if (remaining <= 0 && finite(hint.resetAfterMs)) until = now + hint.resetAfterMs;
      }
      if (finite(retryAfterMs)) {
        lots.length = 0;
        until = Math.max(until, now + retryAfterMs);
      }
      if (until > blockedUntil) {
        blockedUntil = until;
        // Shared at once (blocks are rare): the other processes learn it with their next lease.
        yield* Effect.forkDaemon(
          source
            .block(connectionId, until, now)
            .pipe(
              Effect.catchAllCause((cause) =>
                Effect.logWarning("rate budget: sharing a block failed", cause).pipe(
                  Effect.annotateLogs({ connectionId }),
                ),
              ),
            ),
        );
      }
    });

  const available = Effect.map(Clock.currentTimeMillis, (now) => {
    dropExpired(now);
    return lots.filter((lot) => lot.startsAt <= now).reduce((n, lot) => n + lot.tokens, 0);
  });

  return { acquire, observe, available };
};
