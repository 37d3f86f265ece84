import { Clock, Context, Effect, Layer, Metric, MetricBoundaries, MetricLabel } from "effect";
import { sql } from "kysely";
import { Database } from "../db/Database.ts";
import { isStorableDate } from "../db/Storable.ts";
import type { ErrorClass } from "../db/schema.ts";
import { InvalidInput, ResourceNotFound } from "../errors/Errors.ts";
import type { SyncRunView } from "./RunHistory.ts";

/** The error classes `errorsByType` reports, in order. */
export const ERROR_CLASSES: ReadonlyArray<ErrorClass> = ["transient", "validation", "business", "system"];

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** Ranges up to this long get hour buckets; longer ones get day buckets. */
const HOURLY_UP_TO_MS = 2 * DAY_MS;
/** About ten years of day buckets: beyond it a request is a typo, not a report. */
const MAX_RANGE_MS = 3_660 * DAY_MS;
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

/** What `MetricsReport.query` reports over. */
export interface SyncMetricsQuery {
  /** Inclusive. ISO-8601 timestamp or date (`2024-01-01` is that day's 00:00 UTC). */
  readonly startDate: string | Date;
  /**
   * Exclusive. ISO-8601 timestamp or date; a date alone (`2024-12-31`) includes that
   * whole day, so `2024-01-01`..`2024-12-31` is the year 2024.
   */
  readonly endDate: string | Date;
  /** Only this connection's runs, jobs and entities. */
  readonly connectionId?: string | undefined;
}

/** Cluster-wide values read at scrape time for `GET /metrics` (gauges that live in the database). */
export interface SyncGauges {
  /** Live jobs by kind and status (`queued` or `running`), every tenant. */
  readonly jobs: ReadonlyArray<{
    readonly kind: string;
    readonly status: "queued" | "running";
    readonly count: number;
  }>;
  /**
   * Per connection x entity that has a sync cursor (it has had a successful full or
   * delta run): seconds since the last one finished, as in `SyncMetricsReport.freshness`.
   */
  readonly freshness: ReadonlyArray<{
    readonly tenantId: string;
    readonly connectionId: string;
    readonly entity: string;
    readonly secondsSinceLastSuccess: number;
  }>;
}

/** One time bucket of `throughput`. */
export interface ThroughputBucket {
  /** Start of the bucket (UTC hour or day), ISO-8601. */
  readonly bucketStart: string;
  /** Finished runs (succeeded or failed) started in the bucket. */
  readonly syncs: number;
  /** Of those, the failed ones. */
  readonly failed: number;
  /** Records they created, updated or deleted. */
  readonly records: number;
}

/** Freshness of one connection x entity, at query time. */
export interface EntityFreshness {
  readonly connectionId: string;
  readonly entity: string;
  /** When the last successful full or delta run finished; null if none ever did. */
  readonly lastSuccessAt: string | null;
  /** Whole seconds since `lastSuccessAt`; null if no full or delta run ever succeeded. */
  readonly secondsSinceLastSuccess: number | null;
}

/**
 * Sync metrics of one tenant over a date range. "Runs" are rows of `sync_runs`:
 * one per attempt, so a job that failed twice and then succeeded is three runs.
 * Unless said otherwise a figure covers the runs that *started* in
 * [startDate, endDate) and *finished* succeeded or failed (running runs are not
 * over yet; cancelled ones were stopped by someone and are neither).
 */
