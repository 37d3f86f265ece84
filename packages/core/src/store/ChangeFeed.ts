import { type Kysely, type RawBuilder, sql } from "kysely";
import type { DB } from "../db/schema.ts";
import { decodeFeedPosition, encodeFeedPosition, type FeedPosition, feedStart } from "./FeedPosition.ts";
import { columns, inScope, type RawRow, toStored } from "./RecordRows.ts";
import type { ChangePage, ChangesOptions, RecordScope, StoredRecord } from "./RecordStore.ts";

/*
 * The change feed: the records of a scope in the order the store changed them, deletions
 * included, so a reader that keeps its cursor sees every change. It must be commit-ordered: a
 * cursor may never pass a change that is not visible yet, or the reader misses it for good.
 *
 * A sequence alone cannot give that. `change_seq` is taken when a statement writes, and the
 * transaction commits later; sync runs, webhook jobs and pushes write one connection's entity at
 * once, so a reader can see seq 11 (committed) while seq 10 is still in an open transaction, read
 * past 10, and never see it. (The concurrency test, ChangeFeed.concurrency.test.ts, lost a change
 * this way in 43 of 50 rounds on PostgreSQL.)
 *
 * What the database knows instead is which transactions may still commit. Every write also stores
 * `change_xid = pg_current_xact_id()`, its transaction's 64-bit id (xid8, never wraps), and the feed
 * is ordered by (change_xid, change_seq). A reader returns only rows whose change_xid is below the
 * horizon of its statement's own snapshot (`feedHorizon`: in essence `pg_snapshot_xmin`, the oldest
 * transaction still running): every transaction with a smaller id has ended, and its changes are
 * all visible to that very snapshot (or rolled back). No change can appear later below that
 * horizon: a new write gets a new xid, above it. A cursor (xid, seq) taken from rows below the
 * horizon therefore never passes a change that is still to commit. A row changed again simply moves
 * to its new position, as before.
 *
 * The cost is latency, not work: a change becomes readable once every transaction of this database
 * that was already writing when it committed has ended. Tandem's writing transactions are one
 * statement or a few (a batch upsert, a settled conflict); the longest is an import, which commits
 * its records at once. A session left idle in a transaction that wrote (an operator's psql) holds the
 * feed back until it ends; other databases on the server do not (see `feedHorizon`). The horizon is
 * computed in the statement that reads the rows, so both come from one snapshot. PGlite runs one
 * transaction at a time, so its horizon is always the reader itself; the same SQL runs on both.
 *
 * Reads stay one index range scan: (connection_id, entity, change_xid, change_seq), the row
 * comparison after the cursor and the horizon both bound it. See FeedPosition.ts for the cursor
 * text (and the cursors of before, which still work).
 */

/**
 * The feed's horizon for the statement: the oldest transaction in its snapshot's in-progress list
 * that may belong to this database, else the snapshot's xmax. Below it, no transaction that can
 * write here is still running, so nothing can commit a change there any more.
 *
 * It is `pg_snapshot_xmin` less the transactions positively seen running in another database
 * (`pg_stat_get_activity`: every transaction of the server is in the list, and a test suite or
 * another application on the same server must not hold our feed back). A transaction of the list
 * that ended before the activity was read cannot be placed, so it counts as ours: the horizon only
 * ever errs low, for that one statement. A 32-bit `backend_xid` matches the low half of a listed
 * xid8 only for the same transaction: the value cannot come round again while it is running. The
 * reader's own transaction is not in the list (a dispatcher holding its cursor row reads on):
 * what it wrote itself is its own to see.
 */
export const feedHorizon = sql`(
  select coalesce(min(running.xid), pg_snapshot_xmax(pg_current_snapshot()))
  from pg_snapshot_xip(pg_current_snapshot()) as running(xid)
  where (running.xid::text::bigint % 4294967296)::text not in (
    select a.backend_xid::text from pg_stat_get_activity(null) a
    where a.backend_xid is not null
      and a.datid is distinct from (select oid from pg_database where datname = current_database())))`;

/** One change of the feed: the record as it is now, where it stands, and who created it. */
export interface FeedEntry {
  readonly record: StoredRecord;
  readonly position: FeedPosition;
  /** The transaction that inserted the record (xid8, decimal). */
  readonly createdXid: string;
}

