import { runMeasured } from "../measure/MeasuredTasks.ts";
import type { QueueFigures } from "../queues/QueueMeasurement.ts";
import {
  atLeast,
  bytesToMb,
  type Figures,
  measureTandem,
  ratio,
  type Scenario,
  type ScenarioContext,
  type ScenarioResult,
} from "../Scenario.ts";

const figuresOf = (value: QueueFigures, peakRssBytes: number): Figures => ({
  jobsPerSecond: value.jobsPerSecond,
  claimP50Ms: value.claimLatencyMs.p50,
  claimP99Ms: value.claimLatencyMs.p99,
  claimSamples: value.claimLatencyMs.count,
  jobs: value.jobs,
  workers: value.workers,
  enqueueSeconds: value.enqueueSeconds,
  drainSeconds: value.drainSeconds,
  peakRssMb: bytesToMb(peakRssBytes),
});

/**
 * queue: the same number of no-op jobs drained by the same number of workers, for Tandem's
 * job queue, graphile-worker and pg-boss, each in its own process and its own fresh database.
 */
const run = async (ctx: ScenarioContext): Promise<ScenarioResult> => {
  const { options } = ctx;
  const input = (databaseUrl: string) => ({
    databaseUrl,
    jobs: options.jobs,
    workers: options.workers,
    latencyJobs: options.latencyJobs,
    latencyRatePerSecond: 50,
    batchSize: options.queueBatchSize,
  });
  const baselines: Record<string, Figures> = {};
  for (const [name, task] of [
    ["graphile-worker", "graphileWorkerQueue"],
    ["graphile-worker batched", "graphileWorkerBatchedQueue"],
    ["pg-boss", "pgBossQueue"],
  ] as const) {
    ctx.log(`${name}: ${options.jobs} jobs, ${options.workers} workers`);
    const { value, peakRssBytes } = await runMeasured<QueueFigures>(task, input(await ctx.database(name)));
    baselines[name] = figuresOf(value, peakRssBytes);
  }
  ctx.log(`tandem: ${options.jobs} jobs, ${options.workers} workers`);
  const tandem = await measureTandem(async () => {
    const { value, peakRssBytes } = await runMeasured<QueueFigures>("tandemQueue", input(await ctx.database("tandem")));
    return figuresOf(value, peakRssBytes);
  });
  const jobsPerSecond = tandem.ok ? tandem.value.jobsPerSecond : undefined;
  const vsGraphile = ratio(jobsPerSecond, baselines["graphile-worker"]?.jobsPerSecond);
  const vsGraphileBatched = ratio(jobsPerSecond, baselines["graphile-worker batched"]?.jobsPerSecond);
  const vsPgBoss = ratio(jobsPerSecond, baselines["pg-boss"]?.jobsPerSecond);
  return {
    scenario: "queue",
    parameters: {
      jobs: options.jobs,
      workers: options.workers,
      latencyJobs: options.latencyJobs,
      latencyRatePerSecond: 50,
      batchSize: options.queueBatchSize,
    },
    headline: { figure: "jobsPerSecond", unit: "jobs/s", higherIsBetter: true },
    tandem: tandem.ok ? { queue: tandem.value } : null,
    ...(tandem.ok ? {} : { tandemUnavailable: tandem.reason }),
    baselines,
    references: {},
    ratios: {
      "tandem/graphile-worker (jobs/s)": vsGraphile,
      "tandem/graphile-worker batched (jobs/s)": vsGraphileBatched,
      "tandem/pg-boss (jobs/s)": vsPgBoss,
      "tandem/graphile-worker (claim p99)": ratio(
        tandem.ok ? tandem.value.claimP99Ms : null,
        baselines["graphile-worker"]?.claimP99Ms,
      ),
      "tandem/pg-boss (claim p99)": ratio(tandem.ok ? tandem.value.claimP99Ms : null, baselines["pg-boss"]?.claimP99Ms),
    },
    targets: [
      atLeast("tandem ≥ 1.0 × graphile-worker (jobs/s)", vsGraphile, 1),
      atLeast("tandem ≥ 1.0 × graphile-worker batched (jobs/s)", vsGraphileBatched, 1),
      atLeast("tandem ≥ 1.0 × pg-boss (jobs/s)", vsPgBoss, 1),
    ],
    notes: [
      "throughput: the backlog is inserted first, the clock runs from starting the workers to the last handler call",
      "claim latency: single jobs enqueued at 50/s onto idle workers; time from just before the enqueue call to handler start",
      "graphile-worker: its defaults; graphile-worker batched: localQueue.size = batch, completeJobBatchDelay 0 (its performance guide)",
      `pg-boss: batchSize ${options.queueBatchSize}, burstWhenBatchFull, LISTEN/NOTIFY on (with batchSize 1 a worker waits out its polling interval, ≥ 0.5 s, after every job)`,
    ],
  };
};

export const queue: Scenario = {
  name: "queue",
  description: "no-op jobs, same workers: Tandem's job queue vs graphile-worker vs pg-boss",
  run,
};
