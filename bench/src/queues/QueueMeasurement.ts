import { timed, wallClockMs } from "../measure/Clock.ts";
import { type LatencySummary, summarizeLatencies } from "../measure/Percentiles.ts";
import type { NoopJobPayload, QueueSubject } from "./QueueSubject.ts";

export interface QueueRunOptions {
  /** Jobs in the backlog drained for throughput. */
  readonly jobs: number;
  readonly workers: number;
  /** Jobs enqueued one at a time onto idle workers for claim latency. */
  readonly latencyJobs: number;
  /** Pace of those single enqueues, per second: well below capacity, so latency is not queueing. */
  readonly latencyRatePerSecond: number;
}

export interface QueueFigures {
  readonly jobs: number;
  readonly workers: number;
  readonly enqueueSeconds: number;
  readonly drainSeconds: number;
  readonly jobsPerSecond: number;
  /** Time from a job being handed to the queue until its handler starts, on idle workers. */
  readonly claimLatencyMs: LatencySummary;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Measures a queue the same way for every subject:
 * 1. throughput: `jobs` no-op jobs inserted in bulk first, then `workers` workers started; the
 *    clock runs from starting the workers to the last handler call;
 * 2. claim latency: with the workers idle, jobs enqueued one at a time at a steady pace, each
 *    carrying the wall-clock time just before its enqueue call; the handler notes how long ago
 *    that was. This includes the enqueue round trip (the job is not available before it commits).
 */
export const measureQueue = async (subject: QueueSubject, options: QueueRunOptions): Promise<QueueFigures> => {
  await subject.setup();
  try {
    const { seconds: enqueueSeconds } = await timed(() => subject.enqueueBacklog(options.jobs));
    let handled = 0;
    let latencyPhase = false;
    const latencies: Array<number> = [];
    let allDrained: () => void = () => {};
    const drained = new Promise<void>((resolve) => {
      allDrained = resolve;
    });
    let latencyDone: () => void = () => {};
    const latencyFinished = new Promise<void>((resolve) => {
      latencyDone = resolve;
    });
    const onJob = (payload: NoopJobPayload) => {
      if (!latencyPhase) {
        handled++;
        if (handled === options.jobs) allDrained();
        return;
      }
      latencies.push(wallClockMs() - payload.enqueuedAtMs);
      if (latencies.length === options.latencyJobs) latencyDone();
    };
    const { seconds: drainSeconds } = await timed(async () => {
      await subject.startWorkers(options.workers, onJob);
      await drained;
    });
    // Let the workers settle into idle waiting before measuring how fast they wake up.
    await sleep(1_000);
    latencyPhase = true;
    const gapMs = 1000 / options.latencyRatePerSecond;
    for (let i = 0; i < options.latencyJobs; i++) {
      const next = performance.now() + gapMs;
      await subject.enqueueOne({ enqueuedAtMs: wallClockMs() });
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
    }
    await Promise.race([latencyFinished, sleep(30_000)]);
    return {
      jobs: options.jobs,
      workers: options.workers,
      enqueueSeconds,
      drainSeconds,
      jobsPerSecond: options.jobs / drainSeconds,
      claimLatencyMs: summarizeLatencies(latencies),
    };
  } finally {
    await subject.stop();
  }
};
