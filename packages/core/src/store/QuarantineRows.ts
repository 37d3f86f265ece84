import { type Kysely, type RawBuilder, type Selectable, sql } from "kysely";
import type { DB, QuarantinedDeletionsTable, QuarantineSource, QuarantineStatus } from "../db/schema.ts";
import type { RecordScope } from "./RecordStore.ts";

/**
 * The owner of the `quarantined_deletions` table, the mass-deletion guard's review queue: every
 * statement that writes it is here, as a plain function over Kysely (`at` is the statement's time,
 * an ISO string), with the conditions over `records` that the guard composes into the records'
 * own statements (which records are held for review, kept by a rejection, or settled by an
 * approval). See DeletionQuarantine for what the rows mean.
 */

export type QuarantineRow = Selectable<QuarantinedDeletionsTable>;

/** The rows of one connection x entity. */
const rowsOf = (s: RecordScope) =>
  sql`connection_id = ${s.connectionId}::uuid and entity = ${s.entity} and tenant_id = ${s.tenantId}::uuid`;

/** A condition over `records`: the record has a queue row matching `row` (a condition over `q`). */
const recordHasRow = (row: RawBuilder<unknown>) =>
  sql`exists (select 1 from quarantined_deletions q where q.connection_id = records.connection_id
        and q.entity = records.entity and q.external_id = records.external_id and ${row})`;

/** Over `records`: an operator rejected the record's deletion, and it was not seen live remotely since. */
export const keptByRejection = recordHasRow(sql`q.keeps_record`);

/**
 * Over `records`: what a reconciliation within its share must not delete: records kept by a
 * rejection, and deletions a delta or webhook burst queued for an operator. (Its own queued
 * deletions it judges again: see `guardVanished`.)
 */
export const heldFromReconciliation = recordHasRow(
  sql`(q.keeps_record or (q.status = 'pending' and q.source <> 'reconcile'))`,
);

/** Over `records`: the record's queued deletion was approved by the settlement `settlementId`. */
export const approvedBy = (settlementId: string) => recordHasRow(sql`q.settlement_id = ${settlementId}::uuid`);

/** Whether the scope has deletions waiting for review. */
export const hasPending = async (k: Kysely<DB>, scope: RecordScope): Promise<boolean> => {
  const result = await sql<{ held: boolean }>`select exists (select 1 from quarantined_deletions
            where ${rowsOf(scope)} and status = 'pending') as held`.execute(k);
  return result.rows[0]?.held === true;
};

/**
 * Whether the scope has rows a sync that sees records live must release: pending deletions, or
 * rejections that keep their record. Without any (nearly always), a sync skips the release.
 */
export const hasOpenRows = async (k: Kysely<DB>, scope: RecordScope): Promise<boolean> => {
  const result = await sql<{ open: boolean }>`select exists (select 1 from quarantined_deletions
            where ${rowsOf(scope)} and (status = 'pending' or keeps_record)) as open`.execute(k);
  return result.rows[0]?.open === true;
};

/**
 * When an operator (or a confirming run) last settled deletions of the scope: the guard's window
 * starts again there, so the deletions of a burst just approved do not trip it once more.
 */
export const lastDecisionAt = async (k: Kysely<DB>, scope: RecordScope): Promise<Date | null> => {
  const result = await sql<{ at: Date | string | null }>`select max(resolved_at) as at from quarantined_deletions
            where ${rowsOf(scope)} and status in ('approved', 'rejected')`.execute(k);
  const at = result.rows[0]?.at ?? null;
  return at === null ? null : new Date(at);
};

/**
 * Queues the deletion of every record `where` selects (a condition over `records` that the caller
 * scopes to one connection x entity and to live records); a record already queued is not queued
 * twice. Answers how many rows were added.
 */
