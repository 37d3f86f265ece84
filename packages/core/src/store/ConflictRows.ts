import type { Kysely, Selectable } from "kysely";
import type { ConflictsTable, DB } from "../db/schema.ts";

/**
 * The owner of the `conflicts` table, the audit trail of conflicts: plain functions over Kysely.
 */

export type ConflictRow = Selectable<ConflictsTable>;

/** A conflict as recorded when detected (open, or already resolved by the entity's policy). */
export interface NewConflict {
  readonly id: string;
  readonly tenantId: string;
  readonly connectionId: string;
  readonly entity: string;
  readonly externalId: string;
  readonly base: unknown | null;
  readonly local: unknown;
  readonly remote: unknown;
  readonly merged: unknown;
  readonly fields: ReadonlyArray<string>;
  readonly localUpdatedAt: Date;
  readonly remoteUpdatedAt: Date;
  readonly policy: string;
  /** Resolved by the policy (its values and who), or left open (why). */
  readonly outcome:
    | { readonly resolved: true; readonly values: unknown; readonly resolvedBy: string; readonly at: Date }
    | { readonly resolved: false; readonly reason: string };
}

export const insertConflict = async (k: Kysely<DB>, c: NewConflict): Promise<void> => {
  const resolved = c.outcome.resolved;
  await k
    .insertInto("conflicts")
    .values({
      id: c.id,
      tenant_id: c.tenantId,
      connection_id: c.connectionId,
      entity: c.entity,
      external_id: c.externalId,
      base: c.base === null ? null : JSON.stringify(c.base),
      local: JSON.stringify(c.local),
      remote: JSON.stringify(c.remote),
      merged: JSON.stringify(c.merged),
      fields: JSON.stringify(c.fields),
      local_updated_at: c.localUpdatedAt,
      remote_updated_at: c.remoteUpdatedAt,
      policy: c.policy,
      status: resolved ? "resolved" : "open",
      resolution: c.outcome.resolved ? JSON.stringify(c.outcome.values) : null,
      resolved_by: c.outcome.resolved ? c.outcome.resolvedBy : null,
      reason: c.outcome.resolved ? null : c.outcome.reason,
      resolved_at: c.outcome.resolved ? c.outcome.at : null,
    })
    .execute();
};

/**
 * Closes a record's open conflicts that a newer one replaces (resolved, with no values, by
 * `superseded:<newer id>`): the vendor's record moved again while they waited for a person, and
 * a resolution made against the older remote version would be merged and pushed against a version
 * the vendor no longer has. Only the newest stays open for a person.
 */
export const supersedeOpen = (
  k: Kysely<DB>,
  record: {
    readonly tenantId: string;
    readonly connectionId: string;
    readonly entity: string;
    readonly externalId: string;
  },
  by: string,
  at: Date,
) =>
  k
    .updateTable("conflicts")
    .set({ status: "resolved", resolved_by: `superseded:${by}`, resolved_at: at })
    .where("tenant_id", "=", record.tenantId)
    .where("connection_id", "=", record.connectionId)
    .where("entity", "=", record.entity)
    .where("external_id", "=", record.externalId)
    .where("status", "=", "open")
    .execute();

/** One conflict of the tenant. */
export const findConflict = (k: Kysely<DB>, tenantId: string, id: string): Promise<ConflictRow | undefined> =>
  k.selectFrom("conflicts").selectAll().where("tenant_id", "=", tenantId).where("id", "=", id).executeTakeFirst();

/** A page of the tenant's conflicts after `cursor` in `seq` order (one more than `limit`, to tell if there are more). */
export const listConflicts = (
  k: Kysely<DB>,
  tenantId: string,
  filter: {
    readonly status?: "open" | "resolved";
    readonly connectionId?: string;
    readonly cursor?: string;
  },
  limit: number,
): Promise<ReadonlyArray<ConflictRow>> => {
  let q = k.selectFrom("conflicts").selectAll().where("tenant_id", "=", tenantId);
  if (filter.status) q = q.where("status", "=", filter.status);
  if (filter.connectionId) q = q.where("connection_id", "=", filter.connectionId);
  if (filter.cursor) q = q.where("seq", ">", filter.cursor);
  return q
    .orderBy("seq")
    .limit(limit + 1)
    .execute();
};

/**
 * Resolves a conflict if it is still open: the updated row, or undefined when it was not open
 * (two people resolving at once cannot both win).
 */
export const resolveOpen = (
  k: Kysely<DB>,
  id: string,
  resolution: { readonly values: unknown; readonly resolvedBy: string; readonly at: Date },
): Promise<ConflictRow | undefined> =>
  k
    .updateTable("conflicts")
    .set({
      status: "resolved",
      resolution: JSON.stringify(resolution.values),
      resolved_by: resolution.resolvedBy,
      resolved_at: resolution.at,
    })
    .where("id", "=", id)
    .where("status", "=", "open")
    .returningAll()
    .executeTakeFirst();