export interface SyncMetricsReport {
  /** The range as applied (ISO-8601; endDate exclusive). */
  readonly startDate: string;
  readonly endDate: string;
  /** Finished runs (succeeded + failed) started in the range. */
  readonly totalSyncs: number;
  readonly succeededSyncs: number;
  readonly failedSyncs: number;
  /** succeeded / totalSyncs as a percentage 0-100 (two decimals); null when totalSyncs is 0. */
  readonly successRate: number | null;
  /** Mean run duration (started to finished) in ms, rounded; null when totalSyncs is 0. */
  readonly avgSyncTimeMs: number | null;
  /** Duration percentiles in ms (continuous, interpolated: `percentile_cont`), rounded; null when no runs. */
  readonly p50SyncTimeMs: number | null;
  readonly p95SyncTimeMs: number | null;
  readonly p99SyncTimeMs: number | null;
  /**
   * Errors by class, summed over the runs: each item error of a run (a record that
   * failed) plus the run's own failure (one per failed run). See `errorClassOf`.
   */
  readonly errorsByType: Readonly<Record<ErrorClass, number>>;
  /** Records created + updated + deleted by the runs (unchanged records are not work done). */
  readonly records: number;
  /**
   * records / the runs' summed duration in seconds: the rate while syncing, not
   * averaged over idle time. null when the summed duration is 0.
   */
  readonly recordsPerSecond: number | null;
  /** Jobs of the tenant (or connection) queued now, due or waiting for a retry: not range-bound. */
  readonly queueDepth: number;
  /** Per connection x entity that ever ran: seconds since its last successful full or delta run, now. */
  readonly freshness: ReadonlyArray<EntityFreshness>;
  /** Hour buckets for ranges up to 2 days, day buckets (UTC) beyond; every bucket of the range, zeros included. */
  readonly bucket: "hour" | "day";
  readonly throughput: ReadonlyArray<ThroughputBucket>;
}

const parseDate = (value: string | Date, endOfDay: boolean) => {
  if (value instanceof Date) return isStorableDate(value) ? value : undefined;
  if (typeof value !== "string") return undefined;
  const date = new Date(DATE_ONLY.test(value) ? `${value}T00:00:00Z` : value);
  // A date PostgreSQL's timestamptz cannot hold failed the query as a 500.
  if (!isStorableDate(date)) return undefined;
  return endOfDay && DATE_ONLY.test(value) ? new Date(date.getTime() + DAY_MS) : date;
};

/** Validates and normalizes the range; a date-only end includes its whole day. */
export const metricsRange = (input: SyncMetricsQuery): Effect.Effect<{ start: Date; end: Date }, InvalidInput> => {
  const start = parseDate(input.startDate, false);
  const end = parseDate(input.endDate, true);
  const issues = [
    ...(start === undefined ? [{ path: "startDate", message: "expected an ISO-8601 date or timestamp" }] : []),
    ...(end === undefined ? [{ path: "endDate", message: "expected an ISO-8601 date or timestamp" }] : []),
  ];
  if (start !== undefined && end !== undefined) {
    if (end.getTime() <= start.getTime()) issues.push({ path: "endDate", message: "endDate must be after startDate" });
    else if (end.getTime() - start.getTime() > MAX_RANGE_MS) {
      issues.push({ path: "endDate", message: "the range may span at most 3660 days" });
    }
  }
  return issues.length > 0 || start === undefined || end === undefined
    ? Effect.fail(new InvalidInput({ issues }))
    : Effect.succeed({ start, end });
};

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const round = (v: number | null, digits = 0) => (v === null ? null : Number(v.toFixed(digits)));

/**
 * Sync metrics from the run history, aggregated in SQL (a handful of statements
 * per query, however many runs the range holds).
 */
export class MetricsReport extends Context.Tag("@tandem/core/MetricsReport")<
  MetricsReport,
  {
    /**
     * The tenant's metrics over a range; InvalidInput for an unparseable or empty range,
     * ResourceNotFound for a `connectionId` that is not one of the tenant's connections.
     */
    readonly query: (
      tenantId: string,
      input: SyncMetricsQuery,
    ) => Effect.Effect<SyncMetricsReport, InvalidInput | ResourceNotFound>;
    /** Queue depth and freshness of every tenant, for the Prometheus gauges (read at scrape time). */
    readonly gauges: Effect.Effect<SyncGauges>;
  }
