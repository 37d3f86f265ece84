import { Effect } from "effect";
import { sql } from "kysely";
import type { DatabaseService } from "../db/Database.ts";
import type { AlertKind } from "../db/schema.ts";
import { pendingGroups } from "../store/QuarantineRows.ts";
import type { AlertParams } from "./alertParams.ts";

/**
 * The condition of each alert rule kind: one aggregate query over the run history,
 * the job queue or the deletions review queue, answering the subjects that fire now
 * with the figures behind them.
 */

/** One subject a rule fires for, with the figures behind it. */
export interface Firing {
  readonly subject: string;
  readonly connectionId: string | null;
  readonly entity: string | null;
  readonly mode: string | null;
  readonly details: Record<string, unknown>;
}

/** Whose runs and jobs a rule looks at: a tenant, or one of its connections. */
export interface Target {
  readonly tenantId: string;
  readonly connectionId: string | null;
}

const MINUTE_MS = 60_000;

const syncFailures = (db: DatabaseService, target: Target, p: AlertParams["sync_failures"], at: Date) => {
  const scope = target.connectionId;
  const ms = at.getTime();
  return db
    .query((k) =>
      k
        .selectFrom("sync_runs")
        .select([
          "connection_id",
          "entity",
          (eb) => eb.fn.countAll<string>().as("failed"),
          (eb) => eb.fn.max("finished_at").as("last_failure"),
        ])
        .where("tenant_id", "=", target.tenantId)
        .$if(scope !== null, (q) => q.where("connection_id", "=", scope!))
        .where("status", "=", "failed")
        .where("finished_at", ">", new Date(ms - p.windowMinutes * MINUTE_MS))
        .groupBy(["connection_id", "entity"])
        .having((eb) => eb.fn.countAll(), ">=", p.failures)
        .execute(),
    )
    .pipe(
      Effect.orDie,
      Effect.map((rows) =>
        rows.map((r) => ({
          subject: `${r.connection_id}:${r.entity}`,
          connectionId: r.connection_id,
          entity: r.entity,
          mode: null,
          details: {
            failedRuns: Number(r.failed),
            failures: p.failures,
            windowMinutes: p.windowMinutes,
            lastFailureAt: r.last_failure === null ? null : new Date(r.last_failure).toISOString(),
          },
        })),
      ),
    );
};

const errorRate = (db: DatabaseService, target: Target, p: AlertParams["error_rate"], at: Date) => {
  const scope = target.connectionId;
  const ms = at.getTime();
  return db
    .query((k) =>
      k
        .selectFrom("sync_runs")
        .select([
          "connection_id",
          "entity",
          (eb) => eb.fn.countAll<string>().as("total"),
          (eb) => eb.fn.countAll<string>().filterWhere("status", "=", "failed").as("failed"),
        ])
        .where("tenant_id", "=", target.tenantId)
        .$if(scope !== null, (q) => q.where("connection_id", "=", scope!))
        .where("status", "in", ["succeeded", "failed"])
        .where("finished_at", ">", new Date(ms - p.windowMinutes * MINUTE_MS))
        .groupBy(["connection_id", "entity"])
        .execute(),
    )
    .pipe(
      Effect.orDie,
      Effect.map((rows) =>
        rows.flatMap((r) => {
          const total = Number(r.total);
          const failed = Number(r.failed);
          const rate = (failed / total) * 100;
          if (total < p.minRuns || rate <= p.thresholdPercent) return [];
          return [
            {
              subject: `${r.connection_id}:${r.entity}`,
              connectionId: r.connection_id,
              entity: r.entity,
              mode: null,
              details: {
                failedRuns: failed,
                finishedRuns: total,
                errorRatePercent: Number(rate.toFixed(2)),
                thresholdPercent: p.thresholdPercent,
                windowMinutes: p.windowMinutes,
              },
            },
          ];
        }),
      ),
    );
};

const queueBacklog = (db: DatabaseService, target: Target, p: AlertParams["queue_backlog"], at: Date) => {
  const scope = target.connectionId;
  const ms = at.getTime();
  return db
    .query((k) =>
      k
        .selectFrom("jobs")
        .select([
          (eb) => eb.fn.countAll<string>().as("queued"),
          (eb) => eb.fn.min("run_at").filterWhere("run_at", "<=", at).as("oldest_due"),
        ])
        .where("tenant_id", "=", target.tenantId)
        .$if(scope !== null, (q) => q.where("connection_id", "=", scope!))
        .where("status", "=", "queued")
        .executeTakeFirstOrThrow(),
    )
    .pipe(
      Effect.orDie,
      Effect.map((r) => {
        const queued = Number(r.queued);
        const oldest = r.oldest_due === null ? null : new Date(r.oldest_due);
        const waitMs = oldest === null ? 0 : ms - oldest.getTime();
        if (queued <= p.maxQueued && waitMs <= p.maxWaitMinutes * MINUTE_MS) return [];
        return [
          {
            subject: scope === null ? "tenant" : `connection:${scope}`,
            connectionId: scope,
            entity: null,
            mode: null,
            details: {
              queued,
              maxQueued: p.maxQueued,
              oldestWaitSeconds: Math.floor(waitMs / 1000),
              maxWaitMinutes: p.maxWaitMinutes,
            },
          },
        ];
      }),
    );
};

