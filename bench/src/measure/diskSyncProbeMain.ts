/**
 * The disk's commit latency, measured beside a load: a small write and an `fdatasync` every
 * 20 ms into a file of its own, as PostgreSQL's WAL flush does at each commit
 * (`wal_sync_method = fdatasync` on Linux). A receiver that stores before it answers cannot
 * answer faster than the flush of its commit, so a stall here is a stall of every such receiver.
 * Its own process: its waits must not sit on the load generator's event loop.
 */
import { open, rm } from "node:fs/promises";
import { join } from "node:path";
import { serveChildRpc } from "./ChildProcessRpc.ts";
import { type DiskSyncSummary, stallMs } from "./DiskSyncProbe.ts";
import { summarizeLatencies } from "./Percentiles.ts";

/** The size of one WAL flush at a small commit is a page or two. */
const writeBytes = 8_192;
/** Offsets cycle over this many pages, so the file stays small. */
const pages = 256;
const intervalMs = 20;

let running: { stop: () => Promise<DiskSyncSummary> } | undefined;

const start = async (directory: string) => {
  const path = join(directory, `bench-disk-sync-probe-${process.pid}.bin`);
  const file = await open(path, "w");
  const page = Buffer.alloc(writeBytes, 0x61);
  const samples: Array<number> = [];
  let stopped = false;
  const loop = (async () => {
    for (let i = 0; !stopped; i++) {
      const started = performance.now();
      await file.write(page, 0, writeBytes, (i % pages) * writeBytes);
      await file.datasync();
      samples.push(performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    stop: async (): Promise<DiskSyncSummary> => {
      stopped = true;
      await loop;
      await file.close();
      await rm(path, { force: true });
      const summary = summarizeLatencies(samples);
      const stalled = samples.filter((ms) => ms >= stallMs);
      return {
        count: summary.count,
        p50Ms: summary.p50,
        p99Ms: summary.p99,
        maxMs: summary.max,
        stalls: stalled.length,
        stalledMs: stalled.reduce((sum, ms) => sum + ms, 0),
      };
    },
  };
};

serveChildRpc({
  start: async (input: { readonly directory: string }) => {
    if (running !== undefined) throw new Error("the probe is already running");
    running = await start(input.directory);
    return null;
  },
  stop: async () => {
    if (running === undefined) throw new Error("the probe is not running");
    const summary = await running.stop();
    running = undefined;
    return summary;
  },
});
