import { Clock, Context, Duration, Effect, Layer } from "effect";
import type { RateLimitHint, RateLimitPolicy } from "./Connector.ts";
import { makeLeasedBucket, type RateBudgetSource } from "./LeasedBucket.ts";

/**
 * One connection's token bucket. Time comes from the Effect `Clock`, so tests
 * drive it with `TestClock` instead of sleeping.
 */
export interface TokenBucket {
  /** Waits until a request may go out, then takes one token. */
  readonly acquire: Effect.Effect<void>;
  /** Learns from a response: the connector's header hint, and 429 Retry-After. */
  readonly observe: (hint: RateLimitHint | undefined, retryAfterMs?: number) => Effect.Effect<void>;
  /** Current tokens (after refill), for tests and metrics. */
  readonly available: Effect.Effect<number>;
}

const finite = (n: number | undefined): n is number => n !== undefined && Number.isFinite(n);

/** A token bucket refilled at `requestsPerSecond`, holding at most `burst` tokens. */
export const makeTokenBucket = (policy: RateLimitPolicy): TokenBucket => {
  let rate = Math.max(policy.requestsPerSecond, 1e-6) / 1000; // tokens per ms
  const capacity = Math.max(1, policy.burst ?? policy.requestsPerSecond);
  let tokens = capacity;
  let last: number | undefined;
  let blockedUntil = 0;
  // Serializes takers so waiting requests go out in arrival order and never overdraw.
  const lock = Effect.unsafeMakeSemaphore(1);

  const refill = Effect.map(Clock.currentTimeMillis, (now) => {
    tokens = Math.min(capacity, tokens + (now - (last ?? now)) * rate);
    last = now;
    return now;
  });

  const acquire: Effect.Effect<void> = lock.withPermits(1)(
    Effect.gen(function* () {
      while (true) {
        const now = yield* refill;
        if (blockedUntil > now) {
          yield* Effect.sleep(Duration.millis(blockedUntil - now));
          continue;
        }
        if (tokens >= 1) {
          tokens -= 1;
          return;
        }
        yield* Effect.sleep(Duration.millis(Math.ceil((1 - tokens) / rate)));
      }
    }),
  );

  const observe = (hint: RateLimitHint | undefined, retryAfterMs?: number) =>
    Effect.gen(function* () {
      const now = yield* refill;
      if (finite(hint?.limit) && finite(hint?.windowMs) && hint.limit > 0 && hint.windowMs > 0) {
        rate = hint.limit / hint.windowMs;
      }
      if (finite(hint?.remaining)) {
        // The vendor counts requests from every client of this account; trust its
        // lower number over our own estimate.
        tokens = Math.min(tokens, Math.max(0, hint.remaining));
        if (hint.remaining <= 0 && finite(hint.resetAfterMs)) {
          blockedUntil = Math.max(blockedUntil, now + hint.resetAfterMs);
        }
      }
      if (finite(retryAfterMs)) {
        tokens = 0;
        blockedUntil = Math.max(blockedUntil, now + retryAfterMs);
      }
    });

  return { acquire, observe, available: Effect.map(refill, () => tokens) };
};

const unlimited: TokenBucket = {
  acquire: Effect.void,
  observe: () => Effect.void,
  available: Effect.succeed(Infinity),
};

/** The connections' budgets of one process: `forConnection` hands every job of a connection the same bucket. */
export interface RateBudgetService {
  /** The connection's bucket, created on first use with the connector's policy. */
  readonly forConnection: (connectionId: string, policy: RateLimitPolicy | undefined) => Effect.Effect<TokenBucket>;
}

/** One bucket per connection id, made by `makeBucket` on first use; a connection without a policy is unlimited. */
const bucketsBy = (makeBucket: (connectionId: string, policy: RateLimitPolicy) => TokenBucket): RateBudgetService => {
  const buckets = new Map<string, TokenBucket>();
  return {
    forConnection: (connectionId, policy) =>
      Effect.sync(() => {
        if (policy === undefined) return unlimited;
        let bucket = buckets.get(connectionId);
        if (bucket === undefined) {
          bucket = makeBucket(connectionId, policy);
          buckets.set(connectionId, bucket);
        }
        return bucket;
      }),
  };
};

/**
 * Rate budgets keyed by connection id, shared by every job of the connection in this process.
 * `layer` keeps each budget in this process's memory (one process: the embedded database);
 * `shared` makes it one budget per connection across every process using `source`, each
 * process leasing shares of it (see `makeLeasedBucket`; core's source is a PostgreSQL row).
 */
export class RateBudget extends Context.Tag("@tandem/core/RateBudget")<RateBudget, RateBudgetService>() {
  /** Budgets in this process's memory: no other process shares them. */
  static readonly inProcess = (): RateBudgetService => bucketsBy((_, policy) => makeTokenBucket(policy));

  static readonly layer = Layer.sync(RateBudget, RateBudget.inProcess);

  /** Budgets shared through `source` by every process that uses it. */
  static readonly shared = (source: RateBudgetSource): RateBudgetService =>
    bucketsBy((connectionId, policy) => makeLeasedBucket(connectionId, policy, source));
}
