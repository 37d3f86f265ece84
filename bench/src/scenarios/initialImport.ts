import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hubSpotFakeToken } from "@tandem/testkit";
import type { ThroughputFigures } from "../baselines/ImportBaselines.ts";
import { runMeasured } from "../measure/MeasuredTasks.ts";
import {
  atLeast,
  atMost,
  bytesToMb,
  type Figures,
  measureTandem,
  ratio,
  type Scenario,
  type ScenarioContext,
  type ScenarioResult,
} from "../Scenario.ts";
import { startHubSpotSource } from "../source/HubSpotSource.ts";
import type { TandemSyncFigures, TandemSyncInput } from "../tandem/TandemHooks.ts";

/** One Tandem import, timed by the harness in a fresh process: records/s and that process's peak RSS. */
const tandemImport = async (input: TandemSyncInput): Promise<Figures> => {
  const { value, peakRssBytes } = await runMeasured<TandemSyncFigures & { seconds: number }>("tandemImport", input);
  const { seconds } = value;
  return {
    records: value.records,
    seconds,
    recordsPerSecond: value.records / seconds,
    peakRssMb: bytesToMb(peakRssBytes),
  };
};

const throughputFigures = (value: ThroughputFigures, peakRssBytes: number): Figures => ({
  records: value.records,
  seconds: value.seconds,
  recordsPerSecond: value.recordsPerSecond,
  peakRssMb: bytesToMb(peakRssBytes),
});

