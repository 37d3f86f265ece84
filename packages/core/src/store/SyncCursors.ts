import { type Kysely, sql } from "kysely";
import type { DB } from "../db/schema.ts";
import { asObject } from "./columnValues.ts";
import type { CheckpointUpdate, RecordScope, SyncCursor } from "./RecordStore.ts";

/**
 * The owner of the `sync_cursors` table (one row per connection x entity: the delta cursor, the
 * last run of each mode, the checkpoints of interrupted runs, the quarantine). Plain functions over
 * Kysely; `checkpointCte` is the fragment the records upsert composes so a batch and its resume
 * point commit in one statement.
 */

/**
 * A data-modifying CTE (`, cp as (...)`, to follow other CTEs) that saves or clears the checkpoint
 * of one mode. Checkpoints are kept per mode ({ full, delta }), so a delta run between an
 * interrupted full run and its retry does not erase the full run's resume point. `guard`: a
 * condition the save waits on (the records upsert's: the batch's connection still exists and
 * nothing was held back, see UpsertResult.heldBack).
 */
export const checkpointCte = (scope: RecordScope, update: CheckpointUpdate, at: string, guard = sql``) =>
  sql`, cp as (
          insert into sync_cursors (connection_id, entity, checkpoint, updated_at)
          select ${scope.connectionId}::uuid, ${scope.entity},
            jsonb_strip_nulls(jsonb_build_object(${update.mode}::text, ${update.value === null ? null : JSON.stringify(update.value)}::jsonb)),
            ${at}::timestamptz
          ${guard}
          on conflict (connection_id, entity) do update set
            checkpoint = (coalesce(sync_cursors.checkpoint, '{}'::jsonb) - ${update.mode}::text) || excluded.checkpoint,
            updated_at = excluded.updated_at
          returning 1
        )`;

/** Saves (or clears) the checkpoint of one mode on its own, unconditionally. */
export const saveCheckpoint = async (
  k: Kysely<DB>,
  scope: RecordScope,
  update: CheckpointUpdate,
  at: string,
): Promise<void> => {
  await sql`with x as (select 1) ${checkpointCte(scope, update, at)} select 1`.execute(k);
};

/** The sync state of one connection x entity; undefined before its first run. */
export const readCursor = async (k: Kysely<DB>, scope: RecordScope): Promise<SyncCursor | undefined> => {
  const row = await k
    .selectFrom("sync_cursors")
    .selectAll()
    .where("connection_id", "=", scope.connectionId)
    .where("entity", "=", scope.entity)
    .executeTakeFirst();
  if (row === undefined) return undefined;
  return {
    deltaCursor: row.delta_cursor,
    lastFullAt: row.last_full_at,
    lastDeltaAt: row.last_delta_at,
    lastReconcileAt: row.last_reconcile_at,
    checkpoints: (asObject(row.checkpoint) ?? {}) as SyncCursor["checkpoints"],
    quarantine: row.quarantine === null ? null : asObject(row.quarantine),
    initialMatchedAt: row.initial_matched_at,
  };
};

/** What `saveCursor` changes: absent fields are kept. */
export interface CursorPatch {
  readonly deltaCursor?: Date | null;
  readonly lastFullAt?: Date;
  readonly lastDeltaAt?: Date;
  readonly lastReconcileAt?: Date;
  readonly quarantine?: unknown;
  readonly initialMatchedAt?: Date;
}

/** Creates or updates the sync state of one connection x entity with the fields of `patch`. */
export const saveCursor = async (k: Kysely<DB>, at: string, scope: RecordScope, patch: CursorPatch): Promise<void> => {
  const values = {
    ...(patch.deltaCursor !== undefined ? { delta_cursor: patch.deltaCursor } : {}),
    ...(patch.lastFullAt !== undefined ? { last_full_at: patch.lastFullAt } : {}),
    ...(patch.lastDeltaAt !== undefined ? { last_delta_at: patch.lastDeltaAt } : {}),
    ...(patch.lastReconcileAt !== undefined ? { last_reconcile_at: patch.lastReconcileAt } : {}),
    ...(patch.quarantine !== undefined
      ? { quarantine: patch.quarantine === null ? null : JSON.stringify(patch.quarantine) }
      : {}),
    ...(patch.initialMatchedAt !== undefined ? { initial_matched_at: patch.initialMatchedAt } : {}),
    updated_at: at,
  };
  await k
    .insertInto("sync_cursors")
    .values({ connection_id: scope.connectionId, entity: scope.entity, ...values })
    .onConflict((oc) => oc.columns(["connection_id", "entity"]).doUpdateSet(values))
    .execute();
};
