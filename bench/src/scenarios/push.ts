import { performance } from "node:perf_hooks";
import { defaultPushIntervalMs, EntitySync, JobQueue, RecordStore, Records, SyncJobHandlers } from "@tandem/core";
import { hubSpotFakeToken } from "@tandem/testkit";
import { Effect, Exit, ManagedRuntime, Scope } from "effect";
import { type NaivePushWorker, patchJobTitle, startNaivePushWorker } from "../baselines/NaivePushWorker.ts";
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
/** Measured pushes of each kind after a warm-up one; the figure is their median. */
const measuredRounds = 3;
/** The contact properties the HubSpot connector reads (its `batch/read`), for the bare floor. */
const contactProperties = [
  "email",
  "firstname",
  "lastname",
  "phone",
  "company",
  "jobtitle",
  "lifecyclestage",
  "createdate",
  "lastmodifieddate",
];
/** HubSpot's batch limit, and the requests the bare floor has in flight (the engine's 2 batches × 4 chunks at most). */
const batchInputs = 100;
const bareConcurrency = 4;

/** The trickle of the latency run: edits per second, for this many seconds. */
const trickleRate = 20;
const trickleSeconds = 10;

/**
 * push: local edits written to the HubSpot fake (node:http on loopback), three ways.
 *
 * - **tandem batch**: 10,000 contacts edited locally (outbox entries, as `records.update` writes
 *   them), then one push drain: the engine's batch writes (HubSpot `batch/update`, 100 a request,
 *   each preceded by the connector's `batch/read` version check). Edits per second.
 * - **naive (baseline)**: the `sync-to-crm` worker of `shared/seeds/004` (`NaivePushWorker`):
 *   per record, one `PATCH /crm/v3/objects/contacts/{id}` over the same loopback, then the
 *   contact's row updated with its sync status, one record at a time, for the first 1,000
 *   records. Edits per second. Its PATCHes alone, without the status updates, are a reference
 *   (**patch_alone**): the most any one-request-per-record client gets from this fake.
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
  const database = { kind: "postgres", url: await ctx.database("tandem") } as const;
  const runtime = ManagedRuntime.make(tandemEngineLayer(database));
  // The same engine and database, its HubSpot contacts without batch writes: each record alone.
  const perRecordRuntime = ManagedRuntime.make(tandemEngineLayer(database, "no-batch-writes"));
  let naiveWorker: NaivePushWorker | undefined;
  try {
    ctx.log(`importing ${edits} contacts`);
    const config = benchHubSpotConfig({ sourceUrl: vendor.url, accessToken: hubSpotFakeToken, pageSize: 100 });
    const ids = await runtime.runPromise(ensureConnection("bench-push", config));
    const target = { ...ids, entity: "contacts" };
    await runtime.runPromise(Effect.flatMap(EntitySync, (e) => e.run({ ...target, mode: "full" })));
    const contacts = vendor.ids;

    // Tandem: the records edited locally, then one push drain writes them all.
    const enginePush = async (engine: typeof runtime, label: string, ids: ReadonlyArray<string>) => {
      await engine.runPromise(
        Effect.flatMap(RecordStore, (store) =>
          Effect.forEach(ids, (id) => store.applyLocalChange(target, id, { jobTitle: `${label} ${id}` }), {
            concurrency: 8,
            discard: true,
          }),
        ),
      );
      const before = await vendor.requestCounts();
      const started = performance.now();
      const pushed = await engine.runPromise(Effect.flatMap(EntitySync, (e) => e.run({ ...target, mode: "push" })));
      const seconds = (performance.now() - started) / 1000;
      const after = await vendor.requestCounts();
      const landed = await vendor.countWithJobTitle(ids, label);
      if (pushed.updated !== ids.length || landed !== ids.length) {
        throw new Error(
          `push: ${pushed.updated} updated, ${landed} at the fake (errors: ${JSON.stringify(pushed.errors.slice(0, 3))})`,
        );
      }
      return {
        editsPerSecond: ids.length / seconds,
        seconds,
        batchUpdateRequests: after.batchUpdates - before.batchUpdates,
        batchReadRequests: after.batchReads - before.batchReads,
        singleWriteRequests: after.singlePatches - before.singlePatches,
      };
    };
    const tandemPush = async (label: string) => {
      ctx.log(`tandem (${label}): ${edits} local edits, then a push`);
      const pushed = await enginePush(runtime, label, contacts);
      if (pushed.singleWriteRequests !== 0) throw new Error(`push: ${pushed.singleWriteRequests} single PATCHes`);
      return pushed;
    };
    // The engine without batch writes: each record written alone (HubSpot's conditional update
    // is a read and a write of that one record), 4 at a time (the push's default concurrency).
    const perRecordPush = async (label: string) => {
      ctx.log(`tandem without batch writes (${label}): ${naiveRecords} local edits, then a push`);
      return { ...(await enginePush(perRecordRuntime, label, contacts.slice(0, naiveRecords))), records: naiveRecords };
    };

    // Baseline: the example's sync-to-crm worker, one request and one status update per record.
    const patchTarget = { vendorUrl: vendor.url, accessToken: hubSpotFakeToken };
    const worker = await startNaivePushWorker({
      ...patchTarget,
      databaseUrl: await ctx.database("naive"),
      externalIds: contacts,
    });
    naiveWorker = worker;
    const naivePush = async (label: string, records: number) => {
      ctx.log(`naive (${label}): ${records} contacts, a PATCH and a status update each`);
      const ids = contacts.slice(0, records);
      const started = performance.now();
      const taken = await worker.push(ids.map((id) => ({ externalId: id, jobTitle: `Naive ${label} ${id}` })));
      const seconds = (performance.now() - started) / 1000;
      if (taken !== records) throw new Error(`naive push: the vendor took ${taken} of ${records}`);
      return { editsPerSecond: records / seconds, seconds, records };
    };

    // Reference: the naive worker's requests alone, without its status updates (HTTP, no database).
    const patchOnly = async (label: string) => {
      ctx.log(`PATCH alone (${label}): ${naiveRecords} PATCHes, one per record, no database`);
      const started = performance.now();
      for (const id of contacts.slice(0, naiveRecords)) {
        const response = await patchJobTitle(patchTarget, id, `Patch ${label} ${id}`);
        if (!response.ok) throw new Error(`PATCH ${id}: ${response.status}`);
        await response.arrayBuffer();
      }
      const seconds = (performance.now() - started) / 1000;
      return { editsPerSecond: naiveRecords / seconds, seconds, records: naiveRecords };
    };

    // The floor: the requests Tandem's push sends (a batch/read, then a batch/update, of 100
    // contacts each), sent by a bare loop with no engine, no database and no bookkeeping.
    const post = async (route: string, body: unknown) => {
      const response = await fetch(`${vendor.url}/crm/v3/objects/contacts/batch/${route}`, {
        method: "POST",
        headers: { authorization: `Bearer ${hubSpotFakeToken}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      if (response.status !== 200 && response.status !== 207)
        throw new Error(`bare batch/${route}: ${response.status}`);
      return response.json();
    };
    const barePush = async (label: string) => {
      ctx.log(
        `bare batch requests (${label}): ${edits} records, ${batchInputs} a request, ${bareConcurrency} at a time`,
      );
      const chunks: Array<ReadonlyArray<string>> = [];
      for (let i = 0; i < contacts.length; i += batchInputs) chunks.push(contacts.slice(i, i + batchInputs));
      const started = performance.now();
      let next = 0;
      const lane = async () => {
        while (next < chunks.length) {
          const chunk = chunks[next++]!;
          await post("read", { properties: contactProperties, inputs: chunk.map((id) => ({ id })) });
          await post("update", {
            inputs: chunk.map((id) => ({ id, properties: { jobtitle: `Bare ${label} ${id}` } })),
          });
        }
      };
      await Promise.all(Array.from({ length: bareConcurrency }, lane));
      const seconds = (performance.now() - started) / 1000;
      return { editsPerSecond: edits / seconds, seconds, records: edits };
    };

    /** One warm-up run (the JIT, the connection pools, PostgreSQL's plans), then the median of the measured ones. */
    const warmMedian = async <A extends { readonly editsPerSecond: number }>(
      runOnce: (label: string) => Promise<A>,
      label: string,
    ): Promise<{ readonly first: A; readonly median: A & { readonly runs: number } }> => {
      const first = await runOnce(`${label} warm-up`);
      const runs: Array<A> = [];
      for (let i = 0; i < measuredRounds; i++) runs.push(await runOnce(`${label} ${i + 1}`));
      runs.sort((a, b) => a.editsPerSecond - b.editsPerSecond);
      return { first, median: { ...runs[Math.floor(runs.length / 2)]!, runs: runs.length } };
    };

    const batchRuns = await warmMedian(tandemPush, "loopback");
    const batch = batchRuns.median;
    const perRecord = (await warmMedian(perRecordPush, "per record")).median;
    await vendor.setLatency(vendorLatencyMs);
    const batchWithLatency = await tandemPush(`latency ${vendorLatencyMs} ms`);
    await vendor.setLatency(0);

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

    // The baselines go last: their writes move the vendor's records past the versions Tandem
    // stored, and Tandem's next (conditional) push of those records would rightly merge them.
    await vendor.setLatency(vendorLatencyMs);
    const naiveWithLatency = await naivePush(`latency ${vendorLatencyMs} ms`, naiveRecordsWithLatency);
    await vendor.setLatency(0);
    const naive = (await warmMedian((label) => naivePush(label, naiveRecords), "loopback")).median;
    const patchAlone = (await warmMedian(patchOnly, "loopback")).median;
    const bare = (await warmMedian(barePush, "loopback")).median;

    const latency = summarizeLatencies(latencies);
    const speedup = ratio(batch.editsPerSecond, naive.editsPerSecond);
    const speedupWithLatency = ratio(batchWithLatency.editsPerSecond, naiveWithLatency.editsPerSecond);
    const firstPushSpeedup = ratio(batchRuns.first.editsPerSecond, naive.editsPerSecond);
    const floorSpeedup = ratio(bare.editsPerSecond, naive.editsPerSecond);
    return {
      scenario: "push",
      parameters: {
        edits,
        measuredRounds,
        naiveRecords,
        naiveRecordsWithLatency,
        vendorLatencyMs,
        trickleRate,
        trickleSeconds,
      },
      headline: { figure: "editsPerSecond", unit: "edits/s", higherIsBetter: true },
      tandem: {
        batch,
        batch_first_push: batchRuns.first,
        [`batch_vendor_latency_${vendorLatencyMs}ms`]: batchWithLatency,
        latency: { p50Ms: latency.p50, p99Ms: latency.p99, maxMs: latency.max, samples: latency.count },
      },
      baselines: { naive, [`naive_vendor_latency_${vendorLatencyMs}ms`]: naiveWithLatency },
      references: { patch_alone: patchAlone, bare_batch_requests: bare, tandem_without_batch_writes: perRecord },
      ratios: {
        "tandem batch/naive one request per record (loopback)": speedup,
        "tandem first push (cold)/naive one request per record (loopback)": firstPushSpeedup,
        "bare batch requests (no engine, no database)/naive one request per record (loopback)": floorSpeedup,
        "tandem batch/PATCH alone, no status update (loopback)": ratio(batch.editsPerSecond, patchAlone.editsPerSecond),
        "naive/PATCH alone (loopback)": ratio(naive.editsPerSecond, patchAlone.editsPerSecond),
        "tandem batch/bare batch requests (loopback)": ratio(batch.editsPerSecond, bare.editsPerSecond),
        "tandem batch/tandem without batch writes (loopback)": ratio(batch.editsPerSecond, perRecord.editsPerSecond),
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
        `loopback figures are the median of ${measuredRounds} runs after a warm-up run of the same kind (the JIT, the pools, PostgreSQL's plans); batch_first_push is Tandem's warm-up push, cold, right after the import`,
        `bare batch requests: the same batch/read + batch/update requests (${batchInputs} contacts each, ${bareConcurrency} in flight) from a bare loop with no engine and no database, the most any batching client gets from this fake on this machine`,
        `tandem wrote ${edits} edits in ${batch.batchUpdateRequests} batch/update requests (and ${batch.batchReadRequests} batch/read version checks: HubSpot has no conditional write), no single PATCH`,
        `tandem without batch writes: the same engine and database, HubSpot's contacts without write.batch, ${naiveRecords} records each written alone (a batch/read and a batch/update of that record: HubSpot's conditional update), 4 at a time`,
        `naive: the sync-to-crm worker of shared/seeds/004, for the first ${naiveRecords} records (${naiveRecordsWithLatency} with the vendor latency), one at a time: a PATCH, then the contact's row updated (sync_status, last_synced_at, sync_error; autocommit); its rate is per record`,
        `PATCH alone: the naive worker's ${naiveRecords} PATCHes without its status updates (no database work at all), the most a one-request-per-record client gets from this fake`,
        `the vendor-latency runs add ${vendorLatencyMs} ms to every request the fake answers, on both sides (a real vendor's round trip is longer)`,
        `latency: ${latency.count} edits through records.update at ${trickleRate}/s, default push interval (${defaultPushIntervalMs} ms) and worker settings; each edit timed from the records.update call to the fake's write`,
      ],
    };
  } finally {
    await runtime.dispose();
    await perRecordRuntime.dispose();
    await naiveWorker?.close();
    await vendor.close();
  }
};

export const push: Scenario = {
  name: "push",
  description: "10,000 local edits to the HubSpot fake: batch push vs one request per record; edit-to-vendor latency",
  run,
};