export const queueRecords = async (
  k: Kysely<DB>,
  at: string,
  o: { readonly where: RawBuilder<unknown>; readonly source: QuarantineSource; readonly guard: unknown },
): Promise<number> => {
  const result = await sql`insert into quarantined_deletions
              (id, tenant_id, connection_id, entity, external_id, source, guard, detected_at)
            select gen_random_uuid(), tenant_id, connection_id, entity, external_id, ${o.source},
              ${JSON.stringify(o.guard)}::jsonb, ${at}::timestamptz
            from records where ${o.where}
            on conflict (connection_id, entity, external_id) where status = 'pending' do nothing`.execute(k);
  return Number(result.numAffectedRows ?? 0);
};

/**
 * The scope's records that `seen` selects (a condition over the row, `quarantined_deletions`)
 * were seen live remotely: their pending deletions leave the queue as `reappeared`, and
 * rejections stop keeping them (they are ordinary records again). Answers how many pending
 * deletions left the queue.
 */
const releaseWhere = async (k: Kysely<DB>, at: string, scope: RecordScope, seen: RawBuilder<unknown>) => {
  const result = await sql<{ status: QuarantineStatus }>`update quarantined_deletions set
              status = case when status = 'pending' then 'reappeared' else status end,
              resolved_at = case when status = 'pending' then ${at}::timestamptz else resolved_at end,
              resolved_by = case when status = 'pending' then 'remote' else resolved_by end,
              keeps_record = false
            where ${rowsOf(scope)} and (status = 'pending' or keeps_record) and ${seen}
            returning status`.execute(k);
  return result.rows.filter((r) => r.status === "reappeared").length;
};

/** Releases the rows of records a read or a webhook just saw live (see `releaseWhere`). */
export const releaseSeen = (k: Kysely<DB>, at: string, scope: RecordScope, externalIds: ReadonlyArray<string>) =>
  externalIds.length === 0
    ? Promise.resolve(0)
    : releaseWhere(k, at, scope, sql`external_id = any(${[...externalIds]}::text[])`);

/** Releases the rows of records reconciliation run `runId` staged: the remote still lists them. */
export const releaseStaged = (k: Kysely<DB>, at: string, scope: RecordScope, runId: string) =>
  releaseWhere(
    k,
    at,
    scope,
    sql`exists (select 1 from reconcile_ids s where s.run_id = ${runId}::uuid
          and s.external_id = quarantined_deletions.external_id)`,
  );

/**
 * Settles the scope's rows whose record is no longer live (a run deleted it on its own
 * authority): pending ones (of `source` only, when given) as approved by `by`; rejections no
 * longer keep anything. Answers how many pending rows were settled.
 */
export const settleGone = async (
  k: Kysely<DB>,
  at: string,
  scope: RecordScope,
  o: { readonly by: string; readonly source?: QuarantineSource },
): Promise<number> => {
  const pending = o.source === undefined ? sql`status = 'pending'` : sql`(status = 'pending' and source = ${o.source})`;
  const result = await sql<{ status: QuarantineStatus }>`update quarantined_deletions q set
              status = case when ${pending} then 'approved' else status end,
              resolved_at = case when ${pending} then ${at}::timestamptz else resolved_at end,
              resolved_by = case when ${pending} then ${o.by} else resolved_by end,
              keeps_record = false
            where ${rowsOf(scope)} and (${pending} or keeps_record)
              and not exists (select 1 from records r where r.connection_id = q.connection_id
                and r.entity = q.entity and r.external_id = q.external_id and r.deleted_at is null)
            returning status`.execute(k);
  return result.rows.filter((r) => r.status === "approved").length;
};

/** Which pending rows a decision settles: one row of the tenant, or every one of a connection x entity. */
export type Selection = { readonly id: string } | { readonly connectionId: string; readonly entity: string };

/** An operator's decision on pending rows. */
export interface Decision {
  readonly status: "approved" | "rejected";
  readonly by: string;
  readonly reason: string | null;
  /** Tags approved rows, so the records they delete are selected by `approvedBy`. */
  readonly settlementId: string;
}

