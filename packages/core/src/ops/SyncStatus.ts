import { Clock, Context, Effect, Layer } from "effect";
import { Database } from "../db/Database.ts";
import type { ResourceNotFound } from "../errors/Errors.ts";
import { JobQueue, type JobView } from "../queue/JobQueue.ts";
import { Scheduler } from "../queue/Scheduler.ts";
import { Connections } from "../tenancy/Connections.ts";
import { RunHistory, type SyncRunView, toRunView } from "./RunHistory.ts";

export interface EntityStatus {
  readonly entity: string;
  readonly lastRuns: {
    readonly full: SyncRunView | null;
    readonly delta: SyncRunView | null;
    readonly reconcile: SyncRunView | null;
  };
  readonly deltaCursor: string | null;
  /** Seconds since the last successful full or delta run finished (null: never synced). */
  readonly freshnessSeconds: number | null;
  readonly nextRuns: { readonly delta: string | null; readonly reconcile: string | null };
  readonly pendingChanges: number;
  readonly failedRecords: number;
}

export interface ConnectionSyncStatus {
  readonly connectionId: string;
  readonly paused: boolean;
  /** The last finished run of any entity. */
  readonly lastSync: {
    readonly at: string;
    readonly entity: string;
    readonly mode: string;
    readonly status: string;
  } | null;
  /** Local changes not yet written to the remote. */
  readonly pendingChanges: number;
  /** Sync runs that ended failed in the last 24 hours. */
  readonly failedSyncs: number;
  readonly entities: ReadonlyArray<EntityStatus>;
}

/** A job's live progress, as `jobs.watch` streams it. */
export interface JobProgress {
  readonly jobId: string;
  readonly kind: string;
  readonly status: JobView["status"];
  readonly attempt: number;
  readonly maxAttempts: number;
  /** `queued`, `running`, `retrying` (waiting for its next attempt), or the final status. */
  readonly phase: string;
  readonly pages: number;
  /** Records handled so far: created + updated + unchanged + deleted. */
  readonly processed: number;
  readonly created: number;
  readonly updated: number;
  readonly unchanged: number;
  readonly deleted: number;
  readonly errors: number;
  readonly recordsPerSecond: number;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
  readonly error: string | null;
}

/** Statuses after which a job changes no more. */
export const finalJobStatuses: ReadonlySet<string> = new Set(["completed", "dead", "cancelled"]);

export interface SyncStatusDeps {
  readonly db: Context.Tag.Service<Database>;
  readonly connections: Context.Tag.Service<Connections>;
  readonly scheduler: Context.Tag.Service<Scheduler>;
  readonly queue: Context.Tag.Service<JobQueue>;
  readonly runs: Context.Tag.Service<RunHistory>;
}

/** A connection's sync status: last runs, freshness, next scheduled runs and pending work, per entity. */
export const connectionSyncStatus = (
  { db, connections, scheduler }: SyncStatusDeps,
  tenantId: string,
  connectionId: string,
) =>
  Effect.gen(function* () {
    const resolved = yield* connections.resolve(tenantId, connectionId);
    const now = yield* Clock.currentTimeMillis;
    const entities = Object.keys(resolved.connector.entities);
    const latest = yield* db
      .query((k) =>
        k
          .selectFrom("sync_runs")
          .selectAll()
          .distinctOn(["entity", "mode"])
          .where("connection_id", "=", connectionId)
          .where("status", "!=", "running")
          .orderBy("entity")
          .orderBy("mode")
          .orderBy("started_at", "desc")
          .execute(),
      )
      .pipe(Effect.orDie);
    const lastSuccess = yield* db
      .query((k) =>
        k
          .selectFrom("sync_runs")
          .select(["entity", (eb) => eb.fn.max("finished_at").as("at")])
          .where("connection_id", "=", connectionId)
          .where("status", "=", "succeeded")
          .where("mode", "in", ["full", "delta"])
          .groupBy("entity")
          .execute(),
      )
      .pipe(Effect.orDie);
    const records = yield* db
      .query((k) =>
        k
          .selectFrom("records")
          .select([
            "entity",
            (eb) => eb.fn.countAll<string>().filterWhere("sync_status", "=", "pending").as("pending"),
            (eb) => eb.fn.countAll<string>().filterWhere("sync_status", "=", "failed").as("failed"),
          ])
          .where("connection_id", "=", connectionId)
          .where("deleted_at", "is", null)
          .groupBy("entity")
          .execute(),
      )
      .pipe(Effect.orDie);
    const cursors = yield* db
      .query((k) =>
        k
          .selectFrom("sync_cursors")
          .select(["entity", "delta_cursor"])
          .where("connection_id", "=", connectionId)
          .execute(),
      )
      .pipe(Effect.orDie);
    const failedSyncs = yield* db
      .query((k) =>
        k
          .selectFrom("sync_runs")
          .select((eb) => eb.fn.countAll<string>().as("n"))
          .where("connection_id", "=", connectionId)
          .where("status", "=", "failed")
          .where("finished_at", ">", new Date(now - 86_400_000))
          .executeTakeFirstOrThrow(),
      )
      .pipe(Effect.orDie);
    const schedules = yield* scheduler.list({ connectionId });

    const runOf = (entity: string, mode: string) => {
      const row = latest.find((r) => r.entity === entity && r.mode === mode);
      return row === undefined ? null : toRunView(row);
    };
    const nextOf = (entity: string, mode: string) =>
      schedules.find((s) => s.name === `sync:${connectionId}:${entity}:${mode}`)?.nextTickAt ?? null;
    const entityStatuses = entities.map((entity): EntityStatus => {
      const success = lastSuccess.find((r) => r.entity === entity)?.at;
      const counts = records.find((r) => r.entity === entity);
      const cursor = cursors.find((c) => c.entity === entity)?.delta_cursor;
      return {
        entity,
        lastRuns: {
          full: runOf(entity, "full"),
          delta: runOf(entity, "delta"),
          reconcile: runOf(entity, "reconcile"),
        },
        deltaCursor: cursor ? cursor.toISOString() : null,
        freshnessSeconds: success ? Math.max(0, Math.round((now - new Date(success).getTime()) / 1000)) : null,
        nextRuns: { delta: nextOf(entity, "delta"), reconcile: nextOf(entity, "reconcile") },
        pendingChanges: Number(counts?.pending ?? 0),
        failedRecords: Number(counts?.failed ?? 0),
      };
    });
    const last = [...latest].sort((a, b) => (b.finished_at?.getTime() ?? 0) - (a.finished_at?.getTime() ?? 0))[0];
    return {
      connectionId,
      paused: resolved.row.paused,
      lastSync: last?.finished_at
        ? { at: last.finished_at.toISOString(), entity: last.entity, mode: last.mode, status: last.status }
        : null,
      pendingChanges: entityStatuses.reduce((n, e) => n + e.pendingChanges, 0),
      failedSyncs: Number(failedSyncs.n),
      entities: entityStatuses,
    } satisfies ConnectionSyncStatus;
  });

