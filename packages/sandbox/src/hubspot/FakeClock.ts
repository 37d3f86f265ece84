/** The time source of a fake: record timestamps, rate-limit windows and token expiry all read it. */
export interface FakeClock {
  /** Milliseconds since the epoch. */
  readonly now: () => number;
}

/** A clock that moves only when told to, so tests control timestamps and rate-limit windows. */
export interface ManualClock extends FakeClock {
  readonly advance: (ms: number) => void;
  readonly set: (epochMs: number) => void;
}

/** The wall clock, for the loopback demo and benchmarks. */
export const systemClock: FakeClock = { now: () => Date.now() };

/**
 * A manual clock starting at `startMs` (default 2026-01-01T00:00:00Z).
 *
 * @example
 * const clock = createManualClock();
 * const fake = createHubSpotFake({ clock });
 * clock.advance(10_000); // a new rate-limit window
 */
export const createManualClock = (startMs: number = Date.UTC(2026, 0, 1)): ManualClock => {
  let current = startMs;
  return {
    now: () => current,
    advance: (ms) => {
      current += ms;
    },
    set: (epochMs) => {
      current = epochMs;
    },
  };
};

/**
 * A deterministic pseudo-random source (mulberry32), so fault injection and
 * webhook reordering replay identically for a given seed.
 */
export const seededRandom = (seed: number): (() => number) => {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};
