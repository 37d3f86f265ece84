import { describe, expect, it } from "vitest";
import { parseBenchOptions } from "../src/BenchOptions.ts";
import { encodeCopyBlock } from "../src/baselines/CopyRows.ts";
import { startDiskSyncProbe } from "../src/measure/DiskSyncProbe.ts";
import { summarizeLatencies } from "../src/measure/Percentiles.ts";
import { resultsChart } from "../src/report/ResultsChart.ts";
import { markdownTable, textTable } from "../src/report/ResultsTable.ts";
import { atLeast, atMost, measureTandem, ratio, type ScenarioResult } from "../src/Scenario.ts";
import { TandemNotIntegrated } from "../src/tandem/TandemNotIntegrated.ts";

describe("summarizeLatencies", () => {
  it("takes nearest-rank percentiles, never interpolated values", () => {
    const samples = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(summarizeLatencies(samples)).toEqual({ count: 100, p50: 50, p99: 99, max: 100 });
    expect(summarizeLatencies([7])).toEqual({ count: 1, p50: 7, p99: 7, max: 7 });
    expect(summarizeLatencies([]).count).toBe(0);
  });
});

describe("startDiskSyncProbe", () => {
  it("times the disk's syncs over the window of the work it wraps, in a process of its own", async () => {
    const probe = await startDiskSyncProbe();
    try {
      const { value, disk } = await probe.during(
        () => new Promise((resolve) => setTimeout(() => resolve("done"), 300)),
      );
      expect(value).toBe("done");
      // one sync every 20 ms at most, each taking time: a handful in 300 ms, never more than 16
      expect(disk.count).toBeGreaterThan(0);
      expect(disk.count).toBeLessThanOrEqual(16);
      expect(disk.p50Ms).toBeGreaterThan(0);
      expect(disk.p50Ms).toBeLessThanOrEqual(disk.p99Ms);
      expect(disk.p99Ms).toBeLessThanOrEqual(disk.maxMs);
      expect(disk.stalls).toBeLessThanOrEqual(disk.count);
      expect(disk.stalledMs).toBeGreaterThanOrEqual(disk.stalls * 50);
      // a second window starts afresh
      const again = await probe.during(async () => null);
      expect(again.disk.count).toBeLessThanOrEqual(1);
    } finally {
      await probe.close();
    }
  });
});

describe("encodeCopyBlock", () => {
  it("escapes what COPY's text format treats specially", () => {
    const block = encodeCopyBlock([
      {
        externalId: "1",
        data: '{"note":"tab\\there","path":"C:\\\\x"}',
        contentHash: "h",
        remoteUpdatedAt: "2026-01-01T00:00:00.000Z",
      },
      { externalId: "2", data: "line\nbreak\r", contentHash: "h", remoteUpdatedAt: "2026-01-01T00:00:00.000Z" },
    ]);
    const [first, second] = block.split("\n").filter((line) => line !== "");
    expect(first!.split("\t")).toHaveLength(4);
    // every backslash of the JSON text is doubled, so COPY reads the JSON back unchanged
    expect(first).toContain('{"note":"tab\\\\there","path":"C:\\\\\\\\x"}');
    expect(second).toBe("2\tline\\nbreak\\r\th\t2026-01-01T00:00:00.000Z");
  });
});

describe("parseBenchOptions", () => {
  it("has defaults sized for a 10-minute run and accepts repeated or comma-separated scenarios", () => {
    const options = parseBenchOptions(
      ["--scenario", "delta,queue", "--scenario", "reconcile", "--records", "1_000_000"],
      "/out",
    );
    expect(options).toMatchObject({
      records: 1_000_000,
      scenarios: ["delta", "queue", "reconcile"],
      pageSize: 100,
      largePageSize: 10_000,
      workers: 4,
      pglite: true,
      outDir: "/out",
      naiveRecords: undefined,
    });
    expect(parseBenchOptions(["--help"], "/out")).toBeUndefined();
  });

  it("refuses bad numbers and unknown options with a clear message", () => {
    expect(() => parseBenchOptions(["--records", "many"], "/out")).toThrow(/--records must be a positive integer/);
    expect(() => parseBenchOptions(["--recrods", "5"], "/out")).toThrow(/recrods/);
  });
});

describe("ratios and targets", () => {
  it("are null when Tandem's side is missing, never a made-up number", async () => {
    expect(ratio(null, 10)).toBeNull();
    expect(ratio(5, 10)).toBe(0.5);
    expect(atLeast("t", null, 1)).toEqual({ target: "t", value: null, met: null });
    expect(atLeast("t", 2, 1).met).toBe(true);
    expect(atMost("t", 2, 1).met).toBe(false);
    const missing = await measureTandem(async () => {
      throw new TandemNotIntegrated("not yet");
    });
    expect(missing).toEqual({ ok: false, reason: "not yet" });
    await expect(measureTandem(async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
  });
});

describe("reports", () => {
  const result: ScenarioResult = {
    scenario: "initial_import",
    parameters: { records: 10 },
    headline: { figure: "recordsPerSecond", unit: "records/s", higherIsBetter: true },
    tandem: null,
    tandemUnavailable: "engine <not> integrated",
    baselines: { naive: { recordsPerSecond: 1234.5, seconds: 8.1 }, copy: { recordsPerSecond: 60_000, seconds: 0.2 } },
    references: {},
    ratios: { "tandem/copy": null, "copy/naive": 48.6 },
    targets: [atLeast("tandem ≥ 0.5 × copy", null, 0.5)],
    notes: ["a note"],
  };

  it("print tandem as null with its reason, and the baselines' figures", () => {
    const text = textTable([result]);
    expect(text).toContain("engine <not> integrated");
    expect(text).toContain("1,235 records/s");
    expect(text).toContain("copy/naive = 48.6");
    expect(text).toContain("not measured");
    expect(markdownTable([result], { command: "pnpm bench" })).toContain(
      "| initial_import | baseline | copy | 60,000 records/s |",
    );
  });

  it("draw an SVG with escaped text and one bar per measured subject", () => {
    const svg = resultsChart([result], "title & more");
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg).toContain("title &amp; more");
    expect(svg).toContain("engine &lt;not&gt; integrated");
    expect(svg.match(/height="18"/g)).toHaveLength(2);
  });
});
