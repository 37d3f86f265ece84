import { hubSpotFakeToken } from "@tandem/testkit";
import { withClient } from "../BenchDatabase.ts";
import { softDeletedIds } from "../baselines/ContactTable.ts";
import { runMeasured } from "../measure/MeasuredTasks.ts";
import {
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
import type { ReconcileListing } from "../tandem/TandemEngine.ts";
import type { TandemReconcileFigures, TandemSyncInput } from "../tandem/TandemHooks.ts";

const deletedShare = 0.01;
/** Contacts changed at the source with no delta run after: the drift a reconciliation with times repairs. */
const driftShare = 0.001;

/** 1 when `found` is exactly the `expected` ids, else 0: a fast wrong reconciliation is no result. */
const exactly = (expected: ReadonlySet<string>, found: ReadonlyArray<string>): number =>
  found.length === expected.size && new Set(found).size === found.length && found.every((id) => expected.has(id))
    ? 1
    : 0;

/** The two ways Tandem reconciles, measured side by side on the same source state. */
const variants = [
  // The listing's times dropped before the engine sees them: ids compared, drift not seen.
  { name: "ids_only", listing: "ids" },
  // The connector as it is: ids and times compared, drifted records re-fetched.
  { name: "drift", listing: "ids-and-times" },
] as const satisfies ReadonlyArray<{ readonly name: string; readonly listing: ReconcileListing }>;

/** The stored contacts holding the source's drifted change (`source.change` writes `drifted <id>` as job title). */
const repairedIds = (databaseUrl: string) =>
  withClient(databaseUrl, async (client) => {
    const result = await client.query<{ external_id: string }>(
      "select external_id from records where deleted_at is null and data->>'jobTitle' like 'drifted %'",
    );
    return result.rows.map((r) => r.external_id);
  });

/**
 * reconcile: 1% of the contacts deleted (archived) and 0.1% changed at the source, with no delta
 * run after. Tandem's reconciliation twice, each on its own copy of the same import: comparing ids
 * only, and comparing ids with modification times (re-fetching the changed ones), against an
 * in-memory naive diff and COPY of the ids + one anti-join UPDATE. Every subject must soft-delete
 * exactly the archived ids; the drift comparison must re-fetch exactly the changed ones.
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
    const inputs = new Map<string, TandemSyncInput & { readonly databaseUrl: string }>();
    let tandemUnavailable: string | undefined;
    for (const variant of variants) {
      const url = await ctx.database(`tandem_${variant.name}`);
      const input = {
        ...target,
        database: { kind: "postgres", url } as const,
        databaseUrl: url,
        pageSize: options.largePageSize,
        connectionName: `bench-reconcile-${variant.name}`,
        reconcileListing: variant.listing,
      };
      ctx.log(`tandem initial import for ${variant.name} (not timed)`);
      const initial = await measureTandem(() => runMeasured("tandemImport", input));
      if (!initial.ok) tandemUnavailable = initial.reason;
      inputs.set(variant.name, input);
    }

    // Changed first, then archived: the two picks are disjoint (see the source's pickShare offsets).
    const changed = new Set(await source.change(driftShare, "drifted"));
    const archived = new Set(await source.archive(deletedShare));
    ctx.log(`changed ${changed.size} and archived ${archived.size} contacts at the source`);

    let tandem: Record<string, Figures> | null = null;
    if (tandemUnavailable === undefined) {
      tandem = {};
      for (const variant of variants) {
        const input = inputs.get(variant.name)!;
        ctx.log(`tandem reconcile (${variant.name})`);
        const outcome = await measureTandem(() =>
          runMeasured<TandemReconcileFigures & { seconds: number }>("tandemReconcile", input),
        );
        if (!outcome.ok) {
          tandem = null;
          tandemUnavailable = outcome.reason;
          break;
        }
        const { value, peakRssBytes } = outcome.value;
        const repaired = await repairedIds(input.databaseUrl);
        tandem[variant.name] = {
          seconds: value.seconds,
          softDeleted: value.softDeletedExternalIds.length,
          exact: exactly(archived, value.softDeletedExternalIds),
          drifted: value.drifted,
          repaired: repaired.length,
          repairedExact: exactly(variant.listing === "ids" ? new Set() : changed, repaired),
          peakRssMb: bytesToMb(peakRssBytes),
        };
      }
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
    const idsOnly = tandem?.ids_only;
    const drift = tandem?.drift;
    const perVariant = (label: string, figures: Figures | undefined) => [
      atMost(`tandem ${label} reconcile ≤ 15 s (at 1M ids)`, figures?.seconds ?? null, 15),
      atMost(`tandem ${label} peak RSS ≤ 300 MB`, figures?.peakRssMb ?? null, 300),
      {
        target: `tandem ${label}: exactly the deleted ids soft-deleted`,
        value: figures?.exact ?? null,
        met: figures === undefined ? null : figures.exact === 1,
      },
    ];
    return {
      scenario: "reconcile",
      parameters: {
        records: options.records,
        deleted: archived.size,
        drifted: changed.size,
        pageSize: options.largePageSize,
      },
      headline: { figure: "seconds", unit: "s", higherIsBetter: false },
      tandem,
      ...(tandem === null && tandemUnavailable !== undefined ? { tandemUnavailable } : {}),
      baselines,
      references: {},
      ratios: {
        "tandem ids_only/copy_anti_join (time)": ratio(idsOnly?.seconds, baselines.copy_anti_join!.seconds),
        "tandem ids_only/naive (time)": ratio(idsOnly?.seconds, baselines.naive!.seconds),
        "tandem drift/copy_anti_join (time)": ratio(drift?.seconds, baselines.copy_anti_join!.seconds),
        "tandem drift/tandem ids_only (time)": ratio(drift?.seconds, idsOnly?.seconds),
      },
      targets: [
        ...perVariant("ids_only", idsOnly),
        ...perVariant("drift", drift),
        {
          target: "tandem drift: exactly the changed records re-fetched",
          value: drift?.drifted ?? null,
          met: drift === undefined ? null : drift.repairedExact === 1 && drift.drifted === changed.size,
        },
      ],
      notes: [
        `${archived.size} contacts (${deletedShare * 100}%) archived at the source; exact=1 means exactly those were soft-deleted`,
        `${changed.size} contacts (${driftShare * 100}%) changed at the source with no delta after (drift); drifted = records the run found newer at the source and re-fetched, repaired = stored contacts holding the change, repairedExact=1 means exactly the changed ones (none for ids_only, which compares ids only)`,
        "tandem ids_only and drift: the same connector and the same listing requests (ids with lastmodifieddate); ids_only drops the times before the engine sees them, as for an entity that lists bare ids. Each reconciles its own copy of the same import (separate databases, imported before the source changed)",
      ],
    };
  } finally {
    await source.close();
  }
};

export const reconcile: Scenario = {
  name: "reconcile",
  description:
    "1% deleted and 0.1% changed at the source: Tandem reconciliation (ids only, and with drift) vs naive diff vs COPY + anti-join",
  run,
};