/** Which changes `readFeed` returns. */
export interface FeedFilter {
  readonly modifiedAfter?: Date | undefined;
  readonly includeDeleted?: boolean | undefined;
}

/** Up to `limit` changes of the scope after `after`, below the horizon, in feed order. */
export const readFeed = async (
  k: Kysely<DB>,
  scope: RecordScope,
  after: FeedPosition,
  limit: number,
  filter: FeedFilter = {},
): Promise<ReadonlyArray<FeedEntry>> => {
  const modified =
    filter.modifiedAfter === undefined
      ? sql``
      : sql`and changed_at > ${filter.modifiedAfter.toISOString()}::timestamptz`;
  const deleted = filter.includeDeleted === false ? sql`and deleted_at is null` : sql``;
  // Qualified: `columns` selects change_xid and change_seq as text, and a bare name in ORDER BY
  // would sort by those (as text: "10" before "9").
  const result = await sql<RawRow & { created_xid: string }>`select ${columns}, created_xid::text as created_xid
            from records
            where ${inScope(scope)}
              and (records.change_xid, records.change_seq) > (${after.xid}::xid8, ${after.seq}::bigint)
              and records.change_xid < ${feedHorizon} ${modified} ${deleted}
            order by records.change_xid, records.change_seq limit ${limit}`.execute(k);
  return result.rows.map((row) => {
    const record = toStored(row);
    return { record, position: { xid: record.changeXid, seq: record.changeSeq }, createdXid: row.created_xid };
  });
};

/**
 * A page of the feed for a reader (`RecordStore.changes`): `after` is a cursor of an earlier page
 * (a defect when it is not one: the API validates it first), the answer's cursor is the last
 * change's position, or `after` itself when nothing is new.
 */
export const changesAfter = async (
  k: Kysely<DB>,
  scope: RecordScope,
  options: ChangesOptions = {},
): Promise<ChangePage> => {
  const limit = Math.max(1, Math.min(options.limit ?? 100, 1000));
  const after = options.after === undefined ? feedStart : decodeFeedPosition(options.after);
  if (after === undefined) throw new Error(`not a change-feed cursor: ${JSON.stringify(options.after)}`);
  const entries = await readFeed(k, scope, after, limit + 1, options);
  const page = entries.slice(0, limit);
  return {
    records: page.map((e) => e.record),
    cursor: encodeFeedPosition(page.at(-1)?.position ?? after),
    hasMore: entries.length > limit,
  };
};

/**
 * The scopes (connection x entity) that hold records, of the connections `connections` selects
 * (a subquery of connection ids): one index probe per scope, however many records each holds.
 * Columns: connection_id, tenant_id, entity.
 */
export const scopesOf = (connections: RawBuilder<unknown>) => sql`(
  with recursive scope as (
    select c.id as connection_id, c.tenant_id,
      (select min(r.entity) from records r where r.connection_id = c.id) as entity
    from connections c where c.id in (${connections})
    union all
    select s.connection_id, s.tenant_id,
      (select min(r.entity) from records r where r.connection_id = s.connection_id and r.entity > s.entity)
    from scope s where s.entity is not null
  )
  select connection_id, tenant_id, entity from scope where entity is not null)`;

/**
 * The scopes of `scopesOf(connections)` with the position of their last change below the horizon
 * (scopes with none left out). Columns: connection_id, tenant_id, entity, change_xid, change_seq.
 */
export const scopeHeadsOf = (connections: RawBuilder<unknown>) => sql`(
  select s.connection_id, s.tenant_id, s.entity, h.change_xid, h.change_seq from ${scopesOf(connections)} s
  cross join lateral (
    select r.change_xid, r.change_seq from records r
    where r.connection_id = s.connection_id and r.entity = s.entity and r.change_xid < ${feedHorizon}
    order by r.change_xid desc, r.change_seq desc limit 1) h)`;

/** Whether the scope has a change after the position, below the horizon (all as SQL expressions). */
export const hasChangesAfter = (
  connectionId: RawBuilder<unknown>,
  entity: RawBuilder<unknown>,
  after: { readonly xid: RawBuilder<unknown>; readonly seq: RawBuilder<unknown> },
) => sql`exists (
  select 1 from records r where r.connection_id = ${connectionId} and r.entity = ${entity}
    and (r.change_xid, r.change_seq) > (${after.xid}, ${after.seq}) and r.change_xid < ${feedHorizon})`;
