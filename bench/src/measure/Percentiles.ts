/** Latency figures in milliseconds, from a sample of observations. */
export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/**
 * Nearest-rank percentiles (no interpolation): with few samples the p99 is an observed value,
 * not an invented one between two observations.
 */
export const summarizeLatencies = (samplesMs: ReadonlyArray<number>): LatencySummary => {
  if (samplesMs.length === 0) return { count: 0, p50: Number.NaN, p99: Number.NaN, max: Number.NaN };
  const sorted = Float64Array.from(samplesMs).sort();
  const rank = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
  return { count: sorted.length, p50: rank(0.5), p99: rank(0.99), max: sorted[sorted.length - 1]! };
};