const decided = (tenantId: string, selection: Selection, decision: Decision, at: string) => (k: Kysely<DB>) =>
  k
    .updateTable("quarantined_deletions")
    .set({
      status: decision.status,
      resolved_at: at,
      resolved_by: decision.by,
      reason: decision.reason,
      settlement_id: decision.settlementId,
      keeps_record: decision.status === "rejected",
    })
    .where("tenant_id", "=", tenantId)
    .where("status", "=", "pending")
    .$if("id" in selection, (q) => q.where("id", "=", (selection as { readonly id: string }).id))
    .$if(!("id" in selection), (q) => {
      const s = selection as { readonly connectionId: string; readonly entity: string };
      return q.where("connection_id", "=", s.connectionId).where("entity", "=", s.entity);
    });

/** Settles one pending row of the tenant; the row, or undefined when it is not pending (or not the tenant's). */
export const decideOne = (
  k: Kysely<DB>,
  at: string,
  tenantId: string,
  id: string,
  decision: Decision,
): Promise<QuarantineRow | undefined> => decided(tenantId, { id }, decision, at)(k).returningAll().executeTakeFirst();

/** Settles every pending row of a connection x entity of the tenant; answers how many. */
export const decideAll = async (
  k: Kysely<DB>,
  at: string,
  tenantId: string,
  scope: { readonly connectionId: string; readonly entity: string },
  decision: Decision,
): Promise<number> => Number((await decided(tenantId, scope, decision, at)(k).executeTakeFirst()).numUpdatedRows);

/** One row of the tenant. */
export const findRow = (k: Kysely<DB>, tenantId: string, id: string): Promise<QuarantineRow | undefined> =>
  k
    .selectFrom("quarantined_deletions")
    .selectAll()
    .where("tenant_id", "=", tenantId)
    .where("id", "=", id)
    .executeTakeFirst();

/** Which rows `listRows` reads, in `seq` order after the cursor. */
export interface RowFilter {
  readonly status?: QuarantineStatus | undefined;
  readonly connectionId?: string | undefined;
  readonly entity?: string | undefined;
  readonly cursor?: string | undefined;
}

/** A page of the tenant's rows (one more than `limit`, to tell whether there are more). */
export const listRows = (
  k: Kysely<DB>,
  tenantId: string,
  filter: RowFilter,
  limit: number,
): Promise<ReadonlyArray<QuarantineRow>> =>
  k
    .selectFrom("quarantined_deletions")
    .selectAll()
    .where("tenant_id", "=", tenantId)
    .$if(filter.status !== undefined, (q) => q.where("status", "=", filter.status!))
    .$if(filter.connectionId !== undefined, (q) => q.where("connection_id", "=", filter.connectionId!))
    .$if(filter.entity !== undefined, (q) => q.where("entity", "=", filter.entity!))
    .$if(filter.cursor !== undefined, (q) => q.where("seq", ">", filter.cursor!))
    .orderBy("seq")
    .limit(limit + 1)
    .execute();

/** The pending deletions of one connection x entity, summed up (for the mass-deletion alert). */
export interface PendingGroup {
  readonly connectionId: string;
  readonly entity: string;
  readonly pending: number;
  readonly firstDetectedAt: Date;
  readonly sources: ReadonlyArray<QuarantineSource>;
}

/** The tenant's (or one connection's) connection x entity pairs with pending deletions. */
export const pendingGroups = async (
  k: Kysely<DB>,
  tenantId: string,
  connectionId: string | null,
): Promise<ReadonlyArray<PendingGroup>> => {
  const result = await sql<{
    connection_id: string;
    entity: string;
    pending: string;
    first: Date | string;
    sources: Array<QuarantineSource>;
  }>`select connection_id, entity, count(*)::text as pending, min(detected_at) as first,
              array_agg(distinct source order by source) as sources
            from quarantined_deletions
            where tenant_id = ${tenantId}::uuid and status = 'pending'
              ${connectionId === null ? sql`` : sql`and connection_id = ${connectionId}::uuid`}
            group by connection_id, entity`.execute(k);
  return result.rows.map((r) => ({
    connectionId: r.connection_id,
    entity: r.entity,
    pending: Number(r.pending),
    firstDetectedAt: new Date(r.first),
    sources: r.sources,
  }));
};