const staleness = (db: DatabaseService, target: Target, p: AlertParams["staleness"], at: Date) => {
  const scope = target.connectionId;
  const ms = at.getTime();
  return db
    .query((k) =>
      k
        .selectFrom("sync_runs as r")
        .innerJoin("connections as c", "c.id", "r.connection_id")
        .select([
          "r.connection_id",
          "r.entity",
          (eb) =>
            eb.fn
              .max("r.finished_at")
              .filterWhere((w) => w.and([w("r.status", "=", "succeeded"), w("r.mode", "in", ["full", "delta"])]))
              .as("last_success"),
          (eb) => eb.fn.min("r.started_at").as("first_run"),
        ])
        .where("r.tenant_id", "=", target.tenantId)
        .where("c.paused", "=", false)
        .$if(scope !== null, (q) => q.where("r.connection_id", "=", scope!))
        .groupBy(["r.connection_id", "r.entity"])
        .execute(),
    )
    .pipe(
      Effect.orDie,
      Effect.map((rows) =>
        rows.flatMap((r) => {
          const since = new Date(r.last_success ?? r.first_run);
          const ageMs = ms - since.getTime();
          if (ageMs <= p.maxAgeMinutes * MINUTE_MS) return [];
          return [
            {
              subject: `${r.connection_id}:${r.entity}`,
              connectionId: r.connection_id,
              entity: r.entity,
              mode: null,
              details: {
                lastSuccessAt: r.last_success === null ? null : new Date(r.last_success).toISOString(),
                secondsSinceLastSuccess: Math.floor(ageMs / 1000),
                maxAgeMinutes: p.maxAgeMinutes,
              },
            },
          ];
        }),
      ),
    );
};

// The latest run is judged whenever it ran: a slow run keeps firing until the next one.
const performance = (db: DatabaseService, target: Target, p: AlertParams["performance"]) => {
  const scope = target.connectionId;
  const connection = scope === null ? sql`` : sql`and connection_id = ${scope}`;
  return db
    .query((k) =>
      sql<{
        connection_id: string;
        entity: string;
        mode: string;
        run_id: string;
        latest_ms: unknown;
        median_ms: unknown;
        samples: unknown;
      }>`
          with ranked as (
            select connection_id, entity, mode, id, duration_ms,
              row_number() over (partition by connection_id, entity, mode order by started_at desc, id desc) as rn
            from sync_runs
            where tenant_id = ${target.tenantId} ${connection}
              and status = 'succeeded' and duration_ms is not null
          )
          select connection_id, entity, mode,
            max(id::text) filter (where rn = 1) as run_id,
            max(duration_ms) filter (where rn = 1) as latest_ms,
            percentile_cont(0.5) within group (order by duration_ms) filter (where rn > 1) as median_ms,
            count(*) filter (where rn > 1) as samples
          from ranked
          where rn <= ${p.samples + 1}
          group by connection_id, entity, mode`.execute(k),
    )
    .pipe(
      Effect.orDie,
      Effect.map(({ rows }) =>
        rows.flatMap((r) => {
          const latest = Number(r.latest_ms);
          const median = Number(r.median_ms);
          const samples = Number(r.samples);
          if (samples < p.minSamples || latest < p.minDurationMs || latest <= p.factor * median) return [];
          return [
            {
              subject: `${r.connection_id}:${r.entity}:${r.mode}`,
              connectionId: r.connection_id,
              entity: r.entity,
              mode: r.mode,
              details: {
                runId: r.run_id,
                durationMs: latest,
                medianMs: Math.round(median),
                samples,
                factor: p.factor,
              },
            },
          ];
        }),
      ),
    );
};

/** Connection x entity pairs with deletions held for review (see DeletionQuarantine). */
const massDeletion = (db: DatabaseService, target: Target, p: AlertParams["mass_deletion"]) =>
  db
    .query((k) => pendingGroups(k, target.tenantId, target.connectionId))
    .pipe(
      Effect.orDie,
      Effect.map((groups) =>
        groups
          .filter((g) => g.pending >= p.minPending)
          .map((g) => ({
            subject: `${g.connectionId}:${g.entity}`,
            connectionId: g.connectionId,
            entity: g.entity,
            mode: null,
            details: {
              pendingDeletions: g.pending,
              sources: g.sources,
              firstDetectedAt: g.firstDetectedAt.toISOString(),
              minPending: p.minPending,
            },
          })),
      ),
    );

/** The subjects firing now, per rule kind. */
export const firingSubjects: {
  readonly [K in AlertKind]: (
    db: DatabaseService,
    target: Target,
    params: AlertParams[K],
    at: Date,
  ) => Effect.Effect<ReadonlyArray<Firing>>;
} = {
  sync_failures: syncFailures,
  error_rate: errorRate,
  queue_backlog: queueBacklog,
  staleness: staleness,
  performance: performance,
  mass_deletion: massDeletion,
};
