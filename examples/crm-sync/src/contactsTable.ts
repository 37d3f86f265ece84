import { PGlite } from "@electric-sql/pglite";

/**
 * The host application's own database: an embedded PostgreSQL (PGlite), apart from Tandem's.
 * `contacts` is the application's table, keyed by ITS id (`id`); `tandem_id` is HubSpot's id once
 * Tandem knows it. `feed_cursor` remembers how far the app has read Tandem's change feed.
 */
export interface Contact {
  readonly id: string;
  readonly tandemId: string | null;
  readonly email: string | null;
  readonly firstName: string | null;
  readonly lastName: string | null;
  /** Tandem's view of the row: pending (not at HubSpot yet), synced, failed or conflict. */
  readonly syncStatus: string;
  readonly syncError: string | null;
  readonly deleted: boolean;
}

interface Row {
  id: string;
  tandem_id: string | null;
  email: string | null;
  first_name: string | null;
  last_name: string | null;
  sync_status: string;
  sync_error: string | null;
  deleted: boolean;
}

const toContact = (r: Row): Contact => ({
  id: r.id,
  tandemId: r.tandem_id,
  email: r.email,
  firstName: r.first_name,
  lastName: r.last_name,
  syncStatus: r.sync_status,
  syncError: r.sync_error,
  deleted: r.deleted,
});

export class ContactsTable {
  private readonly db: PGlite;

  private constructor(db: PGlite) {
    this.db = db;
  }

  /** Opens the app's database (in memory without `dataDir`) and creates its tables. */
  static async open(dataDir?: string): Promise<ContactsTable> {
    const db = new PGlite(dataDir);
    await db.exec(`
      create table if not exists contacts (
        id text primary key,
        tandem_id text unique,
        email text,
        first_name text,
        last_name text,
        sync_status text not null default 'pending',
        sync_error text,
        deleted boolean not null default false
      );
      create table if not exists feed_cursor (id int primary key, cursor text not null);
    `);
    return new ContactsTable(db);
  }

  async all(options: { readonly includeDeleted?: boolean } = {}): Promise<ReadonlyArray<Contact>> {
    const where = options.includeDeleted === true ? "" : "where not deleted";
    const result = await this.db.query<Row>(`select * from contacts ${where} order by email nulls last, id`);
    return result.rows.map(toContact);
  }

  async get(id: string): Promise<Contact | undefined> {
    const result = await this.db.query<Row>("select * from contacts where id = $1", [id]);
    return result.rows[0] === undefined ? undefined : toContact(result.rows[0]);
  }

  async byTandemId(tandemId: string): Promise<Contact | undefined> {
    const result = await this.db.query<Row>("select * from contacts where tandem_id = $1", [tandemId]);
    return result.rows[0] === undefined ? undefined : toContact(result.rows[0]);
  }

  /** Writes a row as it now is (the app's edits, or a change read from the feed). */
  async put(c: Contact): Promise<void> {
    await this.db.query(
      `insert into contacts (id, tandem_id, email, first_name, last_name, sync_status, sync_error, deleted)
       values ($1, $2, $3, $4, $5, $6, $7, $8)
       on conflict (id) do update set tandem_id = excluded.tandem_id, email = excluded.email,
         first_name = excluded.first_name, last_name = excluded.last_name, sync_status = excluded.sync_status,
         sync_error = excluded.sync_error, deleted = excluded.deleted`,
      [c.id, c.tandemId, c.email, c.firstName, c.lastName, c.syncStatus, c.syncError, c.deleted],
    );
  }

  async cursor(): Promise<string | undefined> {
    const result = await this.db.query<{ cursor: string }>("select cursor from feed_cursor where id = 1");
    return result.rows[0]?.cursor;
  }

  async saveCursor(cursor: string): Promise<void> {
    await this.db.query(
      "insert into feed_cursor (id, cursor) values (1, $1) on conflict (id) do update set cursor = excluded.cursor",
      [cursor],
    );
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
