import { describe, expect, it } from "@effect/vitest";
import { Effect, Fiber, TestClock } from "effect";
import { leaseTerms, makeTokenBucket, RateBudget } from "../src/runtime.ts";

/** Lets forked fibers run up to their next suspension. */
const settle = Effect.yieldNow().pipe(Effect.repeatN(20));

const isDone = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) => Effect.map(fiber.poll, (o) => o._tag === "Some");

describe("token bucket", () => {
  it.effect("lets a burst through, then one request per refill interval", () =>
    Effect.gen(function* () {
      const bucket = makeTokenBucket({ requestsPerSecond: 2, burst: 2 });
      yield* bucket.acquire;
      yield* bucket.acquire;
      const third = yield* Effect.fork(bucket.acquire);
      yield* settle;
      expect(yield* isDone(third)).toBe(false);
      yield* TestClock.adjust(499);
      yield* settle;
      expect(yield* isDone(third)).toBe(false);
      yield* TestClock.adjust(1);
      yield* Fiber.join(third);
    }),
  );

  it.effect("waits for the vendor's reset when its headers say nothing remains", () =>
    Effect.gen(function* () {
      const bucket = makeTokenBucket({ requestsPerSecond: 100 });
      yield* bucket.observe({ remaining: 0, resetAfterMs: 5_000 });
      const next = yield* Effect.fork(bucket.acquire);
      yield* TestClock.adjust(4_999);
      yield* settle;
      expect(yield* isDone(next)).toBe(false);
      yield* TestClock.adjust(1);
      yield* Fiber.join(next);
    }),
  );

  it.effect("trusts a lower remaining count than its own and learns the rate from limit/window", () =>
    Effect.gen(function* () {
      const bucket = makeTokenBucket({ requestsPerSecond: 100 });
      expect(yield* bucket.available).toBe(100);
      yield* bucket.observe({ remaining: 3 });
      expect(yield* bucket.available).toBe(3);
      // 10 requests per 10 s: one token per second from now on.
      yield* bucket.observe({ remaining: 0, limit: 10, windowMs: 10_000 });
      yield* TestClock.adjust(1_000);
      expect(yield* bucket.available).toBeCloseTo(1);
    }),
  );

  it.effect("ignores hints that are not numbers (a missing header)", () =>
    Effect.gen(function* () {
      const bucket = makeTokenBucket({ requestsPerSecond: 5 });
      yield* bucket.observe({ remaining: Number.NaN, resetAfterMs: Number.NaN });
      expect(yield* bucket.available).toBe(5);
    }),
  );

  it.effect("a 429 Retry-After empties the bucket until it passes", () =>
    Effect.gen(function* () {
      const bucket = makeTokenBucket({ requestsPerSecond: 100 });
      yield* bucket.observe(undefined, 2_000);
      const next = yield* Effect.fork(bucket.acquire);
      yield* TestClock.adjust(1_999);
      yield* settle;
      expect(yield* isDone(next)).toBe(false);
      yield* TestClock.adjust(1);
      yield* Fiber.join(next);
    }),
  );
});

describe("RateBudget", () => {
  it.effect("shares one bucket among every job of a connection, and keeps connections apart", () =>
    Effect.gen(function* () {
      const budget = yield* RateBudget;
      const policy = { requestsPerSecond: 1, burst: 1 };
      const a1 = yield* budget.forConnection("conn-a", policy);
      const a2 = yield* budget.forConnection("conn-a", policy);
      const b = yield* budget.forConnection("conn-b", policy);
      expect(a1).toBe(a2);
      yield* a1.acquire;
      // conn-a's only token is spent by the first job; the second job of conn-a waits, conn-b does not.
      const waiting = yield* Effect.fork(a2.acquire);
      yield* b.acquire;
      yield* settle;
      expect(yield* isDone(waiting)).toBe(false);
      yield* TestClock.adjust(1_000);
      yield* Fiber.join(waiting);
      const unlimited = yield* budget.forConnection("conn-c", undefined);
      for (let i = 0; i < 1_000; i++) yield* unlimited.acquire;
    }).pipe(Effect.provide(RateBudget.layer)),
  );
});

describe("lease terms of a shared budget", () => {
  it("leave room for a window's spending: depth + rate·window is the burst, so the cluster keeps burst + rate·T", () => {
    for (const [rate, burst] of [
      [9, 10],
      [10, 10],
      [20, 20],
      [100, 100],
      [0.5, 2],
    ] as const) {
      const terms = leaseTerms(rate, burst);
      const depth = terms.depthMs / terms.costMs;
      expect(depth + (rate / 1000) * terms.windowMs).toBeCloseTo(burst);
      expect(terms.maxTokens).toBe(Math.floor(depth));
      expect(terms.maxTokens).toBeGreaterThanOrEqual(1);
    }
    // HubSpot's default: leases of up to 5 tokens, spendable for 556 ms.
    expect(leaseTerms(9, 10)).toMatchObject({ maxTokens: 5 });
    expect(leaseTerms(9, 10).windowMs).toBeCloseTo(555.6, 0);
  });

  it("keep a window of 100 ms to 2 s and a depth of at least one token", () => {
    expect(leaseTerms(0.1, 1)).toMatchObject({ windowMs: 2_000, maxTokens: 1 });
    const tiny = leaseTerms(1_000, 10);
    expect(tiny.windowMs).toBe(100);
    expect(tiny.depthMs / tiny.costMs).toBe(1);
  });
});
