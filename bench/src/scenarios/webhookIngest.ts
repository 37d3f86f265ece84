import { nodeFlags } from "@tandem/server/runtimeFlags";
import { hubSpotFakeToken } from "@tandem/testkit";
import { startChildProcess } from "../measure/ChildProcessRpc.ts";
import { type DiskSyncProbe, stallMs, startDiskSyncProbe } from "../measure/DiskSyncProbe.ts";
import type { LatencySummary } from "../measure/Percentiles.ts";
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
import { runWebhookLoadAtRate, runWebhookLoadFlatOut } from "../webhooks/WebhookLoad.ts";
import type { ReceiverKind } from "../webhooks/webhookReceiverMain.ts";

const appSecret = "bench-hubspot-app-secret";
const receiverModule = new URL("../webhooks/webhookReceiverMain.ts", import.meta.url);
/** Time the receiver gets after the load stops to store what it acknowledged asynchronously. */
const drainMs = 2_000;
/** Seconds of unmeasured load before each measured one (see loadReceiver). */
const warmupSeconds = 6;
/** The warm-up's event ids start here, far from the measured load's (which start at 1). */
const warmupFirstEventId = 1_000_000_000;

/**
 * One receiver under one load: started in its own process (fresh for each load, so figures do
 * not mix), loaded with signed deliveries by autocannon from this process, then asked what it
 * stored and how long storing took.
 */
const loadReceiver = async (
  ctx: ScenarioContext,
  kind: ReceiverKind,
  input: {
    databaseUrl: string;
    sourceUrl: string;
    firstObjectId: number;
    eventsPerSecond: number | undefined;
    disk: DiskSyncProbe;
  },
): Promise<Figures> => {
  // Tandem's receiver is its server, on the Node flags the server runs with.
  const child = await startChildProcess(receiverModule, kind === "tandem" ? { execArgv: nodeFlags } : {});
  try {
    const { url } = await child.call<{ url: string }>("start", {
      kind,
      databaseUrl: input.databaseUrl,
      sourceUrl: input.sourceUrl,
      accessToken: hubSpotFakeToken,
      appSecret,
    });
    const { options } = ctx;
    const common = {
      url,
      appSecret,
      durationSeconds: options.webhookSeconds,
      eventsPerRequest: options.webhookBatch,
      objectIds: { first: input.firstObjectId, count: options.records },
    };
    const runLoad = (durationSeconds: number, firstEventId: number) =>
      input.eventsPerSecond === undefined
        ? runWebhookLoadFlatOut({ ...common, durationSeconds, firstEventId, connections: options.webhookConnections })
        : runWebhookLoadAtRate({
            ...common,
            durationSeconds,
            firstEventId,
            requestsPerSecond: Math.max(1, Math.round(input.eventsPerSecond / options.webhookBatch)),
          });
    // Every receiver is a fresh process: an unmeasured load of the same shape first, so that
    // compiling hot code and opening database connections are not part of the figures. It lasts
    // past Tandem's first reread of the connection's config (5 s), for which its pool opens one
    // more connection: a new connection's first statements take 70 to 100 ms under this load.
    await runLoad(warmupSeconds, warmupFirstEventId);
    await new Promise((resolve) => setTimeout(resolve, drainMs));
    await child.call("mark");
    // The disk's own sync latency over the same window: a receiver that commits before it
    // answers cannot answer during a stall of the disk (see the notes).
    const { value: load, disk } = await input.disk.during(() => runLoad(options.webhookSeconds, 1));
    await new Promise((resolve) => setTimeout(resolve, drainMs));
    const stored = await child.call<{ receiptToStoredMs: LatencySummary; storedEvents: number }>("stored");
    const peakRssBytes = await child.maxRssBytes();
    await child.call("stop");
    return {
      acceptedEventsPerSecond: load.acceptedEventsPerSecond,
      ackP50Ms: load.ackMs.p50,
      ackP99Ms: load.ackMs.p99,
      ...(stored.receiptToStoredMs.count > 0
        ? { receiptToStoredP50Ms: stored.receiptToStoredMs.p50, receiptToStoredP99Ms: stored.receiptToStoredMs.p99 }
        : {}),
      acceptedEvents: load.acceptedRequests * options.webhookBatch,
      storedEvents: stored.storedEvents,
      rejectedRequests: load.rejected,
      errors: load.errors,
      peakRssMb: bytesToMb(peakRssBytes),
      ...(load.senderNice === undefined ? {} : { senderNice: load.senderNice }),
      diskSyncP99Ms: disk.p99Ms,
      diskSyncMaxMs: disk.maxMs,
      diskSyncStalls: disk.stalls,
      diskSyncStalledMs: disk.stalledMs,
    };
  } finally {
    await child.close();
  }
};

/**
 * webhook_ingest: signed HubSpot deliveries from autocannon against Tandem's webhook route,
 * and against two receivers written without Tandem: one that only verifies and acknowledges
 * (the ceiling of this machine and load generator) and one that stores each event before
 * acknowledging, one INSERT at a time.
 */
