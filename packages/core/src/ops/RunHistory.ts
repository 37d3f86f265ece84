import { randomUUID } from "node:crypto";
import { Clock, Context, Effect, Layer } from "effect";
import type { Selectable, Updateable } from "kysely";
import { sql } from "kysely";
import { Database } from "../db/Database.ts";
import type { ErrorClass, SyncRunsTable } from "../db/schema.ts";
import type { SyncProgress, SyncRunResult } from "../sync/EntitySync.ts";

/**
 * Error tags by class, for `errorsByType` in metrics and for alert rules:
 * transient (worth retrying), validation (bad data), business (the remote said
 * no), system (our side or unknown).
 */
const classes: Record<string, ErrorClass> = {
  Unavailable: "transient",
  RateLimited: "transient",
  AuthExpired: "transient",
  InvalidRecord: "validation",
  InvalidPage: "validation",
  InvalidInput: "validation",
  Conflict: "business",
  NotFound: "business",
  EntityNotSupported: "business",
  Quarantined: "business",
};

/** The class of an error tag; anything unknown (defects included) is `system`. */
export const errorClassOf = (tag: string | undefined): ErrorClass => (tag !== undefined && classes[tag]) || "system";

export type SyncRunStatus = SyncRunsTable["status"];

/**
 * The body of a data-modifying CTE that closes the sync runs still `running` of jobs whose
 * attempt just ended: `ended` names an earlier CTE of the statement with the columns `id` (the
 * job), `run_status`, `run_error_type` and `run_error_message`. The queue composes it into the
 * statement that settles or reaps the jobs, so that a run ends in the same transaction as its
 * attempt, also when the handler could not close it (interrupted, its process killed, the
 * database gone at that moment). A run the handler closed itself keeps its own outcome.
 */
export const closeRunsOfEndedJobs = (ended: string, at: Date) => sql`
  update sync_runs r set
    status = e.run_status,
    error_type = coalesce(r.error_type, e.run_error_type),
    error_message = coalesce(r.error_message, e.run_error_message),
    finished_at = ${at}::timestamptz,
    duration_ms = greatest(0, round(extract(epoch from (${at}::timestamptz - r.started_at)) * 1000))::int
  from ${sql.table(ended)} e
  where r.job_id = e.id and r.status = 'running'`;

/** A sync run as status and the API show it. */
export interface SyncRunView {
  readonly id: string;
  readonly connectionId: string;
  readonly entity: string;
  readonly mode: string;
  readonly trigger: string;
  readonly jobId: string | null;
  readonly attempt: number;
  readonly status: SyncRunStatus;
  readonly startedAt: string;
  readonly finishedAt: string | null;
  readonly durationMs: number | null;
  readonly pages: number;
  readonly created: number;
  readonly updated: number;
  readonly unchanged: number;
  readonly deleted: number;
  readonly itemErrors: number;
  readonly errorsByType: Record<string, number>;
  readonly errorType: ErrorClass | null;
  readonly errorMessage: string | null;
}

export const toRunView = (row: Selectable<SyncRunsTable>): SyncRunView => ({
  id: row.id,
  connectionId: row.connection_id,
  entity: row.entity,
  mode: row.mode,
  trigger: row.trigger,
  jobId: row.job_id,
  attempt: row.attempt,
  status: row.status,
  startedAt: row.started_at.toISOString(),
  finishedAt: row.finished_at?.toISOString() ?? null,
  durationMs: row.duration_ms,
  pages: row.pages,
  created: row.created,
  updated: row.updated,
  unchanged: row.unchanged,
  deleted: row.deleted,
  itemErrors: row.item_errors,
  errorsByType: row.errors_by_type,
  errorType: row.error_type,
  errorMessage: row.error_message,
});

export interface StartRun {
  readonly tenantId: string;
  readonly connectionId: string;
  readonly entity: string;
  readonly mode: string;
  readonly trigger: string;
  readonly jobId: string | null;
  readonly attempt: number;
}

const countByClass = (errors: ReadonlyArray<{ readonly type: string }>) => {
  const counts: Record<string, number> = {};
  for (const e of errors) {
    const c = errorClassOf(e.type);
    counts[c] = (counts[c] ?? 0) + 1;
  }
  return counts;
};

