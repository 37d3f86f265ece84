/**
 * `pnpm fuzz [--count N] [--seed S] [--concurrency C]`: a long fuzz run of the HTTP surface
 * against a server on a fresh PostgreSQL database. Prints the status counts and every finding
 * (a 5xx, a stack trace, internals, an echoed input), and exits 1 when there is one.
 */
import { parseArgs } from "node:util";
import { fuzzServer } from "./apiFuzzer.ts";
import { startFuzzFixture } from "./fuzzFixture.ts";

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "20000" },
    seed: { type: "string", default: String(Math.floor(Math.random() * 1_000_000)) },
    concurrency: { type: "string", default: "8" },
  },
});
const count = Number(values.count);
const seed = Number(values.seed);
const concurrency = Number(values.concurrency);
if (!Number.isInteger(count) || count < 1 || !Number.isInteger(seed) || !Number.isInteger(concurrency)) {
  process.stderr.write("usage: pnpm fuzz [--count N] [--seed S] [--concurrency C]\n");
  process.exit(2);
}

const fixture = await startFuzzFixture();
const started = performance.now();
const report = await fuzzServer({
  url: fixture.t.server.url,
  keys: fixture.keys,
  ids: fixture.ids,
  count,
  seed,
  concurrency,
  webhookConnectors: ["hubspot", "salesforce", "erp"],
});
await fixture.close();
const fiveXX = Object.entries(report.byStatus)
  .filter(([status]) => status.startsWith("5"))
  .reduce((n, [, c]) => n + c, 0);
process.stdout.write(
  `${JSON.stringify(
    {
      seed,
      sent: report.sent,
      seconds: Math.round((performance.now() - started) / 100) / 10,
      byStatus: report.byStatus,
      fiveXX,
      findings: report.findings.length,
    },
    null,
    2,
  )}\n`,
);
for (const finding of report.findings.slice(0, 50)) process.stdout.write(`${JSON.stringify(finding)}\n`);
process.exit(report.findings.length === 0 ? 0 : 1);