/** A job's progress now (its current attempt's run, if it is a sync). */
export const jobProgress = ({ queue, runs }: SyncStatusDeps, tenantId: string, jobId: string) =>
  Effect.gen(function* () {
    const job = yield* queue.get(jobId, tenantId);
    const run = (yield* runs.ofJob(jobId)).at(-1);
    const now = yield* Clock.currentTimeMillis;
    const processed = run ? run.created + run.updated + run.unchanged + run.deleted : 0;
    const seconds = run
      ? ((run.finishedAt ? new Date(run.finishedAt).getTime() : now) - new Date(run.startedAt).getTime()) / 1000
      : 0;
    const phase = finalJobStatuses.has(job.status)
      ? job.status
      : job.status === "queued" && job.attempts > 0
        ? "retrying"
        : job.status;
    return {
      jobId,
      kind: job.kind,
      status: job.status,
      attempt: job.attempts,
      maxAttempts: job.maxAttempts,
      phase,
      pages: run?.pages ?? 0,
      processed,
      created: run?.created ?? 0,
      updated: run?.updated ?? 0,
      unchanged: run?.unchanged ?? 0,
      deleted: run?.deleted ?? 0,
      errors: run?.itemErrors ?? 0,
      recordsPerSecond: seconds > 0 ? Math.round((processed / seconds) * 10) / 10 : 0,
      startedAt: job.startedAt,
      finishedAt: job.finishedAt,
      error: job.lastError?.message ?? run?.errorMessage ?? null,
    } satisfies JobProgress;
  });

/** The status read model of syncs: what each connection's entities last did and will do, and live job progress. */
export class SyncStatus extends Context.Tag("@tandem/core/SyncStatus")<
  SyncStatus,
  {
    readonly status: (tenantId: string, connectionId: string) => Effect.Effect<ConnectionSyncStatus, ResourceNotFound>;
    /** A job's progress now (its current attempt's run, if it is a sync). */
    readonly progress: (tenantId: string, jobId: string) => Effect.Effect<JobProgress, ResourceNotFound>;
  }
>() {
  /** Needs Database, Connections, Scheduler, JobQueue and RunHistory. */
  static readonly layerNoDeps = Layer.effect(
    SyncStatus,
    Effect.gen(function* () {
      const deps: SyncStatusDeps = {
        db: yield* Database,
        connections: yield* Connections,
        scheduler: yield* Scheduler,
        queue: yield* JobQueue,
        runs: yield* RunHistory,
      };
      return SyncStatus.of({
        status: Effect.fn("SyncStatus.status")((tenantId, connectionId) =>
          connectionSyncStatus(deps, tenantId, connectionId),
        ),
        progress: Effect.fn("SyncStatus.progress")((tenantId, jobId) => jobProgress(deps, tenantId, jobId)),
      });
    }),
  );

  /** Needs Database and the roots below Connections, Scheduler and JobQueue. */
  static readonly layer = SyncStatus.layerNoDeps.pipe(
    Layer.provide(Layer.mergeAll(Connections.layer, Scheduler.layer, JobQueue.layer, RunHistory.layer)),
  );
}
