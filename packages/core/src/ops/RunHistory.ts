import { randomUUID } from "node:crypto";
import { Clock, Context, Effect, Layer } from "effect";
import type { Kysely, Selectable, Updateable } from "kysely";
import { Database } from "../db/Database.ts";
import type { DB, ErrorClass, SyncRunsTable } from "../db/schema.ts";
import type { SyncProgress, SyncRunResult } from "../sync/EntitySync.ts";
import * as rows from "./RunRows.ts";

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

export { closeRunsOfEndedJobs } from "./RunRows.ts";

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
  /** Reconciliation: records found newer remotely than the stored copy, and re-fetched (see `SyncRunResult.drifted`). */
  readonly drifted: number;
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
  drifted: row.drifted,
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

/** A successful run's outcome, as stored. */
const succeeded = (result: SyncRunResult): Updateable<SyncRunsTable> => ({
  status: "succeeded",
  pages: result.pages,
  created: result.created,
  updated: result.updated,
  unchanged: result.unchanged,
  deleted: result.deleted,
  drifted: result.drifted ?? 0,
  item_errors: result.errors.length,
  errors_by_type: JSON.stringify(countByClass(result.errors)),
  ...(result.quarantine
    ? {
        error_type: "business",
        error_message: `quarantined: would delete ${result.quarantine.wouldDelete} of ${result.quarantine.stored} records`,
      }
    : result.quarantined !== undefined && result.quarantined > 0
      ? {
          error_type: "business",
          error_message: `quarantined: ${result.quarantined} deletions held for review by the mass-deletion guard`,
        }
      : {}),
});

/** A failed run's outcome, as stored. */
const failed = (error: { readonly tag: string; readonly message: string }): Updateable<SyncRunsTable> => ({
  status: "failed",
  error_type: errorClassOf(error.tag),
  error_message: error.message.slice(0, 2_000),
  errors_by_type: JSON.stringify({ [errorClassOf(error.tag)]: 1 }),
});

const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms));

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
  /** The run history over the Database: each operation is one statement of `RunRows`. */
  static readonly make = Effect.gen(function* () {
    const db = yield* Database;
    const run = <A>(statements: (k: Kysely<DB>, at: Date) => Promise<A>) =>
      Effect.flatMap(now, (at) => db.query((k) => statements(k, at)).pipe(Effect.orDie));
    return {
      start: Effect.fn("RunHistory.start")(function* (input: StartRun) {
        const id = randomUUID();
        yield* run((k, at) => rows.insertRun(k, at, { id, ...input }));
        return id;
      }),
      progress: Effect.fn("RunHistory.progress")((runId: string, p: SyncProgress) =>
        run((k, at) =>
          rows.updateRunning(k, runId, {
            pages: p.pages,
            created: p.created,
            updated: p.updated,
            unchanged: p.unchanged,
            deleted: p.deleted,
            item_errors: p.errors,
            progress_at: at,
          }),
        ),
      ),
      succeed: (runId: string, result: SyncRunResult) =>
        run((k, at) => rows.finishRun(k, at, runId, succeeded(result))).pipe(Effect.withSpan("RunHistory.succeed")),
      fail: (runId: string, error: { readonly tag: string; readonly message: string }) =>
        run((k, at) => rows.finishRun(k, at, runId, failed(error))).pipe(Effect.withSpan("RunHistory.fail")),
      get: Effect.fn("RunHistory.get")(function* (tenantId: string, runId: string) {
        const row = yield* run((k) => rows.runOfTenant(k, tenantId, runId));
        return row === undefined ? undefined : toRunView(row);
      }),
      ofJob: Effect.fn("RunHistory.ofJob")(function* (jobId: string) {
        return (yield* run((k) => rows.runsOfJob(k, jobId))).map(toRunView);
      }),
    };
  });

  /** The run history; needs only the Database. */
  static readonly layerNoDeps = Layer.effect(RunHistory, RunHistory.make);

  /** Same as `layerNoDeps`: its one dependency, the Database, is a root of the engine. */
  static readonly layer = RunHistory.layerNoDeps;
}
