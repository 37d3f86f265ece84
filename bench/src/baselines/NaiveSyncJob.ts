import { contactPages } from "../source/ContactPages.ts";
import type { HubSpotContactWire } from "../source/HubSpotWire.ts";
import { type ContactRow, toContactRow } from "./ContactTable.ts";

/**
 * The SyncJob of the Sync Runner example (shared/seeds/003), as people write it before they
 * have a sync engine: fetch the external items, then for each one find the local record by
 * external id and insert or update it, one record and one round trip at a time.
 */
export interface NaiveSyncJob<External, Local> {
  readonly name: string;
  /**
   * The example returns one array of everything; here it yields page by page so that the
   * harness does not hold a million objects. That spares the baseline's memory, not its time:
   * the cost is the per-record loop.
   */
  readonly fetchExternal: () => AsyncIterable<ReadonlyArray<External>>;
  readonly getExternalId: (item: External) => string;
  readonly findLocal: (externalId: string) => Promise<Local | null>;
  readonly create: (item: External) => Promise<void>;
  readonly update: (item: External, local: Local) => Promise<void>;
}

export interface NaiveSyncResult {
  readonly name: string;
  readonly created: number;
  readonly updated: number;
  readonly errors: ReadonlyArray<{ readonly externalId: string; readonly message: string }>;
  readonly durationMs: number;
}

/** The example's `runSync`: one bad item is recorded and never stops the run. */
export const runNaiveSync = async <External, Local>(job: NaiveSyncJob<External, Local>): Promise<NaiveSyncResult> => {
  const started = performance.now();
  let created = 0;
  let updated = 0;
  const errors: Array<{ externalId: string; message: string }> = [];
  for await (const page of job.fetchExternal()) {
    for (const item of page) {
      const externalId = job.getExternalId(item);
      try {
        const local = await job.findLocal(externalId);
        if (local === null) {
          await job.create(item);
          created++;
        } else {
          await job.update(item, local);
          updated++;
        }
      } catch (error) {
        errors.push({ externalId, message: error instanceof Error ? error.message : String(error) });
      }
    }
  }
  return { name: job.name, created, updated, errors, durationMs: performance.now() - started };
};

/** The first `limit` items of a paged stream (all of them when `limit` is undefined). */
async function* firstRecords<A>(
  pages: AsyncIterable<ReadonlyArray<A>>,
  limit: number | undefined,
): AsyncGenerator<ReadonlyArray<A>> {
  let left = limit ?? Number.POSITIVE_INFINITY;
  for await (const page of pages) {
    if (left <= 0) return;
    yield page.length <= left ? page : page.slice(0, left);
    left -= page.length;
  }
}

/** The one call the naive job makes: a parameterized statement. node-postgres and PGlite both answer it. */
export interface SqlClient {
  readonly query: <R>(text: string, values: ReadonlyArray<unknown>) => Promise<{ readonly rows: ReadonlyArray<R> }>;
}

/** The naive contacts job: HubSpot contacts from the source into a baseline table, over one connection. */
export const naiveContactsJob = (options: {
  readonly client: SqlClient;
  readonly table: string;
  readonly sourceUrl: string;
  readonly pageSize: number;
  readonly accessToken: string;
  readonly properties: ReadonlyArray<string>;
  /** Sync only the first `limit` records of the source (see `--naive-records`); undefined: all. */
  readonly limit?: number | undefined;
}): NaiveSyncJob<HubSpotContactWire, { readonly external_id: string }> => {
  const { client, table } = options;
  const insert = (row: ContactRow) =>
    client.query(`insert into ${table} (external_id, data, content_hash, remote_updated_at) values ($1, $2, $3, $4)`, [
      row.externalId,
      row.data,
      row.contentHash,
      row.remoteUpdatedAt,
    ]);
  return {
    name: "naive-contacts",
    fetchExternal: () => firstRecords(contactPages(options.sourceUrl, options), options.limit),
    getExternalId: (contact) => contact.id,
    findLocal: async (externalId) => {
      const result = await client.query<{ readonly external_id: string }>(
        `select external_id from ${table} where external_id = $1`,
        [externalId],
      );
      return result.rows[0] ?? null;
    },
    create: async (contact) => {
      await insert(toContactRow(contact));
    },
    update: async (contact, local) => {
      const row = toContactRow(contact);
      await client.query(
        `update ${table} set data = $2, content_hash = $3, remote_updated_at = $4, synced_at = now() where external_id = $1`,
        [local.external_id, row.data, row.contentHash, row.remoteUpdatedAt],
      );
    },
  };
};
