/**
 * The push scenario's vendor: the testkit's HubSpot fake, served over real loopback HTTP from
 * this separate process (as every scenario's source), so that the fake's serving time is spent
 * on its own event loop, not on the one of the engine or of the baseline it is compared with.
 * The harness drives it over IPC: request counts, the vendor round trip (`latencyMs`), how many
 * records hold a value, and, for the latency run, when each awaited value was written.
 */
import { performance } from "node:perf_hooks";
import { type ServedHubSpotFake, serveHubSpotFake } from "@tandem/testkit";
import { serveChildRpc } from "../measure/ChildProcessRpc.ts";

let served: ServedHubSpotFake | undefined;
/** Values awaited in the latency run: record id → the job title it should reach. */
const awaited = new Map<string, string>();
/** When each awaited value was written, in epoch milliseconds (the harness's clock too). */
const writtenAt = new Map<string, number>();

const fake = () => {
  if (served === undefined) throw new Error("push target not started");
  return served.fake;
};

const epochMs = () => performance.timeOrigin + performance.now();

serveChildRpc({
  start: async (input: { readonly records: number }) => {
    // No rate limit in the way: the scenario measures the writes, not HubSpot's throttling.
    served = await serveHubSpotFake({
      port: 0,
      knobs: { rateLimit: { max: 1_000_000, intervalMs: 1_000 }, listMaxLimit: 10_000 },
    });
    served.fake.seedContacts(input.records);
    served.fake.store.onChange((change) => {
      if (change.kind !== "propertyChange" || change.propertyName !== "jobtitle") return;
      if (awaited.get(change.objectId) === change.propertyValue) {
        writtenAt.set(change.objectId, epochMs());
        awaited.delete(change.objectId);
      }
    });
    return { url: served.url, ids: served.fake.live("contacts").map((c) => c.id) };
  },
  /** Requests answered so far, by kind. */
  requestCounts: () => {
    const requests = fake().requests();
    return {
      total: requests.length,
      batchUpdates: requests.filter((r) => r.path.startsWith("/crm/v3/objects/contacts/batch/update")).length,
      batchReads: requests.filter((r) => r.path.startsWith("/crm/v3/objects/contacts/batch/read")).length,
      singlePatches: requests.filter((r) => r.method === "PATCH").length,
    };
  },
  /** Adds this many milliseconds to every request the fake answers (a vendor's round trip). */
  setLatency: (input: { readonly ms: number }) => {
    fake().knobs.latencyMs = input.ms;
    return null;
  },
  /** How many of these records hold `value(id)` as their job title: `${prefix} ${id}`. */
  countWithJobTitle: (input: { readonly ids: ReadonlyArray<string>; readonly prefix: string }) =>
    input.ids.filter((id) => fake().store.get("contacts", id)?.properties.jobtitle === `${input.prefix} ${id}`).length,
  /** Starts waiting for a record's job title to become `value`. */
  await: (input: { readonly id: string; readonly value: string }) => {
    awaited.set(input.id, input.value);
    return null;
  },
  /** The awaited values written so far (epoch ms each), and how many are still awaited. */
  written: () => ({ at: Object.fromEntries(writtenAt), stillAwaited: awaited.size }),
  /** CPU time this process has used so far (user and system), in milliseconds. */
  cpuMs: () => {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1000;
  },
  stop: async () => {
    await served?.close();
    served = undefined;
    return null;
  },
});
