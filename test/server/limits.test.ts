import { type DatabaseConfig, generateApiKey } from "@tandem/core";
import { freshDatabaseConfig } from "@tandem/testkit";
import { Effect, Exit, Scope } from "effect";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startQueryCounter } from "../support/pgQueryCounter.ts";
import { startTestServer, type TestServer, trpcCode } from "../support/server.ts";

const METRICS_TOKEN = generateApiKey();

/** A server on PostgreSQL through a statement-counting proxy; no worker, so nothing polls on its own. */
describe("the HTTP surface's bounds", () => {
  let scope: Scope.CloseableScope;
  let counter: Awaited<ReturnType<typeof startQueryCounter>>;
  let t: TestServer;
  let key: string;
  let otherKey: string;
  let connectionId: string;
  let jobId: string;

  beforeAll(async () => {
    scope = await Effect.runPromise(Scope.make());
    const database = (await Effect.runPromise(Scope.extend(freshDatabaseConfig("postgres"), scope))) as Extract<
      DatabaseConfig,
      { kind: "postgres" }
    >;
    const url = new URL(database.url);
    counter = await startQueryCounter({ host: url.hostname, port: Number(url.port || 5432) });
    url.host = `127.0.0.1:${counter.port}`;
    // The dialect argument only picks the helper's own database, which DATABASE_URL overrides.
    t = await startTestServer("pglite", {
      DATABASE_URL: url.toString(),
      TANDEM_WORKER: "false",
      TANDEM_METRICS_TOKEN: METRICS_TOKEN,
      TANDEM_MAX_WATCHERS_PER_TENANT: "8",
    });
    const admin = t.client(t.adminKey);
    const tenant = await admin.tenants.create.mutate({ name: "bounds" });
    const other = await admin.tenants.create.mutate({ name: "other" });
    key = (await admin.apiKeys.create.mutate({ tenantId: tenant.id, name: "k" })).key;
    otherKey = (await admin.apiKeys.create.mutate({ tenantId: other.id, name: "k" })).key;
    const connection = await t.client(key).connections.create.mutate({
      connector: "hubspot",
      name: "crm",
      config: { accessToken: "pat-bounds" },
    });
    connectionId = connection.id;
    // No worker: the job stays queued, so its watchers poll for as long as they watch.
    jobId = (await t.client(key).sync.trigger.mutate({ connectionId, entity: "contacts", mode: "full" })).jobId;
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await counter?.close();
    await Effect.runPromise(Scope.close(scope, Exit.void));
  });

  it("health and /readyz share one database probe, however many arrive at once", async () => {
    const before = counter.statements();
    const answers = await Promise.all([
      ...Array.from({ length: 100 }, () => t.client().health.query()),
      ...Array.from({ length: 20 }, () =>
        fetch(`${t.server.url}/readyz`).then((r) => r.json() as Promise<{ status: string }>),
      ),
    ]);
    expect(answers.every((a) => a.status === "ok" || a.status === "ready")).toBe(true);
    // One probe (a few statements), or two if the second fell across the cache's one-second edge.
    expect(counter.statements() - before).toBeLessThanOrEqual(10);
  });

  it("a tRPC batch over the cap is refused before any call runs, and an overlong URL before tRPC", async () => {
    const before = counter.statements();
    const batch = (n: number) => `${t.server.url}/trpc/${Array(n).fill("health").join(",")}?batch=1`;
    const overCap = await fetch(batch(51));
    expect(overCap.status).toBe(400);
    expect(JSON.stringify(await overCap.json())).toContain("Batch call exceeds maximum size");
    // The flood that slowed other tenants down: 2,200 calls in one GET, 15 KB of URL.
    const flood = await fetch(batch(2_200));
    expect(flood.status).toBe(414);
    expect(await flood.json()).toEqual({
      error: {
        message: "request URL longer than 8192 bytes: send a smaller input",
        code: -32600,
        data: { code: "BAD_REQUEST", httpStatus: 414 },
      },
    });
    expect(counter.statements() - before).toBe(0);
    expect((await fetch(batch(50))).status).toBe(200);
  });

  it("/metrics wants the metrics token or the admin key", async () => {
    const scrape = (authorization?: string) =>
      fetch(`${t.server.url}/metrics`, { headers: authorization ? { authorization } : {} });
    const anonymous = await scrape();
    expect(anonymous.status).toBe(401);
    expect(await anonymous.text()).not.toContain(connectionId);
    expect((await scrape(`Bearer ${key}`)).status).toBe(401);
    expect((await scrape("Bearer not-the-token")).status).toBe(401);
    const withToken = await scrape(`Bearer ${METRICS_TOKEN}`);
    expect(withToken.status).toBe(200);
    expect(await withToken.text()).toContain("tandem_queue_jobs");
    expect((await scrape(`Bearer ${t.adminKey}`)).status).toBe(200);
  });

  it("sync.metrics of another tenant's connection is NOT_FOUND", async () => {
    const range = { startDate: "2026-01-01", endDate: "2026-01-31" };
    expect((await t.client(key).sync.metrics.query({ ...range, connectionId })).totalSyncs).toBe(0);
    expect(await trpcCode(t.client(otherKey).sync.metrics.query({ ...range, connectionId }))).toBe("NOT_FOUND");
  });

  it("a key in connectionParams is accepted by subscriptions only", async () => {
    const params = encodeURIComponent(JSON.stringify({ authorization: `Bearer ${key}` }));
    const list = await fetch(`${t.server.url}/trpc/connections.list?connectionParams=${params}`);
    expect(list.status).toBe(401);
    const input = encodeURIComponent(JSON.stringify({ id: jobId }));
    const controller = new AbortController();
    const watch = await fetch(`${t.server.url}/trpc/jobs.watch?input=${input}&connectionParams=${params}`, {
      signal: controller.signal,
    });
    expect(watch.status).toBe(200);
    const reader = watch.body!.getReader();
    let text = "";
    while (!text.includes(jobId)) text += new TextDecoder().decode((await reader.read()).value);
    expect(text).not.toContain("UNAUTHORIZED");
    controller.abort();
  });

  it("the watchers of one job share one poll, and a tenant's watchers are capped", async () => {
    const client = t.client(key);
    const subscriptions: Array<{ unsubscribe: () => void }> = [];
    const watch = () =>
      new Promise<void>((resolve, reject) => {
        subscriptions.push(
          client.jobs.watch.subscribe({ id: jobId }, { onData: () => resolve(), onError: (e) => reject(e) }),
        );
      });
    const readsOver = async (ms: number) => {
      const before = counter.statements();
      await new Promise((resolve) => setTimeout(resolve, ms));
      return counter.statements() - before;
    };
    await watch();
    const alone = await readsOver(2_000);
    await Promise.all(Array.from({ length: 7 }, watch));
    const eight = await readsOver(2_000);
    console.info(`statements in 2 s: ${alone} with one watcher, ${eight} with eight`);
    // Eight watchers polling apart would read eight times as often as one.
    expect(alone).toBeGreaterThan(0);
    expect(eight).toBeLessThan(alone * 2 + 4);

    const refused = await watch().then(
      () => "watched",
      (e: { data?: { code?: string }; message?: string }) => `${e.data?.code}: ${e.message}`,
    );
    expect(refused).toMatch(/^TOO_MANY_REQUESTS: at most 8 jobs\.watch subscriptions/);

    // Another tenant's watcher of the same id is not served from this poll: NOT_FOUND, as elsewhere.
    const foreign = await new Promise<string>((resolve) => {
      const s = t.client(otherKey).jobs.watch.subscribe(
        { id: jobId },
        {
          onData: () => resolve("watched"),
          onError: (e) => {
            s.unsubscribe();
            resolve(String((e as { data?: { code?: string } }).data?.code));
          },
        },
      );
    });
    expect(foreign).toBe("NOT_FOUND");

    // Leaving frees the slots (and stops the poll once the last watcher is gone).
    for (const s of subscriptions.splice(0)) s.unsubscribe();
    await vi.waitFor(async () => expect(await readsOver(1_000)).toBe(0), { timeout: 15_000 });
    await watch();
    for (const s of subscriptions.splice(0)) s.unsubscribe();
  }, 60_000);
});
