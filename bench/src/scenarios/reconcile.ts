import { hubSpotFakeToken } from "@tandem/testkit";
import { withClient } from "../BenchDatabase.ts";
import { softDeletedIds } from "../baselines/ContactTable.ts";
import { runMeasured } from "../measure/MeasuredTasks.ts";
import {
  atMost,
  bytesToMb,
  type Figures,
  measureTandem,
  type Scenario,
  type ScenarioContext,
  type ScenarioResult,
} from "../Scenario.ts";
import { startHubSpotSource } from "../source/HubSpotSource.ts";
import type { TandemReconcileFigures, TandemSyncInput } from "../tandem/TandemHooks.ts";

const deletedShare = 0.01;

/** 1 when `found` is exactly the `expected` ids, else 0: a fast wrong reconciliation is no result. */
const exactly = (expected: ReadonlySet<string>, found: ReadonlyArray<string>): number =>
  found.length === expected.size && new Set(found).size === found.length && found.every((id) => expected.has(id))
    ? 1
    : 0;

/**
 * reconcile: 1% of the contacts deleted (archived) at the source. Tandem's reconciliation
 * against an in-memory naive diff and against COPY of the ids + one anti-join UPDATE.
 * Every subject must soft-delete exactly the archived ids.
 */
const run = async (ctx: ScenarioContext): Promise<ScenarioResult> => {
  const { options } = ctx;
  ctx.log(`seeding ${options.records} contacts at the source`);
  const source = await startHubSpotSource({ records: options.records, maxPageSize: options.largePageSize });
  try {
    const target = { sourceUrl: source.url, accessToken: hubSpotFakeToken };
    const databaseUrl = await ctx.database("baselines");
    const baselineTarget = { ...target, databaseUrl, pageSize: options.largePageSize };
    ctx.log("loading the baselines' tables (COPY, not timed)");
    await runMeasured("copyImport", { ...baselineTarget, table: "bench_naive_contacts" });
    await runMeasured("copyImport", { ...baselineTarget, table: "bench_copy_contacts" });
    const tandemInput: TandemSyncInput = {
      ...target,
      database: { kind: "postgres", url: await ctx.database("tandem") },
      pageSize: options.largePageSize,
      connectionName: "bench-reconcile",
    };
    ctx.log("tandem initial import (not timed)");
    const initial = await measureTandem(() => runMeasured("tandemImport", tandemInput));

    const archived = new Set(await source.archive(deletedShare));
    ctx.log(`archived ${archived.size} contacts at the source`);

    let tandem: Record<string, Figures> | null = null;
    let tandemUnavailable = initial.ok ? undefined : initial.reason;
    if (initial.ok) {
      ctx.log("tandem reconcile");
      const outcome = await measureTandem(() =>
        runMeasured<TandemReconcileFigures & { seconds: number }>("tandemReconcile", tandemInput),
      );
      if (outcome.ok) {
        const { value, peakRssBytes } = outcome.value;
        tandem = {
          reconcile: {
            seconds: value.seconds,
            softDeleted: value.softDeletedExternalIds.length,
            exact: exactly(archived, value.softDeletedExternalIds),
            peakRssMb: bytesToMb(peakRssBytes),
          },
        };
      } else tandemUnavailable = outcome.reason;
    }

    const baselines: Record<string, Figures> = {};
    for (const [name, task, table] of [
      ["naive", "naiveReconcile", "bench_naive_contacts"],
      ["copy_anti_join", "copyAntiJoinReconcile", "bench_copy_contacts"],
    ] as const) {
      ctx.log(`baseline ${name}`);
      const { value, peakRssBytes } = await runMeasured<{ seconds: number; softDeleted: number }>(task, {
        ...baselineTarget,
        table,
      });
      const deleted = await withClient(databaseUrl, (client) => softDeletedIds(client, table));
      baselines[name] = {
        seconds: value.seconds,
        softDeleted: value.softDeleted,
        exact: exactly(archived, deleted),
        peakRssMb: bytesToMb(peakRssBytes),
      };
    }
    const reconcile = tandem?.reconcile;
    return {
      scenario: "reconcile",
      parameters: { records: options.records, deleted: archived.size, pageSize: options.largePageSize },
      headline: { figure: "seconds", unit: "s", higherIsBetter: false },
      tandem,
      ...(tandem === null && tandemUnavailable !== undefined ? { tandemUnavailable } : {}),
      baselines,
      references: {},
      ratios: {
        "tandem/copy_anti_join (time)":
          reconcile === undefined ? null : reconcile.seconds! / baselines.copy_anti_join!.seconds!,
        "tandem/naive (time)": reconcile === undefined ? null : reconcile.seconds! / baselines.naive!.seconds!,
      },
      targets: [
        atMost("tandem reconcile ≤ 15 s (at 1M ids)", reconcile?.seconds ?? null, 15),
        atMost("tandem peak RSS ≤ 300 MB", reconcile?.peakRssMb ?? null, 300),
        {
          target: "exactly the deleted ids soft-deleted",
          value: reconcile?.exact ?? null,
          met: reconcile === undefined ? null : reconcile.exact === 1,
        },
      ],
      notes: [
        `${archived.size} contacts (${deletedShare * 100}%) archived at the source; exact=1 means exactly those were soft-deleted`,
      ],
    };
  } finally {
    await source.close();
  }
};

export const reconcile: Scenario = {
  name: "reconcile",
  description: "1% deleted at the source: Tandem reconciliation vs naive diff vs COPY + anti-join",
  run,
};
