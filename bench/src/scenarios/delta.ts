import { hubSpotFakeToken } from "@tandem/testkit";
import type { ThroughputFigures } from "../baselines/ImportBaselines.ts";
import { type MeasuredProcess, runMeasured, startTandemProcess } from "../measure/MeasuredTasks.ts";
import {
  atMost,
  bytesToMb,
  type Figures,
  measureTandem,
  ratio,
  type Scenario,
  type ScenarioContext,
  type ScenarioResult,
  type TandemOutcome,
} from "../Scenario.ts";
import { startHubSpotSource } from "../source/HubSpotSource.ts";
import type { TandemSyncFigures, TandemSyncInput } from "../tandem/TandemHooks.ts";

const changedShare = 0.01;
/**
 * Records delta's naive re-sync covers unless --naive-records says otherwise: it is a side
 * comparison (the target is against Tandem's own full re-sync), and syncing all 50,000 one round
 * trip at a time took over two of the default run's ten minutes. Its time is scaled to all.
 */
const deltaNaiveRecords = 20_000;

const timedTandem = async (
  tandemProcess: MeasuredProcess,
  task: "tandemImport" | "tandemDelta",
  input: TandemSyncInput,
): Promise<Figures> => {
  const { value, peakRssBytes } = await tandemProcess.run<TandemSyncFigures & { seconds: number }>(task, input);
  return { seconds: value.seconds, records: value.records, peakRssMb: bytesToMb(peakRssBytes) };
};

/**
 * delta: 1% of the contacts change at the source after everything was synced. Tandem's delta
 * run against a full re-sync by Tandem over the same state (the target: ≤ 5% of its time), and
 * against the naive SyncJob, which has no delta and re-syncs everything.
 *
 * Tandem's initial import, delta and full re-sync run one after the other in one process, as a
 * server runs a connection's syncs: its pool, HTTP client and compiled code are those the import
 * left. The delta is the first after the import (the search endpoint's code has not run yet).
 * In a fresh process of its own, the same delta took 0.19-0.23 s instead, most of it start-up:
 * a new PostgreSQL backend's first upsert (33 ms against 10), the first search's cold paths.
 */
const run = async (ctx: ScenarioContext): Promise<ScenarioResult> => {
  const { options } = ctx;
  const naiveRecords = options.naiveRecords ?? deltaNaiveRecords;
  ctx.log(`seeding ${options.records} contacts at the source`);
  const source = await startHubSpotSource({ records: options.records, maxPageSize: options.largePageSize });
  try {
    const target = { sourceUrl: source.url, accessToken: hubSpotFakeToken };
    const databaseUrl = await ctx.database("baselines");
    const baselineTarget = {
      ...target,
      databaseUrl,
      pageSize: options.largePageSize,
      naiveLimit: naiveRecords,
      table: "bench_naive_contacts",
    };

    // State before the change: loaded the fast way (not timed), as a previous sync would have left it.
    ctx.log("loading the naive baseline's table (COPY, not timed)");
    await runMeasured("copyImport", baselineTarget);
    const tandemInput: TandemSyncInput = {
      ...target,
      database: { kind: "postgres", url: await ctx.database("tandem") },
      pageSize: options.pageSize,
      connectionName: "bench-delta",
    };
    const tandemProcess = await startTandemProcess();
    let changed: ReadonlyArray<string>;
    let initial: TandemOutcome<Figures>;
    let tandem: Record<string, Figures> | null = null;
    let tandemUnavailable: string | undefined;
    try {
      ctx.log("tandem initial import (not timed)");
      initial = await measureTandem(() => timedTandem(tandemProcess, "tandemImport", tandemInput));
      tandemUnavailable = initial.ok ? undefined : initial.reason;

      changed = await source.change(changedShare, "delta");
      ctx.log(`changed ${changed.length} contacts at the source`);

      if (initial.ok) {
        ctx.log("tandem delta");
        const delta = await measureTandem(() => timedTandem(tandemProcess, "tandemDelta", tandemInput));
        ctx.log("tandem full re-sync");
        const full = await measureTandem(() => timedTandem(tandemProcess, "tandemImport", tandemInput));
        if (delta.ok && full.ok) tandem = { delta: delta.value, full_resync: full.value };
        else tandemUnavailable = delta.ok ? (full.ok ? undefined : full.reason) : delta.reason;
      }
    } finally {
      await tandemProcess.close();
    }

    ctx.log("baseline naive re-sync (the SyncJob has no delta)");
    const naive = await runMeasured<ThroughputFigures>("naiveImport", { ...baselineTarget, createTable: false });
    // Capped at --naive-records: its time for every record is its measured rate over all of them.
    const naiveSecondsForAll = (naive.value.seconds * options.records) / Math.max(1, naive.value.records);
    const baselines = {
      naive_resync: {
        seconds: naiveSecondsForAll,
        measuredSeconds: naive.value.seconds,
        records: naive.value.records,
        peakRssMb: bytesToMb(naive.peakRssBytes),
      },
    };
    const deltaShare = ratio(tandem?.delta?.seconds, tandem?.full_resync?.seconds);
    return {
      scenario: "delta",
      parameters: {
        records: options.records,
        naiveRecords: Math.min(naiveRecords, options.records),
        changed: changed.length,
        pageSize: options.pageSize,
      },
      headline: { figure: "seconds", unit: "s", higherIsBetter: false },
      tandem,
      ...(tandem === null && tandemUnavailable !== undefined ? { tandemUnavailable } : {}),
      baselines,
      references: initial.ok ? { tandem_initial_import: initial.value } : {},
      ratios: {
        "tandem delta/tandem full re-sync": deltaShare,
        "tandem delta/naive re-sync": ratio(tandem?.delta?.seconds, baselines.naive_resync.seconds),
      },
      targets: [atMost("tandem delta ≤ 5% of a full re-sync", deltaShare, 0.05)],
      notes: [
        `${changed.length} contacts (${changedShare * 100}%) changed at the source between the syncs`,
        "Tandem's import, delta and full re-sync ran in that order in one process, as a server runs them; peakRssMb is that process's peak up to the end of each",
        ...(naiveRecords < options.records
          ? [
              `naive_resync synced the first ${naiveRecords} records (--naive-records, default ${deltaNaiveRecords} here); its seconds are for all ${options.records} at the rate measured (measuredSeconds is the time it took)`,
            ]
          : []),
      ],
    };
  } finally {
    await source.close();
  }
};

export const delta: Scenario = {
  name: "delta",
  description: "1% changed at the source: Tandem delta vs Tandem full re-sync vs naive re-sync",
  run,
};