/** The history of sync runs: started, progressed, finished. One row per attempt. */
export class RunHistory extends Context.Tag("@tandem/core/RunHistory")<
  RunHistory,
  {
    readonly start: (input: StartRun) => Effect.Effect<string>;
    readonly progress: (runId: string, progress: SyncProgress) => Effect.Effect<void>;
    readonly succeed: (runId: string, result: SyncRunResult) => Effect.Effect<void>;
    readonly fail: (runId: string, error: { readonly tag: string; readonly message: string }) => Effect.Effect<void>;
    readonly get: (tenantId: string, runId: string) => Effect.Effect<SyncRunView | undefined>;
    /** Runs of one job (one per attempt), oldest first. */
    readonly ofJob: (jobId: string) => Effect.Effect<ReadonlyArray<SyncRunView>>;
  }
>() {
  static readonly layer = Layer.effect(
    RunHistory,
    Effect.gen(function* () {
      const db = yield* Database;
      const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms));

      const finish = (runId: string, changes: Updateable<SyncRunsTable>) =>
        Effect.gen(function* () {
          const at = yield* now;
          yield* db
            .query((k) =>
              k
                .updateTable("sync_runs")
                .set({
                  ...changes,
                  finished_at: at,
                  duration_ms: sql<number>`greatest(0, round(extract(epoch from (${at}::timestamptz - started_at)) * 1000))::int`,
                })
                .where("id", "=", runId)
                .where("status", "=", "running")
                .execute(),
            )
            .pipe(Effect.orDie);
        });

      return {
        start: Effect.fn("RunHistory.start")(function* (input: StartRun) {
          const id = randomUUID();
          const at = yield* now;
          yield* db
            .query((k) =>
              k
                .insertInto("sync_runs")
                .values({
                  id,
                  tenant_id: input.tenantId,
                  connection_id: input.connectionId,
                  entity: input.entity,
                  mode: input.mode,
                  trigger: input.trigger,
                  job_id: input.jobId,
                  attempt: input.attempt,
                  status: "running",
                  started_at: at,
                })
                .execute(),
            )
            .pipe(Effect.orDie);
          return id;
        }),

        progress: Effect.fn("RunHistory.progress")(function* (runId: string, p: SyncProgress) {
          const at = yield* now;
          yield* db
            .query((k) =>
              k
                .updateTable("sync_runs")
                .set({
                  pages: p.pages,
                  created: p.created,
                  updated: p.updated,
                  unchanged: p.unchanged,
                  deleted: p.deleted,
                  item_errors: p.errors,
                  progress_at: at,
                })
                .where("id", "=", runId)
                .where("status", "=", "running")
                .execute(),
            )
            .pipe(Effect.orDie);
        }),

        succeed: (runId: string, result: SyncRunResult) =>
          finish(runId, {
            status: "succeeded",
            pages: result.pages,
            created: result.created,
            updated: result.updated,
            unchanged: result.unchanged,
            deleted: result.deleted,
            item_errors: result.errors.length,
            errors_by_type: JSON.stringify(countByClass(result.errors)),
            ...(result.quarantine
              ? {
                  error_type: "business",
                  error_message: `quarantined: would delete ${result.quarantine.wouldDelete} of ${result.quarantine.stored} records`,
                }
              : {}),
          }).pipe(Effect.withSpan("RunHistory.succeed")),

        fail: (runId: string, error: { readonly tag: string; readonly message: string }) =>
          finish(runId, {
            status: "failed",
            error_type: errorClassOf(error.tag),
            error_message: error.message.slice(0, 2_000),
            errors_by_type: JSON.stringify({ [errorClassOf(error.tag)]: 1 }),
          }).pipe(Effect.withSpan("RunHistory.fail")),

        get: Effect.fn("RunHistory.get")(function* (tenantId: string, runId: string) {
          const row = yield* db
            .query((k) =>
              k
                .selectFrom("sync_runs")
                .selectAll()
                .where("tenant_id", "=", tenantId)
                .where("id", "=", runId)
                .executeTakeFirst(),
            )
            .pipe(Effect.orDie);
          return row === undefined ? undefined : toRunView(row);
        }),

        ofJob: Effect.fn("RunHistory.ofJob")(function* (jobId: string) {
          const rows = yield* db
            .query((k) =>
              k
                .selectFrom("sync_runs")
                .selectAll()
                .where("job_id", "=", jobId)
                .orderBy("attempt")
                .orderBy("started_at")
                .execute(),
            )
            .pipe(Effect.orDie);
          return rows.map(toRunView);
        }),
      };
    }),
  );
}