>() {
  /** Needs Database. */
  static readonly layer = Layer.effect(
    MetricsReport,
    Effect.gen(function* () {
      const db = yield* Database;

      return {
        query: Effect.fn("MetricsReport.query")(function* (tenantId: string, input: SyncMetricsQuery) {
          const { start, end } = yield* metricsRange(input);
          if (input.connectionId !== undefined) {
            // Another tenant's connection is "not found", as everywhere else: zeros would confirm it exists.
            const connectionId = input.connectionId;
            const owned = yield* db
              .query((k) =>
                k
                  .selectFrom("connections")
                  .select("id")
                  .where("id", "=", connectionId)
                  .where("tenant_id", "=", tenantId)
                  .executeTakeFirst(),
              )
              .pipe(Effect.orDie);
            if (owned === undefined) return yield* new ResourceNotFound({ resource: "connection", id: connectionId });
          }
          const now = yield* Clock.currentTimeMillis;
          const bucketMs = end.getTime() - start.getTime() <= HOURLY_UP_TO_MS ? HOUR_MS : DAY_MS;
          const bucketSeconds = bucketMs / 1000;
          const connection = input.connectionId === undefined ? sql`` : sql`and connection_id = ${input.connectionId}`;
          const inRange = sql`tenant_id = ${tenantId} ${connection}
            and started_at >= ${start} and started_at < ${end}
            and status in ('succeeded', 'failed')`;

          const summary = yield* db
            .query((k) =>
              sql<Record<string, unknown>>`
                select
                  count(*) as total,
                  count(*) filter (where status = 'succeeded') as succeeded,
                  count(*) filter (where status = 'failed') as failed,
                  avg(duration_ms) as avg_ms,
                  percentile_cont(0.5) within group (order by duration_ms) as p50,
                  percentile_cont(0.95) within group (order by duration_ms) as p95,
                  percentile_cont(0.99) within group (order by duration_ms) as p99,
                  sum(duration_ms) as total_ms,
                  sum(created + updated + deleted) as records,
                  sum(coalesce((errors_by_type->>'transient')::int, 0)) as transient,
                  sum(coalesce((errors_by_type->>'validation')::int, 0)) as validation,
                  sum(coalesce((errors_by_type->>'business')::int, 0)) as business,
                  sum(coalesce((errors_by_type->>'system')::int, 0)) as system
                from sync_runs
                where ${inRange}`.execute(k),
            )
            .pipe(Effect.orDie);
          const buckets = yield* db
            .query((k) =>
              sql<{ bucket: unknown; syncs: unknown; failed: unknown; records: unknown }>`
                select
                  floor(extract(epoch from started_at) / ${sql.lit(bucketSeconds)}) * ${sql.lit(bucketSeconds)} as bucket,
                  count(*) as syncs,
                  count(*) filter (where status = 'failed') as failed,
                  sum(created + updated + deleted) as records
                from sync_runs
                where ${inRange}
                group by 1
                order by 1`.execute(k),
            )
            .pipe(Effect.orDie);
          const queued = yield* db
            .query((k) =>
              k
                .selectFrom("jobs")
                .select((eb) => eb.fn.countAll<string>().as("n"))
                .where("tenant_id", "=", tenantId)
                .where("status", "=", "queued")
                .$if(input.connectionId !== undefined, (q) => q.where("connection_id", "=", input.connectionId!))
                .executeTakeFirstOrThrow(),
            )
            .pipe(Effect.orDie);
          const fresh = yield* db
            .query((k) =>
              k
                .selectFrom("sync_runs")
                .select([
                  "connection_id",
                  "entity",
                  (eb) =>
                    eb.fn
                      .max("finished_at")
                      .filterWhere((w) => w.and([w("status", "=", "succeeded"), w("mode", "in", ["full", "delta"])]))
                      .as("last_success"),
                ])
                .where("tenant_id", "=", tenantId)
                .$if(input.connectionId !== undefined, (q) => q.where("connection_id", "=", input.connectionId!))
                .groupBy(["connection_id", "entity"])
                .orderBy("connection_id")
                .orderBy("entity")
                .execute(),
            )
            .pipe(Effect.orDie);

          const s = summary.rows[0] ?? {};
          const total = num(s.total);
          const succeeded = num(s.succeeded);
          const totalMs = num(s.total_ms);
          const records = num(s.records);
          const byBucket = new Map(buckets.rows.map((b) => [num(b.bucket) * 1000, b]));
          const throughput: ThroughputBucket[] = [];
          for (let at = Math.floor(start.getTime() / bucketMs) * bucketMs; at < end.getTime(); at += bucketMs) {
            const b = byBucket.get(at);
            throughput.push({
              bucketStart: new Date(at).toISOString(),
              syncs: num(b?.syncs),
              failed: num(b?.failed),
              records: num(b?.records),
            });
          }
          return {
            startDate: start.toISOString(),
            endDate: end.toISOString(),
            totalSyncs: total,
            succeededSyncs: succeeded,
            failedSyncs: num(s.failed),
            successRate: total === 0 ? null : round((succeeded / total) * 100, 2),
            avgSyncTimeMs: round(numOrNull(s.avg_ms)),
            p50SyncTimeMs: round(numOrNull(s.p50)),
            p95SyncTimeMs: round(numOrNull(s.p95)),
            p99SyncTimeMs: round(numOrNull(s.p99)),
            errorsByType: {
              transient: num(s.transient),
              validation: num(s.validation),
              business: num(s.business),
              system: num(s.system),
            },
            records,
            recordsPerSecond: totalMs === 0 ? null : round(records / (totalMs / 1000), 3),
            queueDepth: num(queued.n),
            freshness: fresh.map((f) => {
              const last = f.last_success === null ? null : new Date(f.last_success);
              return {
                connectionId: f.connection_id,
                entity: f.entity,
                lastSuccessAt: last?.toISOString() ?? null,
                secondsSinceLastSuccess: last === null ? null : Math.max(0, Math.floor((now - last.getTime()) / 1000)),
              };
            }),
            bucket: bucketMs === HOUR_MS ? "hour" : "day",
            throughput,
          } satisfies SyncMetricsReport;
        }),

        gauges: Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis;
          const jobs = yield* db
            .query((k) =>
              k
                .selectFrom("jobs")
                .select(["kind", "status", (eb) => eb.fn.countAll<string>().as("n")])
                .where("status", "in", ["queued", "running"])
                .groupBy(["kind", "status"])
                .orderBy("kind")
                .orderBy("status")
                .execute(),
            )
            .pipe(Effect.orDie);
          // sync_cursors has one row per connection x entity that ever synced, so this is
          // one indexed lookup per entity rather than a scan of the whole run history.
          const fresh = yield* db
            .query((k) =>
              k
                .selectFrom("sync_cursors as sc")
                .innerJoin("connections as c", "c.id", "sc.connection_id")
                .select([
                  "c.tenant_id",
                  "sc.connection_id",
                  "sc.entity",
                  (eb) =>
                    eb
                      .selectFrom("sync_runs as r")
                      .select((r) => r.fn.max("r.finished_at").as("at"))
                      .whereRef("r.connection_id", "=", "sc.connection_id")
                      .whereRef("r.entity", "=", "sc.entity")
                      .where("r.mode", "in", ["full", "delta"])
                      .where("r.status", "=", "succeeded")
                      .as("last_success"),
                ])
                .orderBy("c.tenant_id")
                .orderBy("sc.connection_id")
                .orderBy("sc.entity")
                .execute(),
            )
            .pipe(Effect.orDie);
          return {
            jobs: jobs.map((j) => ({ kind: j.kind, status: j.status as "queued" | "running", count: num(j.n) })),
            freshness: fresh.flatMap((f) =>
              f.last_success === null
                ? []
                : [
                    {
                      tenantId: f.tenant_id,
                      connectionId: f.connection_id,
                      entity: f.entity,
                      secondsSinceLastSuccess: Math.max(
                        0,
                        Math.floor((now - new Date(f.last_success).getTime()) / 1000),
                      ),
                    },
                  ],
            ),
          } satisfies SyncGauges;
        }).pipe(Effect.withSpan("MetricsReport.gauges")),
      };
    }),
  );
}

