import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { Connections, type DatabaseConfig, Engine, Tenants } from "@tandem/core";
import { builtinConnectors } from "@tandem/server";
import {
  createHubSpotFake,
  freshDatabaseConfig,
  type HubSpotFake,
  hubSpotFakeToken,
  type LoopbackServer,
  loopbackEgressOptions,
  serveOnLoopback,
} from "@tandem/testkit";
import { Effect, Exit, ManagedRuntime, Redacted, Scope } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnWorker, stopWorkers, type WorkerProcess } from "./processes.ts";

const fixture = fileURLToPath(new URL("./fixtures/rateBudgetWorker.ts", import.meta.url));

/** The connection's budget: HubSpot's `requestsPerSecond` override, with a burst of one second. */
const rate = 10;
const burst = 10;
/**
 * The fake's limit per rolling second: what the budget allows in one second (burst + rate), plus a
 * fifth for a loaded machine, where a request can reach the fake a little after its token was
 * taken. Three processes each holding the whole budget would send 60 in their first second.
 */
const perSecondLimit = Math.ceil((burst + rate) * 1.2);
const runMs = 12_000;

/** The most requests the fake saw in any interval of `lengthMs` (a start at each arrival). */
const mostIn = (arrivals: ReadonlyArray<number>, lengthMs: number) => {
  let most = 0;
  let end = 0;
  for (let start = 0; start < arrivals.length; start++) {
    while (end < arrivals.length && arrivals[end]! < arrivals[start]! + lengthMs) end++;
    most = Math.max(most, end - start);
  }
  return most;
};

/**
 * Must-show of issue 18: 3 OS processes (Node 24, the engine as the server composes it) syncing
 * ONE HubSpot connection at once, against the HubSpot fake over node:http, which counts every
 * request per rolling second and answers 429 above its limit. The budget is one per connection
 * across the cluster (leased from PostgreSQL), so together they stay within it, and no 429 is
 * caused by our own excess; and they are not starved: together they get close to the budget.
 */
describe("one connection's rate budget across 3 processes on one PostgreSQL", () => {
  let scope: Scope.CloseableScope;
  let config: Extract<DatabaseConfig, { kind: "postgres" }>;
  let served: LoopbackServer;
  let fake: HubSpotFake;
  const arrivals: Array<{ readonly at: number; readonly status: number }> = [];
  let workers: WorkerProcess[] = [];

  beforeAll(async () => {
    scope = Effect.runSync(Scope.make());
    config = (await Effect.runPromise(Scope.extend(freshDatabaseConfig("postgres"), scope))) as typeof config;
    served = await serveOnLoopback((url) => {
      fake = createHubSpotFake({ baseUrl: url });
      return async (request) => {
        const at = Date.now();
        const response = await fake.handle(request);
        arrivals.push({ at, status: response.status });
        return response;
      };
    });
    fake.seedContacts(50);
    fake.knobs.rateLimit = { max: perSecondLimit, intervalMs: 1_000 };

    const secretKey = randomBytes(32);
    const runtime = ManagedRuntime.make(
      Engine.layer({
        database: config,
        secretKey: Redacted.make(secretKey),
        connectors: builtinConnectors,
        egress: loopbackEgressOptions,
      }),
    );
    const target = await runtime.runPromise(
      Effect.gen(function* () {
        const tenant = yield* (yield* Tenants).create({ name: "budget" });
        const connection = yield* (yield* Connections).create(tenant.id, {
          connector: "hubspot",
          name: "shared",
          // 10 pages of 5 contacts per full sync; the budget is exactly `rate` (no header hints).
          config: { baseUrl: served.url, accessToken: hubSpotFakeToken, listPageSize: 5, requestsPerSecond: rate },
        });
        return { tenantId: tenant.id, connectionId: connection.id };
      }),
    );
    await runtime.dispose();
    workers = await Promise.all(
      [1, 2, 3].map((i) =>
        spawnWorker(
          {
            url: config.url,
            name: `p${i}`,
            secretKey: secretKey.toString("base64"),
            ...target,
            entity: "contacts",
          },
          fixture,
        ),
      ),
    );
  }, 180_000);

  afterAll(async () => {
    await stopWorkers(workers);
    await served?.close();
    await Effect.runPromise(Scope.close(scope, Exit.void));
  });

  it("together they stay within the budget: no 429 of our own making, and close to the budget's throughput", {
    timeout: 120_000,
  }, async () => {
    for (const w of workers) w.send({ cmd: "start" });
    await new Promise((r) => setTimeout(r, runMs));
    for (const w of workers) w.send({ cmd: "stop" });
    const done = await Promise.all(workers.map((w) => w.waitFor((e) => e.event === "done", 30_000)));

    const times = arrivals.map((a) => a.at).sort((a, b) => a - b);
    const spanMs = times[times.length - 1]! - times[0]!;
    const perSecond = new Map<number, number>();
    for (const t of times)
      perSecond.set(Math.floor((t - times[0]!) / 1_000), (perSecond.get(Math.floor((t - times[0]!) / 1_000)) ?? 0) + 1);
    console.log(
      `3 processes, budget ${rate}/s burst ${burst}, fake limit ${perSecondLimit} per rolling second: ` +
        `${times.length} requests in ${spanMs} ms (${((times.length * 1_000) / spanMs).toFixed(1)}/s); ` +
        `most in a rolling second ${mostIn(times, 1_000)}; per second ${[...perSecond.values()].join(" ")}; ` +
        `runs ${done.map((d) => `${d.runs} (${d.pages} pages)`).join(", ")}`,
    );

    // No 429: the fake never saw more than its limit in a second; no process was told to back off.
    expect(arrivals.filter((a) => a.status === 429)).toEqual([]);
    expect(arrivals.every((a) => a.status === 200)).toBe(true);
    for (const d of done) expect(d.failures).toEqual({});
    expect(mostIn(times, 1_000)).toBeLessThanOrEqual(perSecondLimit);
    // Over the whole run, what one bucket allows (with the same fifth for timing).
    expect(times.length).toBeLessThanOrEqual(1.2 * (burst + (rate * spanMs) / 1_000));
    // Not starved: together they got most of the budget, and every process synced.
    expect(times.length).toBeGreaterThanOrEqual(0.75 * ((rate * spanMs) / 1_000));
    for (const d of done) expect(d.pages as number).toBeGreaterThan(0);
  });
});
