import { type Kysely, sql } from "kysely";

/**
 * `webhook_events` and `jobs` check their tenant and connection once per statement instead of
 * once per row. The webhook intake inserts a delivery's events and one job per record in one
 * statement, many deliveries at a time: with foreign keys, each of those rows ran two checks
 * (a lookup and a `for key share` lock of the same two parent rows). Measured on 2,000 events and
 * their 2,000 jobs, 12 statements each (bench/README.md): 40-75 ms per events insert and
 * 52-97 ms per jobs insert with the foreign keys, 22-36 and 32-51 ms with this statement-level
 * check, 19-36 and 29-54 ms with no check at all.
 *
 * What a foreign key guaranteed still holds:
 * - A row cannot name a tenant or connection that does not exist: after each insert statement,
 *   the distinct tenants and connections it named are locked `for key share` (as a foreign key
 *   locks them, so a concurrent delete waits for this transaction) and any missing one fails
 *   the statement with SQLSTATE 23503, foreign_key_violation, as a foreign key would.
 * - Deleting a connection (or tenant) deletes its jobs and webhook events, by a trigger on it.
 * Both columns are written when a row is inserted and never updated.
 */
export const up = async (db: Kysely<unknown>): Promise<void> => {
  await sql`
    create function tandem_check_owners() returns trigger language plpgsql as $$
    declare
      connection_ids uuid[];
      tenant_ids uuid[];
      missing uuid;
    begin
      select array_agg(distinct n.connection_id) filter (where n.connection_id is not null),
             array_agg(distinct n.tenant_id) filter (where n.tenant_id is not null)
        into connection_ids, tenant_ids
        from new_rows n;
      perform from connections c where c.id = any(connection_ids) for key share;
      select x into missing from unnest(connection_ids) x
        where not exists (select from connections c where c.id = x) limit 1;
      if found then
        raise exception using errcode = 'foreign_key_violation',
          message = format('%s.connection_id %s: no such connection', tg_table_name, missing);
      end if;
      perform from tenants t where t.id = any(tenant_ids) for key share;
      select x into missing from unnest(tenant_ids) x
        where not exists (select from tenants t where t.id = x) limit 1;
      if found then
        raise exception using errcode = 'foreign_key_violation',
          message = format('%s.tenant_id %s: no such tenant', tg_table_name, missing);
      end if;
      return null;
    end $$`.execute(db);
  await sql`
    create function tandem_delete_owned() returns trigger language plpgsql as $$
    begin
      if tg_table_name = 'connections' then
        delete from jobs where connection_id = old.id;
        delete from webhook_events where connection_id = old.id;
      else
        delete from jobs where tenant_id = old.id;
        delete from webhook_events where tenant_id = old.id;
      end if;
      return null;
    end $$`.execute(db);

  for (const table of ["webhook_events", "jobs"]) {
    await sql`alter table ${sql.table(table)} drop constraint ${sql.id(`${table}_tenant_id_fkey`)}`.execute(db);
    await sql`alter table ${sql.table(table)} drop constraint ${sql.id(`${table}_connection_id_fkey`)}`.execute(db);
    await sql`
      create trigger ${sql.id(`${table}_owners`)} after insert on ${sql.table(table)}
      referencing new table as new_rows for each statement execute function tandem_check_owners()`.execute(db);
  }
  for (const table of ["connections", "tenants"]) {
    await sql`
      create trigger ${sql.id(`${table}_delete_owned`)} after delete on ${sql.table(table)}
      for each row execute function tandem_delete_owned()`.execute(db);
  }
};

export const down = async (db: Kysely<unknown>): Promise<void> => {
  for (const table of ["connections", "tenants"]) {
    await sql`drop trigger ${sql.id(`${table}_delete_owned`)} on ${sql.table(table)}`.execute(db);
  }
  for (const table of ["webhook_events", "jobs"]) {
    await sql`drop trigger ${sql.id(`${table}_owners`)} on ${sql.table(table)}`.execute(db);
    await sql`
      delete from ${sql.table(table)} r
      where (r.connection_id is not null and not exists (select from connections c where c.id = r.connection_id))
         or (r.tenant_id is not null and not exists (select from tenants t where t.id = r.tenant_id))`.execute(db);
    await sql`
      alter table ${sql.table(table)}
        add constraint ${sql.id(`${table}_tenant_id_fkey`)} foreign key (tenant_id) references tenants (id) on delete cascade,
        add constraint ${sql.id(`${table}_connection_id_fkey`)} foreign key (connection_id) references connections (id) on delete cascade`.execute(
      db,
    );
  }
  await sql`drop function tandem_delete_owned()`.execute(db);
  await sql`drop function tandem_check_owners()`.execute(db);
};