const run = async (ctx: ScenarioContext): Promise<ScenarioResult> => {
  const { options } = ctx;
  const notes: Array<string> = [];
  ctx.log(`seeding ${options.records} contacts at the source`);
  const source = await startHubSpotSource({ records: options.records, maxPageSize: options.largePageSize });
  try {
    const target = { sourceUrl: source.url, accessToken: hubSpotFakeToken };
    const databaseUrl = await ctx.database("baselines");

    const references: Record<string, Figures> = {};
    // One page size given twice (`--page-size 10000`, e.g. at 1M records, where 10,000 pages of
    // 100 take long) is measured once.
    const pageSizes = [...new Set([options.pageSize, options.largePageSize])];
    for (const pageSize of pageSizes) {
      ctx.log(`reading the source with pages of ${pageSize}`);
      const read = await runMeasured<ThroughputFigures & { largestPage: number }>("sourceRead", {
        ...target,
        pageSize,
      });
      references[`source_read_page_${pageSize}`] = {
        ...throughputFigures(read.value, read.peakRssBytes),
        largestPage: read.value.largestPage,
      };
      if (read.value.largestPage < Math.min(pageSize, options.records)) {
        notes.push(`the source served pages of ${read.value.largestPage} when ${pageSize} were asked for`);
      }
    }

    // The baselines read with large pages: what limits them is their write path, not the fake's paging.
    const baselineTarget = {
      ...target,
      databaseUrl,
      pageSize: options.largePageSize,
      naiveLimit: options.naiveRecords,
    };
    ctx.log("baseline naive: per-record find + insert/update");
    const naive = await runMeasured<ThroughputFigures>("naiveImport", {
      ...baselineTarget,
      table: "bench_naive_contacts",
      createTable: true,
    });
    ctx.log("baseline copy: COPY of the same rows");
    const copy = await runMeasured<ThroughputFigures>("copyImport", {
      ...baselineTarget,
      table: "bench_copy_contacts",
    });
    ctx.log("reference: COPY of the same rows into Tandem's records table");
    const copyRecords = await runMeasured<ThroughputFigures>("copyIntoRecordsTable", {
      ...baselineTarget,
      databaseUrl: await ctx.database("copy_records_table"),
    });
    references.copy_into_records_table = throughputFigures(copyRecords.value, copyRecords.peakRssBytes);
    ctx.log("reference: the source read and streamed into one COPY into Tandem's records table");
    const readAndCopy = await runMeasured<ThroughputFigures>("readAndCopyIntoRecordsTable", {
      ...baselineTarget,
      databaseUrl: await ctx.database("read_copy_records_table"),
    });
    references.read_and_copy_into_records_table = throughputFigures(readAndCopy.value, readAndCopy.peakRssBytes);
    const baselines: Record<string, Figures> = {
      naive: throughputFigures(naive.value, naive.peakRssBytes),
      copy: throughputFigures(copy.value, copy.peakRssBytes),
    };
    if (options.pglite) {
      ctx.log("baseline naive on PGlite");
      const naivePglite = await runMeasured<ThroughputFigures>("naivePgliteImport", baselineTarget);
      baselines.naive_pglite = throughputFigures(naivePglite.value, naivePglite.peakRssBytes);
    }

    const tandem: Record<string, Figures> = {};
    let tandemUnavailable: string | undefined;
    const variants: Array<{ name: string; pageSize: number; pglite: boolean }> = [
      ...pageSizes.map((pageSize) => ({ name: `postgres_page_${pageSize}`, pageSize, pglite: false })),
      ...(options.pglite
        ? [{ name: `pglite_page_${options.largePageSize}`, pageSize: options.largePageSize, pglite: true }]
        : []),
    ];
    const missingVariants: Array<string> = [];
    for (const variant of variants) {
      ctx.log(`tandem import (${variant.name})`);
      const dataDir = variant.pglite ? await mkdtemp(join(tmpdir(), "tandem-bench-pglite-")) : undefined;
      try {
        const database =
          dataDir !== undefined
            ? ({ kind: "pglite", dataDir } as const)
            : ({ kind: "postgres", url: await ctx.database(`tandem_${variant.name}`) } as const);
        const outcome = await measureTandem(() =>
          tandemImport({ ...target, database, pageSize: variant.pageSize, connectionName: `bench-${variant.name}` }),
        );
        if (outcome.ok) tandem[variant.name] = outcome.value;
        else {
          tandemUnavailable = outcome.reason;
          missingVariants.push(`tandem ${variant.name}: ${outcome.reason}`);
        }
      } finally {
        if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
      }
    }

    // Some variants measured and some not: say which are missing (all missing: tandem is null).
    if (Object.keys(tandem).length > 0) notes.push(...missingVariants);
    const large = tandem[`postgres_page_${options.largePageSize}`];
    const small = tandem[`postgres_page_${options.pageSize}`];
    // The PGlite variant holds the database itself in the process (PGlite's WASM heap, its buffer
    // cache included): its RSS is reported, and the target is read on the PostgreSQL variants.
    const postgresVariants = Object.entries(tandem).filter(([name]) => name.startsWith("postgres_"));
    const peakRss = Math.max(...postgresVariants.map(([, f]) => f.peakRssMb ?? 0));
    const tandemCopy = ratio(large?.recordsPerSecond, baselines.copy!.recordsPerSecond);
    const tandemNaive = ratio(large?.recordsPerSecond, baselines.naive!.recordsPerSecond);
    return {
      scenario: "initial_import",
      parameters: {
        records: options.records,
        naiveRecords: Math.min(options.naiveRecords ?? options.records, options.records),
        pageSize: options.pageSize,
        largePageSize: options.largePageSize,
      },
      headline: { figure: "recordsPerSecond", unit: "records/s", higherIsBetter: true },
      tandem: Object.keys(tandem).length > 0 ? tandem : null,
      ...(tandemUnavailable !== undefined && Object.keys(tandem).length === 0 ? { tandemUnavailable } : {}),
      baselines,
      references,
      ratios: {
        "tandem/copy": tandemCopy,
        "tandem/naive": tandemNaive,
        [`tandem page ${options.pageSize}/copy`]: ratio(small?.recordsPerSecond, baselines.copy!.recordsPerSecond),
        "tandem pglite/naive_pglite": ratio(
          tandem[`pglite_page_${options.largePageSize}`]?.recordsPerSecond,
          baselines.naive_pglite?.recordsPerSecond,
        ),
        "copy/naive": ratio(baselines.copy!.recordsPerSecond, baselines.naive!.recordsPerSecond),
        "tandem/copy_into_records_table": ratio(
          large?.recordsPerSecond,
          references.copy_into_records_table.recordsPerSecond,
        ),
        "copy_into_records_table/copy": ratio(
          references.copy_into_records_table.recordsPerSecond,
          baselines.copy!.recordsPerSecond,
        ),
        "tandem/read_and_copy_into_records_table": ratio(
          large?.recordsPerSecond,
          references.read_and_copy_into_records_table.recordsPerSecond,
        ),
        "read_and_copy_into_records_table/copy": ratio(
          references.read_and_copy_into_records_table.recordsPerSecond,
          baselines.copy!.recordsPerSecond,
        ),
      },
      targets: [
        atLeast("tandem ≥ 0.5 × copy (large pages)", tandemCopy, 0.5),
        atLeast("tandem ≥ 20 × naive (large pages)", tandemNaive, 20),
        atMost("tandem peak RSS ≤ 300 MB (PostgreSQL)", postgresVariants.length > 0 ? peakRss : null, 300),
      ],
      notes: [
        ...notes,
        "naive and copy read the source with large pages; copy is timed from rows already read and encoded",
        "copy_into_records_table: the same COPY into Tandem's records table, the floor of any write into it",
        "read_and_copy_into_records_table: the source read with large pages and streamed into one COPY into Tandem's records table, timed from the first request: the floor of any import of this source into that table (no decoding, no upsert)",
        ...(options.naiveRecords !== undefined && options.naiveRecords < options.records
          ? [`the naive baselines synced only the first ${options.naiveRecords} records (--naive-records)`]
          : []),
        "compare peak RSS at 1M with a 100k run (target ≤ 1.3×): run --records 100000 and --records 1000000",
      ],
    };
  } finally {
    await source.close();
  }
};

export const initialImport: Scenario = {
  name: "initial_import",
  description: "full import of every contact: Tandem vs naive per-record SyncJob vs COPY",
  run,
};
