import { type Kysely, sql } from "kysely";
import type { DB } from "../db/schema.ts";
import { hasChangesAfter, scopeHeadsOf, scopesOf } from "../store/ChangeFeed.ts";
import type { FeedPosition } from "../store/FeedPosition.ts";
import type { RecordScope } from "../store/RecordStore.ts";

/**
 * The statements of `record_event_cursors`, as plain functions over Kysely: the one module that
 * writes it. A cursor is the change-feed position of a connection x entity up to which `record.*`
 * events were dispatched (see RecordEvents.ts).
 */

/** The event types the change feed is turned into. */
export const RECORD_EVENT_TYPES = ["record.created", "record.updated", "record.deleted"] as const;

const wantsRecordEvents = sql`disabled_at is null and events ?| array['record.created', 'record.updated', 'record.deleted']`;

/** The connections of tenants with a live subscription to `record.*`. */
const subscribedConnections = sql`select c.id from connections c where c.tenant_id in (
  select s.tenant_id from webhook_subscriptions s where ${wantsRecordEvents})`;

/** Whether the tenant has a live subscription to `record.*` other than `exceptId`. */
export const othersSubscribed = async (k: Kysely<DB>, tenantId: string, exceptId: string): Promise<boolean> => {
  const result = await sql<{ found: boolean }>`select exists (
      select 1 from webhook_subscriptions
      where tenant_id = ${tenantId}::uuid and id <> ${exceptId}::uuid and ${wantsRecordEvents}) as found`.execute(k);
  return result.rows[0]?.found === true;
};

/**
 * Moves the cursors of every scope of the tenant to the end of its feed (below the horizon), so a
 * first subscription is told about changes from now on, not about the history. Never moves a cursor
 * back. Scopes with no change below the horizon keep starting at the beginning: their changes are
 * all still committing.
 */
export const startAtHead = async (k: Kysely<DB>, tenantId: string): Promise<void> => {
  await sql`insert into record_event_cursors as c (connection_id, entity, tenant_id, after_xid, after_seq)
            select h.connection_id, h.entity, h.tenant_id, h.change_xid, h.change_seq
            from ${scopeHeadsOf(sql`select id from connections where tenant_id = ${tenantId}::uuid`)} h
            on conflict (connection_id, entity) do update set
              after_xid = excluded.after_xid, after_seq = excluded.after_seq, updated_at = now()
            where (c.after_xid, c.after_seq) < (excluded.after_xid, excluded.after_seq)`.execute(k);
};

/** The scopes with changes to dispatch: subscribed tenants' scopes with changes past their cursor. */
export const scopesToDispatch = async (k: Kysely<DB>): Promise<ReadonlyArray<RecordScope>> => {
  const result = await sql<{ tenant_id: string; connection_id: string; entity: string }>`
            select s.tenant_id, s.connection_id, s.entity from ${scopesOf(subscribedConnections)} s
            left join record_event_cursors c on c.connection_id = s.connection_id and c.entity = s.entity
            where ${hasChangesAfter(sql`s.connection_id`, sql`s.entity`, {
              xid: sql`coalesce(c.after_xid, '0'::xid8)`,
              seq: sql`coalesce(c.after_seq, 0)`,
            })}`.execute(k);
  return result.rows.map((r) => ({ tenantId: r.tenant_id, connectionId: r.connection_id, entity: r.entity }));
};

/**
 * Takes the scope's cursor for this transaction (created at the start of the feed if it has none):
 * its position, or undefined when another dispatcher holds it now. The row lock makes a cursor's
 * dispatcher exactly one across every process.
 */
export const lockCursor = async (k: Kysely<DB>, scope: RecordScope): Promise<FeedPosition | undefined> => {
  await sql`insert into record_event_cursors (connection_id, entity, tenant_id, after_xid, after_seq)
            values (${scope.connectionId}::uuid, ${scope.entity}, ${scope.tenantId}::uuid, '0', 0)
            on conflict (connection_id, entity) do nothing`.execute(k);
  const row = await sql<{ xid: string; seq: string }>`
            select after_xid::text as xid, after_seq::text as seq from record_event_cursors
            where connection_id = ${scope.connectionId}::uuid and entity = ${scope.entity}
            for update skip locked`.execute(k);
  const found = row.rows[0];
  return found === undefined ? undefined : { xid: found.xid, seq: found.seq };
};

/** Moves a cursor this transaction locked (`lockCursor`) to `position`. */
export const advanceCursor = async (k: Kysely<DB>, scope: RecordScope, position: FeedPosition): Promise<void> => {
  await sql`update record_event_cursors set after_xid = ${position.xid}::xid8, after_seq = ${position.seq}::bigint,
              updated_at = now()
            where connection_id = ${scope.connectionId}::uuid and entity = ${scope.entity}`.execute(k);
};
