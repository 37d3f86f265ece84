/**
 * Wall-clock milliseconds with sub-millisecond resolution, comparable across the processes of one
 * run (the harness, the source, workers): `Date.now()` is too coarse for claim latencies of a few
 * milliseconds, and `performance.now()` alone has a per-process origin.
 */
export const wallClockMs = (): number => performance.timeOrigin + performance.now();

/** Seconds elapsed while `f` runs, with its result. */
export const timed = async <A>(f: () => Promise<A>): Promise<{ readonly value: A; readonly seconds: number }> => {
  const start = performance.now();
  const value = await f();
  return { value, seconds: (performance.now() - start) / 1000 };
};
