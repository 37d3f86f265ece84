import { performance } from "node:perf_hooks";
import { defaultPushIntervalMs, EntitySync, JobQueue, RecordStore, Records, SyncJobHandlers } from "@tandem/core";
import { hubSpotFakeToken } from "@tandem/testkit";
import { Effect, Exit, ManagedRuntime, Scope } from "effect";
import { summarizeLatencies } from "../measure/Percentiles.ts";
import { atLeast, atMost, ratio, type Scenario, type ScenarioContext, type ScenarioResult } from "../Scenario.ts";
import { startHubSpotPushTarget } from "../source/HubSpotPushTarget.ts";
import { benchHubSpotConfig, ensureConnection, tandemEngineLayer } from "../tandem/TandemEngine.ts";

/** Local edits pushed in the throughput run (issue 17: 10,000). */
const edits = 10_000;
/** Records the one-request-per-record baseline writes (its rate is per record). */
const naiveRecords = 1_000;
/**
 * The vendor round trip of the second throughput run (the fake's `latencyMs` knob, on every
 * request of both sides): loopback answers in well under a millisecond, HubSpot in some 100 ms.
 */
const vendorLatencyMs = 20;
/** Records the baseline writes with the vendor latency (4 s at 20 ms a request). */
const naiveRecordsWithLatency = 200;
/** The trickle of the latency run: edits per second, for this many seconds. */
const trickleRate = 20;
const trickleSeconds = 10;

const path = (id: string) => `/crm/v3/objects/contacts/${id}`;

/**
 * push: local edits written to the HubSpot fake (node:http on loopback), three ways.
 *
 * - **tandem batch**: 10,000 contacts edited locally (outbox entries, as `records.update` writes
 *   them), then one push drain: the engine's batch writes (HubSpot `batch/update`, 100 a request,
 *   each preceded by the connector's `batch/read` version check). Edits per second.
 * - **naive (baseline)**: one `PATCH /crm/v3/objects/contacts/{id}` per record, one at a time,
 *   over the same loopback, for the first 1,000 records. Edits per second.
 * - **latency**: the queue worker running as a server runs it, edits arriving through
 *   `records.update` at a steady 20 a second for 10 s, default push settings; each edit's latency
 *   is from the `records.update` call to the moment the fake stores the new value (the fake's
 *   process notes the time of the write; both processes read the same wall clock).
 *
 * The fake runs in its own process (`source/hubSpotPushTargetMain.ts`), as every scenario's
 * source: its serving time is not spent on the event loop of the engine or of the baseline.
 */
