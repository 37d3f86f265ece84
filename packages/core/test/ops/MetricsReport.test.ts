import { expect, layer } from "@effect/vitest";
import {
  Database,
  JobQueue,
  MetricsReport,
  RunHistory,
  recordRunMetrics,
  syncErrorsTotal,
  syncRecordsTotal,
  syncRunDurationSeconds,
  syncRunsTotal,
} from "@tandem/core";
import { dialects, testEngineLayer } from "@tandem/testkit";
import { Effect, Metric, MetricLabel, TestClock } from "effect";
import { makeTenant, recordRun } from "../fixtures/runHistory.ts";

const services = (dialect: (typeof dialects)[number]) => testEngineLayer({ dialect, connectors: [] });

const HOUR = 3_600_000;

for (const dialect of dialects) {
  layer(services(dialect))(`MetricsReport on ${dialect}`, (it) => {
    it.effect("every figure matches runs with known outcomes", () =>
      Effect.gen(function* () {
        const metrics = yield* MetricsReport;
        const queue = yield* JobQueue;
        const { tenantId, connectionIds } = yield* makeTenant(2);
        const [c1, c2] = connectionIds as [string, string];
        const other = yield* makeTenant(1);

        // The first test of the suite: the shared TestClock is still at 0, so times are absolute.
        // Hour 0: three runs (10 s, 20 s, 30 s); the second fails after creating 4 records.
        yield* recordRun({
          tenantId,
          connectionId: c1,
          entity: "contacts",
          mode: "full",
          durationMs: 10_000,
          outcome: {
            succeeded: {
              created: 5,
              updated: 3,
              unchanged: 2,
              deleted: 2,
              errors: [{ externalId: "x", type: "InvalidRecord", message: "bad" }],
            },
          },
        });
        yield* recordRun({
          tenantId,
          connectionId: c1,
          entity: "contacts",
          mode: "delta",
          durationMs: 20_000,
          outcome: { failed: "Unavailable", created: 4 },
        });
        yield* recordRun({
          tenantId,
          connectionId: c2,
          entity: "companies",
          mode: "delta",
          durationMs: 30_000,
          outcome: { succeeded: { created: 6, unchanged: 100 } },
        });
        // Hour 2: a 40 s run with a business and an unclassified item error.
        yield* TestClock.setTime(2 * HOUR);
        yield* recordRun({
          tenantId,
          connectionId: c1,
          entity: "contacts",
          mode: "delta",
          durationMs: 40_000,
          outcome: {
            succeeded: {
              errors: [
                { externalId: "y", type: "Conflict", message: "c" },
                { externalId: "z", type: "Weird", message: "w" },
              ],
            },
          },
        });
        // Not counted: still running, cancelled, another tenant's, outside the range.
        const runs = yield* RunHistory;
        yield* runs.start({
          tenantId,
          connectionId: c2,
          entity: "companies",
          mode: "full",
          trigger: "api",
          jobId: null,
          attempt: 1,
        });
        const cancelled = yield* runs.start({
          tenantId,
          connectionId: c2,
          entity: "companies",
          mode: "reconcile",
          trigger: "api",
          jobId: null,
          attempt: 1,
        });
        yield* Effect.flatMap(Database, (db) =>
          db.query((k) =>
            k
              .updateTable("sync_runs")
              .set({ status: "cancelled", finished_at: new Date(2 * HOUR + 40_000), duration_ms: 1 })
              .where("id", "=", cancelled)
              .execute(),
          ),
        ).pipe(Effect.orDie);
        yield* recordRun({
          tenantId: other.tenantId,
          connectionId: other.connectionIds[0]!,
          entity: "contacts",
          mode: "full",
          durationMs: 1_000,
          outcome: { failed: "InvalidPage" },
        });
        yield* TestClock.setTime(7 * HOUR);
        yield* recordRun({
          tenantId,
          connectionId: c1,
          entity: "contacts",
          mode: "delta",
          durationMs: 1_000,
          outcome: { succeeded: { created: 1_000 } },
        });

        // Queue depth: queued jobs of the tenant, now.
        yield* queue.enqueue({ kind: "sync", tenantId, connectionId: c1 }).pipe(Effect.orDie);
        yield* queue.enqueue({ kind: "other", tenantId, runAt: new Date(9 * HOUR) }).pipe(Effect.orDie);
        yield* queue.enqueue({ kind: "sync", tenantId: other.tenantId }).pipe(Effect.orDie);

        const report = yield* metrics.query(tenantId, {
          startDate: "1970-01-01T00:00:00Z",
          endDate: "1970-01-01T06:00:00Z",
        });
        expect(report).toMatchObject({
          startDate: "1970-01-01T00:00:00.000Z",
          endDate: "1970-01-01T06:00:00.000Z",
          totalSyncs: 4,
          succeededSyncs: 3,
          failedSyncs: 1,
          successRate: 75,
          avgSyncTimeMs: 25_000,
          // percentile_cont over 10, 20, 30, 40 s: linear interpolation between ranks.
          p50SyncTimeMs: 25_000,
          p95SyncTimeMs: 38_500,
          p99SyncTimeMs: 39_700,
          errorsByType: { transient: 1, validation: 1, business: 1, system: 1 },
          records: 20,
          recordsPerSecond: 0.2,
          queueDepth: 2,
          bucket: "hour",
        });
        expect(report.throughput).toEqual([
          { bucketStart: "1970-01-01T00:00:00.000Z", syncs: 3, failed: 1, records: 20 },
          { bucketStart: "1970-01-01T01:00:00.000Z", syncs: 0, failed: 0, records: 0 },
          { bucketStart: "1970-01-01T02:00:00.000Z", syncs: 1, failed: 0, records: 0 },
          { bucketStart: "1970-01-01T03:00:00.000Z", syncs: 0, failed: 0, records: 0 },
          { bucketStart: "1970-01-01T04:00:00.000Z", syncs: 0, failed: 0, records: 0 },
          { bucketStart: "1970-01-01T05:00:00.000Z", syncs: 0, failed: 0, records: 0 },
        ]);
        // Now is 7 h + 1 s: contacts last succeeded at 7 h + 1 s, companies at 60 s.
        expect(report.freshness).toEqual(
          [
            {
              connectionId: c1,
              entity: "contacts",
              lastSuccessAt: "1970-01-01T07:00:01.000Z",
              secondsSinceLastSuccess: 0,
            },
            {
              connectionId: c2,
              entity: "companies",
              lastSuccessAt: "1970-01-01T00:01:00.000Z",
              secondsSinceLastSuccess: 7 * 3600 + 1 - 60,
            },
          ].sort((a, b) => a.connectionId.localeCompare(b.connectionId)),
        );

        const one = yield* metrics.query(tenantId, {
          startDate: "1970-01-01T00:00:00Z",
          endDate: "1970-01-01T06:00:00Z",
          connectionId: c2,
        });
        expect(one).toMatchObject({
          totalSyncs: 1,
          successRate: 100,
          avgSyncTimeMs: 30_000,
          p99SyncTimeMs: 30_000,
          records: 6,
          recordsPerSecond: 0.2,
          queueDepth: 0,
          errorsByType: { transient: 0, validation: 0, business: 0, system: 0 },
        });
        expect(one.freshness.map((f) => f.entity)).toEqual(["companies"]);

        // A date-only end includes its day: three day buckets.
        const days = yield* metrics.query(tenantId, { startDate: "1970-01-01", endDate: "1970-01-03" });
        expect(days).toMatchObject({
          bucket: "day",
          totalSyncs: 5,
          records: 1_020,
          endDate: "1970-01-04T00:00:00.000Z",
        });
        expect(days.throughput).toEqual([
          { bucketStart: "1970-01-01T00:00:00.000Z", syncs: 5, failed: 1, records: 1_020 },
          { bucketStart: "1970-01-02T00:00:00.000Z", syncs: 0, failed: 0, records: 0 },
          { bucketStart: "1970-01-03T00:00:00.000Z", syncs: 0, failed: 0, records: 0 },
        ]);

        const empty = yield* metrics.query(tenantId, { startDate: "2000-01-01", endDate: "2000-01-01" });
        expect(empty).toMatchObject({
          totalSyncs: 0,
          successRate: null,
          avgSyncTimeMs: null,
          p50SyncTimeMs: null,
          recordsPerSecond: null,
        });
        expect(empty.throughput).toHaveLength(24);
      }),
    );

    it.effect("rejects unreadable and inverted ranges with field paths", () =>
      Effect.gen(function* () {
        const metrics = yield* MetricsReport;
        const bad = yield* Effect.flip(metrics.query("t", { startDate: "soon", endDate: "2026-01-01" }));
        expect(bad).toMatchObject({
          _tag: "InvalidInput",
          issues: [{ path: "startDate", message: "expected an ISO-8601 date or timestamp" }],
        });
        const inverted = yield* Effect.flip(metrics.query("t", { startDate: "2026-02-01", endDate: "2026-01-01" }));
        expect(inverted).toMatchObject({ _tag: "InvalidInput", issues: [{ path: "endDate" }] });
      }),
    );

    it.effect("another tenant's connection is not found, as an unknown one is", () =>
      Effect.gen(function* () {
        const metrics = yield* MetricsReport;
        const mine = yield* makeTenant(1);
        const theirs = yield* makeTenant(1);
        const range = { startDate: "2026-01-01", endDate: "2026-01-31" };
        const own = yield* metrics.query(mine.tenantId, { ...range, connectionId: mine.connectionIds[0]! });
        expect(own.totalSyncs).toBe(0);
        for (const connectionId of [theirs.connectionIds[0]!, "00000000-0000-4000-8000-000000000000"]) {
          const refused = yield* Effect.flip(metrics.query(mine.tenantId, { ...range, connectionId }));
          expect(refused).toMatchObject({ _tag: "ResourceNotFound", resource: "connection", id: connectionId });
        }
      }),
    );

    it.effect("recordRunMetrics counts runs, durations, records by action and errors by class", () =>
      Effect.gen(function* () {
        const runs = yield* RunHistory;
        const { tenantId, connectionIds } = yield* makeTenant(1);
        const mode = MetricLabel.make("mode", "reconcile");
        const succeeded = Metric.taggedWithLabels(syncRunsTotal, [mode, MetricLabel.make("status", "succeeded")]);
        const failed = Metric.taggedWithLabels(syncRunsTotal, [mode, MetricLabel.make("status", "failed")]);
        const created = Metric.taggedWithLabels(syncRecordsTotal, [mode, MetricLabel.make("action", "created")]);
        const deleted = Metric.taggedWithLabels(syncRecordsTotal, [mode, MetricLabel.make("action", "deleted")]);
        const transient = Metric.taggedWithLabels(syncErrorsTotal, [MetricLabel.make("class", "transient")]);
        const validation = Metric.taggedWithLabels(syncErrorsTotal, [MetricLabel.make("class", "validation")]);
        const duration = Metric.taggedWithLabels(syncRunDurationSeconds, [mode]);
        const read = Effect.all({
          succeeded: Metric.value(succeeded).pipe(Effect.map((s) => s.count)),
          failed: Metric.value(failed).pipe(Effect.map((s) => s.count)),
          created: Metric.value(created).pipe(Effect.map((s) => s.count)),
          deleted: Metric.value(deleted).pipe(Effect.map((s) => s.count)),
          transient: Metric.value(transient).pipe(Effect.map((s) => s.count)),
          validation: Metric.value(validation).pipe(Effect.map((s) => s.count)),
          durations: Metric.value(duration).pipe(Effect.map((s) => s.count)),
          durationSum: Metric.value(duration).pipe(Effect.map((s) => s.sum)),
        });
        const before = yield* read;
        const ok = yield* recordRun({
          tenantId,
          connectionId: connectionIds[0]!,
          entity: "items",
          mode: "reconcile",
          durationMs: 2_500,
          outcome: {
            succeeded: {
              created: 7,
              deleted: 2,
              errors: [
                { externalId: "a", type: "InvalidRecord", message: "" },
                { externalId: "b", type: "InvalidRecord", message: "" },
              ],
            },
          },
        });
        const bad = yield* recordRun({
          tenantId,
          connectionId: connectionIds[0]!,
          entity: "items",
          mode: "reconcile",
          durationMs: 500,
          outcome: { failed: "RateLimited" },
        });
        yield* recordRunMetrics(yield* runs.get(tenantId, ok));
        yield* recordRunMetrics(yield* runs.get(tenantId, bad));
        const after = yield* read;
        expect({
          succeeded: after.succeeded - before.succeeded,
          failed: after.failed - before.failed,
          created: after.created - before.created,
          deleted: after.deleted - before.deleted,
          transient: after.transient - before.transient,
          validation: after.validation - before.validation,
          durations: after.durations - before.durations,
          durationSum: after.durationSum - before.durationSum,
        }).toEqual({
          succeeded: 1,
          failed: 1,
          created: 7,
          deleted: 2,
          transient: 1,
          validation: 2,
          durations: 2,
          durationSum: 3,
        });
      }),
    );
  });
}