// Process-level metrics, for `GET /metrics` (the server mirrors every Effect metric
// into its Prometheus registry). Counters are per process; Prometheus sums them.

/** Finished sync runs, by `mode` and `status` (succeeded | failed | cancelled). */
export const syncRunsTotal = Metric.counter("tandem_sync_runs_total", {
  description: "Finished sync runs (one per attempt), by mode and status",
  incremental: true,
});
/** Duration of finished sync runs, by `mode`: 0.1 s to about 55 min in doubling buckets. */
export const syncRunDurationSeconds = Metric.histogram(
  "tandem_sync_run_duration_seconds",
  MetricBoundaries.exponential({ start: 0.1, factor: 2, count: 16 }),
  "Duration of finished sync runs in seconds, by mode",
);
/** Records written by sync runs, by `mode` and `action` (created | updated | deleted). */
export const syncRecordsTotal = Metric.counter("tandem_sync_records_total", {
  description: "Records created, updated or deleted by sync runs, by mode and action",
  incremental: true,
});
/** Errors of sync runs (item errors and run failures), by `class` (see `errorClassOf`). */
export const syncErrorsTotal = Metric.counter("tandem_sync_errors_total", {
  description: "Sync errors (item errors and run failures), by class",
  incremental: true,
});
/** Inbound webhook lag: from the vendor's event time to the record being synced, 10 ms to about 5.5 min. */
export const webhookLagSeconds = Metric.histogram(
  "tandem_webhook_lag_seconds",
  MetricBoundaries.exponential({ start: 0.01, factor: 2, count: 16 }),
  "Seconds from an inbound webhook event's occurrence to its record being synced",
);

