import { type Kysely, sql } from "kysely";

/**
 * The change feed becomes commit-ordered (see store/ChangeFeed.ts for the design), and outbound
 * `record.*` events are dispatched from it (webhooks/RecordEvents.ts).
 *
 * - `records.change_xid`: the id (xid8) of the transaction that made the row's last change, set by
 *   every write with its new `change_seq`. The feed is ordered by (change_xid, change_seq) and read
 *   only below the reader's snapshot xmin, where no transaction can still commit a change.
 * - `records.created_xid`: the transaction that inserted the row, so an event can tell a record
 *   created since the dispatcher's last position from one it already told about.
 *   Rows from before this migration get 0 in both (a fast default: no table rewrite), which puts
 *   them first in feed order, in their `change_seq` order: a cursor handed out before (a bare
 *   `change_seq`) reads as position (0, change_seq) and resumes exactly where it was.
 * - The feed index becomes (connection_id, entity, change_xid, change_seq).
 * - `record_event_cursors`: per connection x entity, the feed position up to which `record.*`
 *   events were dispatched. Scopes of tenants that already subscribe to `record.*` start at their
 *   current end, so the upgrade sends no events for history.
 * - `webhook_deliveries.ordering_key`: deliveries with the same key go to a subscription in order
 *   (a record's events), with the index that finds an earlier pending one.
 */
export const up = async (db: Kysely<unknown>): Promise<void> => {
  for (const column of ["change_xid", "created_xid"]) {
    await sql`alter table records add column ${sql.ref(column)} xid8 not null default '0'`.execute(db);
    await sql`alter table records alter column ${sql.ref(column)} set default pg_current_xact_id()`.execute(db);
  }
  await sql`create index records_change_feed_by_commit on records (connection_id, entity, change_xid, change_seq)`.execute(
    db,
  );
  await sql`drop index records_change_feed`.execute(db);

  await db.schema
    .createTable("record_event_cursors")
    .addColumn("connection_id", "uuid", (c) => c.notNull().references("connections.id").onDelete("cascade"))
    .addColumn("entity", "text", (c) => c.notNull())
    .addColumn("tenant_id", "uuid", (c) => c.notNull())
    .addColumn("after_xid", sql`xid8`, (c) => c.notNull())
    .addColumn("after_seq", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint("record_event_cursors_pkey", ["connection_id", "entity"])
    .execute();
  await sql`insert into record_event_cursors (connection_id, entity, tenant_id, after_xid, after_seq)
    select r.connection_id, r.entity, r.tenant_id, '0'::xid8, max(r.change_seq) from records r
    where r.tenant_id in (
      select tenant_id from webhook_subscriptions
      where disabled_at is null and events ?| array['record.created', 'record.updated', 'record.deleted'])
    group by r.connection_id, r.entity, r.tenant_id`.execute(db);

  await db.schema.alterTable("webhook_deliveries").addColumn("ordering_key", "text").execute();
  await sql`create index webhook_deliveries_pending_in_order on webhook_deliveries (subscription_id, ordering_key, seq)
    where status = 'pending' and ordering_key is not null`.execute(db);
};

export const down = async (db: Kysely<unknown>): Promise<void> => {
  await sql`drop index webhook_deliveries_pending_in_order`.execute(db);
  await db.schema.alterTable("webhook_deliveries").dropColumn("ordering_key").execute();
  await db.schema.dropTable("record_event_cursors").execute();
  await sql`create index records_change_feed on records (connection_id, entity, change_seq)`.execute(db);
  await sql`drop index records_change_feed_by_commit`.execute(db);
  await sql`alter table records drop column created_xid`.execute(db);
  await sql`alter table records drop column change_xid`.execute(db);
};
