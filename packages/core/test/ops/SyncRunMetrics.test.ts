import { expect, layer } from "@effect/vitest";
import { JobQueue, MetricsReport, SyncJobHandlers, SyncTriggers, syncRecordsTotal, syncRunsTotal } from "@tandem/core";
import {
  AcmeCrm,
  acmeConnector,
  createTestConnection,
  dialects,
  startAcmeServer,
  testEngineLayer,
} from "@tandem/testkit";
import { Clock, Effect, Metric, MetricLabel, TestServices } from "effect";
import { afterAll, beforeAll } from "vitest";

const acme = new AcmeCrm();
let server: ReturnType<typeof startAcmeServer>;
beforeAll(() => {
  server = startAcmeServer(acme);
});
afterAll(() => server.close());

const services = (dialect: (typeof dialects)[number]) => testEngineLayer({ dialect, connectors: [acmeConnector] });

const realSleep = (ms: number) => Effect.promise(() => new Promise((r) => setTimeout(r, ms)));

for (const dialect of dialects) {
  layer(services(dialect), { timeout: 60_000 })(`sync run metrics through the job handler on ${dialect}`, (it) => {
    // The real clock: the worker polls and the fake API keeps its own time.
    it.effect("a sync job's run lands in the process metrics and in MetricsReport.query", () =>
      TestServices.provideLive(
        Effect.gen(function* () {
          acme.reset();
          acme.seed(5);
          const { tenantId, connectionId } = yield* createTestConnection("acme-crm", {
            baseUrl: acme.baseUrl,
            token: acme.token,
          });
          const syncs = yield* SyncTriggers;
          const { handlers } = yield* SyncJobHandlers;
          const queue = yield* JobQueue;
          const mode = MetricLabel.make("mode", "full");
          const runs = Metric.taggedWithLabels(syncRunsTotal, [mode, MetricLabel.make("status", "succeeded")]);
          const created = Metric.taggedWithLabels(syncRecordsTotal, [mode, MetricLabel.make("action", "created")]);
          const before = { runs: (yield* Metric.value(runs)).count, created: (yield* Metric.value(created)).count };
          const started = yield* Clock.currentTimeMillis;

          const { jobId } = yield* syncs.trigger(tenantId, { connectionId, entity: "contacts", mode: "full" });
          yield* Effect.scoped(
            Effect.gen(function* () {
              yield* queue.worker({ handlers, pollMs: 50 });
              for (let i = 0; i < 400; i++) {
                if ((yield* queue.get(jobId)).status === "completed") break;
                yield* realSleep(25);
              }
            }),
          );
          expect((yield* queue.get(jobId)).status).toBe("completed");
          expect((yield* Metric.value(runs)).count - before.runs).toBe(1);
          expect((yield* Metric.value(created)).count - before.created).toBe(5);

          const report = yield* (yield* MetricsReport).query(tenantId, {
            startDate: new Date(started - 1_000),
            endDate: new Date((yield* Clock.currentTimeMillis) + 1_000),
          });
          expect(report).toMatchObject({ totalSyncs: 1, successRate: 100, records: 5, queueDepth: 0 });
          expect(report.freshness).toEqual([
            expect.objectContaining({ connectionId, entity: "contacts", secondsSinceLastSuccess: 0 }),
          ]);

          // The cluster-wide gauges: this entity's freshness, and a queued job of another kind.
          yield* queue.enqueue({ kind: "gauge-probe", tenantId });
          const gauges = yield* (yield* MetricsReport).gauges;
          expect(gauges.freshness.filter((f) => f.connectionId === connectionId)).toEqual([
            { tenantId, connectionId, entity: "contacts", secondsSinceLastSuccess: 0 },
          ]);
          expect(gauges.jobs).toContainEqual({ kind: "gauge-probe", status: "queued", count: 1 });
          expect(gauges.jobs.find((j) => j.kind === "sync")).toBeUndefined();
        }),
      ),
    );
  });
}
