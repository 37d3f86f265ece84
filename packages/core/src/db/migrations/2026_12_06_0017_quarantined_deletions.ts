import { type Kysely, sql } from "kysely";

/**
 * The mass-deletion guard's review queue, and what the guard and its alert need:
 *
 * - `quarantined_deletions`: one row per deletion the guard held back (reconciliation, a delta's
 *   tombstones, a webhook burst), with the record left live. `pending` until an operator approves
 *   (the deletion is applied) or rejects it (the record is kept), or until the record is seen live
 *   remotely again (`reappeared`). A rejected row keeps the record (`keeps_record`) until then: a
 *   delta's overlap or the next reconciliation reporting the same deletion again does not undo the
 *   operator's decision. At most one pending row per record (a partial unique index), so a
 *   deletion reported twice is queued once.
 * - `records_deleted_at`: the guard counts the deletions of a connection x entity within its
 *   window (`deleted_at` after the window's start). Partial: live records, nearly all of them,
 *   are not in it, so the upserts of live records do not maintain it.
 * - the `mass_deletion` alert rule kind (fires while a connection x entity has pending
 *   deletions), given to every existing tenant as a default rule, as new tenants get it.
 */
export const up = async (db: Kysely<unknown>): Promise<void> => {
  await db.schema
    .createTable("quarantined_deletions")
    .addColumn("id", "uuid", (c) => c.primaryKey())
    // Insertion order, for keyset pagination.
    .addColumn("seq", "bigint", (c) => c.notNull().generatedAlwaysAsIdentity().unique())
    .addColumn("tenant_id", "uuid", (c) => c.notNull().references("tenants.id").onDelete("cascade"))
    .addColumn("connection_id", "uuid", (c) => c.notNull().references("connections.id").onDelete("cascade"))
    .addColumn("entity", "text", (c) => c.notNull())
    .addColumn("external_id", "text", (c) => c.notNull())
    .addColumn("source", "text", (c) => c.notNull().check(sql`source in ('reconcile', 'delta', 'full', 'webhook')`))
    .addColumn("status", "text", (c) =>
      c.notNull().defaultTo("pending").check(sql`status in ('pending', 'approved', 'rejected', 'reappeared')`),
    )
    .addColumn("keeps_record", "boolean", (c) => c.notNull().defaultTo(false))
    // Why the guard held it: the rule and the figures (deletions in the window, share of the records).
    .addColumn("guard", "jsonb", (c) => c.notNull())
    .addColumn("detected_at", "timestamptz", (c) => c.notNull())
    .addColumn("resolved_at", "timestamptz")
    .addColumn("resolved_by", "text")
    .addColumn("reason", "text")
    // Tags the rows one approval settled, so the records it deletes are selected by one condition.
    .addColumn("settlement_id", "uuid")
    .execute();
  await sql`create unique index quarantined_deletions_pending on quarantined_deletions
            (connection_id, entity, external_id) where status = 'pending'`.execute(db);
  await sql`create index quarantined_deletions_kept on quarantined_deletions
            (connection_id, entity, external_id) where keeps_record`.execute(db);
  await sql`create index quarantined_deletions_tenant_seq on quarantined_deletions (tenant_id, seq)`.execute(db);
  // The guard's window restarts at the scope's latest decision (see QuarantineRows.lastDecisionAt).
  await sql`create index quarantined_deletions_decided on quarantined_deletions (connection_id, entity, resolved_at)
            where status in ('approved', 'rejected')`.execute(db);
  await sql`create index quarantined_deletions_settlement on quarantined_deletions (settlement_id)
            where settlement_id is not null`.execute(db);
  await sql`create index records_deleted_at on records (connection_id, entity, deleted_at)
            where deleted_at is not null`.execute(db);

  await sql`alter table alert_rules drop constraint alert_rules_kind_check`.execute(db);
  await sql`alter table alert_rules add constraint alert_rules_kind_check check
            (kind in ('sync_failures', 'error_rate', 'queue_backlog', 'staleness', 'performance', 'mass_deletion'))`.execute(
    db,
  );
  await sql`insert into alert_rules (id, tenant_id, name, kind, connection_id, params, enabled, created_at, updated_at)
            select gen_random_uuid(), t.id, 'default: mass deletion', 'mass_deletion', null, '{"minPending":1}'::jsonb,
              true, now(), now()
            from tenants t
            on conflict (tenant_id, name) do nothing`.execute(db);
};

export const down = async (db: Kysely<unknown>): Promise<void> => {
  await sql`delete from alert_rules where kind = 'mass_deletion'`.execute(db);
  await sql`alter table alert_rules drop constraint alert_rules_kind_check`.execute(db);
  await sql`alter table alert_rules add constraint alert_rules_kind_check check
            (kind in ('sync_failures', 'error_rate', 'queue_backlog', 'staleness', 'performance'))`.execute(db);
  await sql`drop index records_deleted_at`.execute(db);
  await db.schema.dropTable("quarantined_deletions").execute();
};