/**
 * Counts one finished run into the process metrics: runs, duration, records by
 * action and errors by class. A run still running is ignored. The sync job handler
 * calls it once per attempt, after the run row is settled.
 */
export const recordRunMetrics = (run: SyncRunView | undefined): Effect.Effect<void> => {
  if (run === undefined || run.status === "running") return Effect.void;
  const mode = MetricLabel.make("mode", run.mode);
  const effects: Array<Effect.Effect<unknown>> = [
    Metric.increment(Metric.taggedWithLabels(syncRunsTotal, [mode, MetricLabel.make("status", run.status)])),
  ];
  if (run.durationMs !== null) {
    effects.push(Metric.update(Metric.taggedWithLabels(syncRunDurationSeconds, [mode]), run.durationMs / 1000));
  }
  for (const action of ["created", "updated", "deleted"] as const) {
    if (run[action] > 0) {
      effects.push(
        Metric.incrementBy(
          Metric.taggedWithLabels(syncRecordsTotal, [mode, MetricLabel.make("action", action)]),
          run[action],
        ),
      );
    }
  }
  for (const [cls, n] of Object.entries(run.errorsByType)) {
    if (n > 0) {
      effects.push(Metric.incrementBy(Metric.taggedWithLabels(syncErrorsTotal, [MetricLabel.make("class", cls)]), n));
    }
  }
  return Effect.all(effects, { discard: true });
};

/** Records one inbound webhook event's lag (now minus its `occurredAt`) into `tandem_webhook_lag_seconds`. */
export const recordWebhookLag = (occurredAt: Date): Effect.Effect<void> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Metric.update(webhookLagSeconds, Math.max(0, (now - occurredAt.getTime()) / 1000)),
  );