const run = async (ctx: ScenarioContext): Promise<ScenarioResult> => {
  ctx.log(`starting the HubSpot fake in its own process, seeded with ${edits} contacts`);
  const vendor = await startHubSpotPushTarget({ records: edits });
  const runtime = ManagedRuntime.make(tandemEngineLayer({ kind: "postgres", url: await ctx.database("tandem") }));
  try {
    ctx.log(`importing ${edits} contacts`);
    const config = benchHubSpotConfig({ sourceUrl: vendor.url, accessToken: hubSpotFakeToken, pageSize: 100 });
    const ids = await runtime.runPromise(ensureConnection("bench-push", config));
    const target = { ...ids, entity: "contacts" };
    await runtime.runPromise(Effect.flatMap(EntitySync, (e) => e.run({ ...target, mode: "full" })));
    const contacts = vendor.ids;

    // Tandem: every contact edited locally, then one push drain writes them all.
    const tandemPush = async (label: string) => {
      ctx.log(`tandem (${label}): ${edits} local edits, then a push`);
      await runtime.runPromise(
        Effect.flatMap(RecordStore, (store) =>
          Effect.forEach(contacts, (id) => store.applyLocalChange(target, id, { jobTitle: `${label} ${id}` }), {
            concurrency: 8,
            discard: true,
          }),
        ),
      );
      const before = await vendor.requestCounts();
      const started = performance.now();
      const pushed = await runtime.runPromise(Effect.flatMap(EntitySync, (e) => e.run({ ...target, mode: "push" })));
      const seconds = (performance.now() - started) / 1000;
      const after = await vendor.requestCounts();
      const batchUpdates = after.batchUpdates - before.batchUpdates;
      const batchReads = after.batchReads - before.batchReads;
      const singlePatches = after.singlePatches - before.singlePatches;
      const landed = await vendor.countWithJobTitle(contacts, label);
      if (pushed.updated !== edits || landed !== edits || singlePatches !== 0) {
        throw new Error(
          `push: ${pushed.updated} updated, ${landed} at the fake, ${singlePatches} single PATCHes (errors: ${JSON.stringify(pushed.errors.slice(0, 3))})`,
        );
      }
      return {
        editsPerSecond: edits / seconds,
        seconds,
        batchUpdateRequests: batchUpdates,
        batchReadRequests: batchReads,
        singleWriteRequests: singlePatches,
      };
    };

    // Baseline: one request per record, one at a time.
    const naivePush = async (label: string, records: number) => {
      ctx.log(`naive (${label}): ${records} PATCHes, one per record`);
      const started = performance.now();
      for (const id of contacts.slice(0, records)) {
        const response = await fetch(`${vendor.url}${path(id)}`, {
          method: "PATCH",
          headers: { authorization: `Bearer ${hubSpotFakeToken}`, "content-type": "application/json" },
          body: JSON.stringify({ properties: { jobtitle: `Naive ${label} ${id}` } }),
        });
        if (!response.ok) throw new Error(`naive PATCH ${id}: ${response.status}`);
        await response.arrayBuffer();
      }
      const seconds = (performance.now() - started) / 1000;
      return { editsPerSecond: records / seconds, seconds, records };
    };

    // The baselines go last: their writes move the vendor's records past the versions Tandem
    // stored, and Tandem's next (conditional) push of those records would rightly merge them.
    const batch = await tandemPush("loopback");
    await vendor.setLatency(vendorLatencyMs);
    const batchWithLatency = await tandemPush(`latency ${vendorLatencyMs} ms`);
    const naiveWithLatency = await naivePush(`latency ${vendorLatencyMs} ms`, naiveRecordsWithLatency);
    await vendor.setLatency(0);
    const naive = await naivePush("loopback", naiveRecords);

    // Latency under a steady trickle, the worker running with default settings.
    ctx.log(`latency: ${trickleRate} edits/s for ${trickleSeconds} s through records.update, worker running`);
    const workerScope = await Effect.runPromise(Scope.make());
    const latencies: Array<number> = [];
    try {
      await runtime.runPromise(
        Effect.gen(function* () {
          const handlers = (yield* SyncJobHandlers).handlers;
          return yield* (yield* JobQueue).worker({ handlers });
        }).pipe(Scope.extend(workerScope)),
      );
      const total = trickleRate * trickleSeconds;
      const editedAt = new Map<string, number>();
      const t0 = performance.now();
      for (let i = 0; i < total; i++) {
        const due = t0 + (i * 1000) / trickleRate;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        // A record not edited by the earlier runs' leftovers: the trickle's own.
        const id = contacts[naiveRecords + i]!;
        const value = `Trickle ${i}`;
        await vendor.await(id, value);
        editedAt.set(id, performance.timeOrigin + performance.now());
        await runtime.runPromise(
          Effect.flatMap(Records, (r) =>
            r.update(target.tenantId, { ...target, externalId: id, fields: { jobTitle: value } }),
          ),
        );
      }
      const deadline = performance.now() + 60_000;
      let written = await vendor.written();
      while (written.stillAwaited > 0 && performance.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        written = await vendor.written();
      }
      if (written.stillAwaited > 0) {
        throw new Error(`latency: ${written.stillAwaited} edits never reached the fake within 60 s`);
      }
      for (const [id, at] of editedAt) latencies.push(written.at[id]! - at);
    } finally {
      await Effect.runPromise(Scope.close(workerScope, Exit.void));
    }
    const latency = summarizeLatencies(latencies);
    const speedup = ratio(batch.editsPerSecond, naive.editsPerSecond);
    const speedupWithLatency = ratio(batchWithLatency.editsPerSecond, naiveWithLatency.editsPerSecond);
    return {
      scenario: "push",
      parameters: { edits, naiveRecords, naiveRecordsWithLatency, vendorLatencyMs, trickleRate, trickleSeconds },
      headline: { figure: "editsPerSecond", unit: "edits/s", higherIsBetter: true },
      tandem: {
        batch,
        [`batch_vendor_latency_${vendorLatencyMs}ms`]: batchWithLatency,
        latency: { p50Ms: latency.p50, p99Ms: latency.p99, maxMs: latency.max, samples: latency.count },
      },
      baselines: { naive, [`naive_vendor_latency_${vendorLatencyMs}ms`]: naiveWithLatency },
      references: {},
      ratios: {
        "tandem batch/naive one request per record (loopback)": speedup,
        [`tandem batch/naive one request per record (vendor latency ${vendorLatencyMs} ms)`]: speedupWithLatency,
      },
      targets: [
        atLeast("tandem batch ≥ 10 × one request per record (loopback)", speedup, 10),
        atLeast(
          `tandem batch ≥ 10 × one request per record (vendor latency ${vendorLatencyMs} ms)`,
          speedupWithLatency,
          10,
        ),
        atMost("edit-to-vendor latency p99 ≤ 2,000 ms (default settings)", latency.p99, 2_000),
      ],
      notes: [
        "the fake (node:http on loopback) runs in its own process; the engine, the baseline and the harness share this one",
        `tandem wrote ${edits} edits in ${batch.batchUpdateRequests} batch/update requests (and ${batch.batchReadRequests} batch/read version checks: HubSpot has no conditional write), no single PATCH`,
        `naive wrote the first ${naiveRecords} records one PATCH at a time (${naiveRecordsWithLatency} with the vendor latency), with no database work at all; its rate is per record`,
        `the vendor-latency runs add ${vendorLatencyMs} ms to every request the fake answers, on both sides (a real vendor's round trip is longer)`,
        `latency: ${latency.count} edits through records.update at ${trickleRate}/s, default push interval (${defaultPushIntervalMs} ms) and worker settings; each edit timed from the records.update call to the fake's write`,
      ],
    };
  } finally {
    await runtime.dispose();
    await vendor.close();
  }
};

export const push: Scenario = {
  name: "push",
  description: "10,000 local edits to the HubSpot fake: batch push vs one request per record; edit-to-vendor latency",
  run,
};
