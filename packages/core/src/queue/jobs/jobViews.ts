import { Effect } from "effect";
import type { DatabaseService } from "../../db/Database.ts";
import type { JobAttemptRow, JobRow } from "../../db/schema.ts";
import { ResourceNotFound } from "../../errors/Errors.ts";
import type { JobAttemptView, JobView } from "../JobQueue.ts";
import * as store from "../JobStore.ts";

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

/** A job row as the API shows it. */
export const toView = (row: JobRow): JobView => ({
  id: row.id,
  kind: row.kind,
  payload: row.payload,
  priority: row.priority,
  tenantId: row.tenant_id,
  connectionId: row.connection_id,
  status: row.status,
  attempts: row.attempts,
  maxAttempts: row.max_attempts,
  runAt: row.run_at.toISOString(),
  lockedBy: row.locked_by,
  lockedUntil: iso(row.locked_until),
  dedupeKey: row.dedupe_key,
  cancelRequested: row.cancel_requested,
  lastError: row.last_error,
  result: row.result,
  createdAt: row.created_at.toISOString(),
  startedAt: iso(row.started_at),
  finishedAt: iso(row.finished_at),
});

/** An attempt row as the API shows it. */
export const toAttemptView = (r: JobAttemptRow): JobAttemptView => ({
  attempt: r.attempt,
  worker: r.worker,
  outcome: r.outcome,
  error: r.error,
  startedAt: iso(r.started_at),
  finishedAt: r.finished_at.toISOString(),
});

/** A job's row; with `tenantId`, only that tenant's; ResourceNotFound otherwise. */
export const jobRow = (db: DatabaseService, id: string, tenantId?: string): Effect.Effect<JobRow, ResourceNotFound> =>
  db
    .query((k) => store.byId(k, id, tenantId))
    .pipe(
      Effect.orDie,
      Effect.flatMap((r) =>
        r === undefined ? Effect.fail(new ResourceNotFound({ resource: "job", id })) : Effect.succeed(r),
      ),
    );