const run = async (ctx: ScenarioContext): Promise<ScenarioResult> => {
  const { options } = ctx;
  ctx.log(`seeding ${options.records} contacts at the source (the events name them)`);
  const source = await startHubSpotSource({ records: options.records, maxPageSize: options.largePageSize });
  const disk = await startDiskSyncProbe();
  try {
    // The fake's ids start at 1001 and are consecutive.
    const firstObjectId = 1001;
    // Two loads per receiver: flat out (its capacity), then the target's rate (its latencies
    // when it is not saturated; a receiver that cannot keep up shows it here too).
    let diskOfPostgres: boolean | undefined;
    const measure = async (kind: ReceiverKind): Promise<Figures> => {
      const databaseUrl = await ctx.database(kind);
      diskOfPostgres ??= await disk.sameDeviceAsPostgres(databaseUrl);
      ctx.log(`${kind}: ${options.webhookSeconds} s flat out, ${options.webhookConnections} connections`);
      const max = await loadReceiver(ctx, kind, {
        databaseUrl,
        sourceUrl: source.url,
        firstObjectId,
        eventsPerSecond: undefined,
        disk,
      });
      ctx.log(`${kind}: ${options.webhookSeconds} s at ${options.webhookRate} events/s`);
      const rated = await loadReceiver(ctx, kind, {
        databaseUrl,
        sourceUrl: source.url,
        firstObjectId,
        eventsPerSecond: options.webhookRate,
        disk,
      });
      return {
        maxEventsPerSecond: max.acceptedEventsPerSecond!,
        maxLoadAckP99Ms: max.ackP99Ms!,
        ...rated,
      };
    };
    const baselines: Record<string, Figures> = {};
    for (const kind of ["ack-only", "naive-store"] as const) baselines[kind] = await measure(kind);
    const tandem = await measureTandem(() => measure("tandem"));
    const figures = tandem.ok ? tandem.value : undefined;
    return {
      scenario: "webhook_ingest",
      parameters: {
        seconds: options.webhookSeconds,
        connections: options.webhookConnections,
        eventsPerRequest: options.webhookBatch,
        offeredEventsPerSecond: options.webhookRate,
      },
      headline: { figure: "maxEventsPerSecond", unit: "events/s", higherIsBetter: true },
      tandem: figures === undefined ? null : { webhook_route: figures },
      ...(tandem.ok ? {} : { tandemUnavailable: tandem.reason }),
      baselines,
      references: {},
      ratios: {
        "tandem/ack-only (max events/s)": ratio(figures?.maxEventsPerSecond, baselines["ack-only"]?.maxEventsPerSecond),
        "tandem/naive-store (max events/s)": ratio(
          figures?.maxEventsPerSecond,
          baselines["naive-store"]?.maxEventsPerSecond,
        ),
      },
      targets: [
        atLeast("tandem ≥ 5,000 accepted events/s (flat out)", figures?.maxEventsPerSecond ?? null, 5_000),
        atMost(`tandem ack p99 ≤ 50 ms (at ${options.webhookRate} events/s)`, figures?.ackP99Ms ?? null, 50),
        atMost(
          `tandem receipt-to-stored p99 ≤ 1 s (at ${options.webhookRate} events/s)`,
          figures?.receiptToStoredP99Ms ?? null,
          1_000,
        ),
      ],
      notes: [
        `every receiver is a fresh process, and each measured load follows ${warmupSeconds} s of unmeasured load of the same shape (own event ids)`,
        "tandem: the server as an API process (TANDEM_WORKER=false), as the baselines, which store and process nothing",
        "flat out: autocannon; at the offered rate: an even open-loop schedule from the harness (autocannon's rate limit sends each second's requests in one burst); both run in the harness process, on the same cores as the receiver and PostgreSQL",
        "at the offered rate the harness sends at nice -10 (senderNice), as a vendor's requests do not wait for a core of ours; senderNice is the default (0) where that is not allowed",
        "every event has a new event id and every delivery a fresh v3 signature",
        "maxEventsPerSecond and maxLoadAckP99Ms: flat out; the other figures: at the offered rate (fresh receiver process)",
        `diskSync*: the disk's commit latency during each load at the offered rate, from a process of its own writing 8 KB and calling fdatasync every 20 ms (as PostgreSQL flushes its WAL at a commit), ${
          diskOfPostgres === true
            ? "on the device of PostgreSQL's data directory"
            : diskOfPostgres === false
              ? "NOT on the device of PostgreSQL's data directory"
              : "on a device not compared with PostgreSQL's"
        }; diskSyncStalls counts syncs of ${stallMs} ms or more and diskSyncStalledMs sums them. A receiver that stores before it answers cannot answer during a stall`,
      ],
    };
  } finally {
    await disk.close();
    await source.close();
  }
};

export const webhookIngest: Scenario = {
  name: "webhook_ingest",
  description: "signed HubSpot deliveries: Tandem's webhook route vs ack-only vs store-per-event receivers",
  run,
};
