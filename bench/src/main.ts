/**
 * `pnpm bench`: runs the scenarios, prints a table, writes results/latest.json, latest.md and
 * latest.svg. See bench/README.md.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { availableParallelism, cpus, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describeServer, openBenchDatabase } from "./BenchDatabase.ts";
import { parseBenchOptions, usage } from "./BenchOptions.ts";
import { resultsChart } from "./report/ResultsChart.ts";
import { markdownTable, textTable } from "./report/ResultsTable.ts";
import type { ScenarioResult } from "./Scenario.ts";
import { scenarios } from "./scenarios/registry.ts";

const log = (message: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);

/** A mistake on the command line: one line and the usage, no stack trace. */
class UsageError extends Error {}

const main = async () => {
  let options: ReturnType<typeof parseBenchOptions>;
  try {
    options = parseBenchOptions(process.argv.slice(2), fileURLToPath(new URL("../results", import.meta.url)));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  if (options === undefined) {
    console.log(usage);
    return;
  }
  const unknown = options.scenarios.filter((name) => !scenarios.some((s) => s.name === name));
  if (unknown.length > 0) {
    throw new UsageError(`unknown scenario ${unknown.join(", ")}; known: ${scenarios.map((s) => s.name).join(", ")}`);
  }
  const selected =
    options.scenarios.length === 0 ? scenarios : scenarios.filter((s) => options.scenarios.includes(s.name));
  const command = `pnpm bench ${process.argv.slice(2).join(" ")}`.trim();
  const started = new Date();
  const results: Array<ScenarioResult> = [];
  const failed: Array<string> = [];
  let server: Record<string, string> = {};
  await mkdir(options.outDir, { recursive: true });

  const write = async () => {
    const meta = {
      command,
      started: started.toISOString(),
      machine: `${availableParallelism()} cores (${cpus()[0]?.model ?? "unknown"}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
      postgres: Object.entries(server)
        .map(([k, v]) => `${k}=${v}`)
        .join(", "),
    };
    await writeFile(join(options.outDir, "latest.json"), `${JSON.stringify({ ...meta, options, results }, null, 2)}\n`);
    await writeFile(join(options.outDir, "latest.md"), markdownTable(results, meta));
    await writeFile(
      join(options.outDir, "latest.svg"),
      resultsChart(
        results,
        `pnpm bench, ${started.toISOString().slice(0, 16)}Z, ${options.records.toLocaleString("en-US")} records`,
      ),
    );
  };

  for (const scenario of selected) {
    log(`scenario ${scenario.name}: ${scenario.description}`);
    const opened: Array<{ drop: () => Promise<void> }> = [];
    const scenarioStarted = performance.now();
    try {
      const result = await scenario.run({
        options,
        log: (message) => log(`${scenario.name}: ${message}`),
        database: async (label) => {
          const database = await openBenchDatabase(
            `${scenario.name}_${label}`.replace(/[^a-z0-9_]/gi, "_").slice(0, 40),
          );
          opened.push(database);
          if (Object.keys(server).length === 0) server = await describeServer(database.url);
          return database.url;
        },
      });
      results.push(result);
      log(`scenario ${scenario.name} done in ${((performance.now() - scenarioStarted) / 1000).toFixed(1)} s`);
      console.log(`${textTable([result])}\n`);
    } catch (error) {
      // One broken scenario should not cost the figures of the others.
      failed.push(scenario.name);
      log(
        `scenario ${scenario.name} FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
      );
    } finally {
      for (const database of opened) await database.drop().catch((e) => log(`could not drop a database: ${e}`));
    }
    await write();
  }
  console.log(textTable(results));
  log(`wrote ${join(options.outDir, "latest.json")}, latest.md and latest.svg`);
  if (failed.length > 0) {
    log(`failed scenarios: ${failed.join(", ")}`);
    process.exitCode = 1;
  }
};

main().catch((error: unknown) => {
  if (error instanceof UsageError) console.error(`bench: ${error.message} (see --help)`);
  else console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
});
