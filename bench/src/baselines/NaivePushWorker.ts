import pg from "pg";

/**
 * The `sync-to-crm` worker of the bidirectional CRM sync example (shared/seeds/004), as people
 * write it before they have a sync engine: for each locally edited contact, one request to the
 * vendor (`PATCH /crm/v3/objects/contacts/{id}`), then the contact's row updated to say how it
 * went (`sync_status`, `last_synced_at`, `sync_error`), one record and one round trip at a time,
 * each statement its own transaction (autocommit).
 *
 * Kept as lean as the example allows, so the baseline is never slower than it has to be: the
 * contact data comes with the call (the example's job payload) instead of from a queue, the
 * request carries only the edited property, and the table has only its primary key.
 */
export interface NaivePushWorker {
  /** Pushes the given contacts, one after the other; answers how many the vendor took. */
  readonly push: (
    contacts: ReadonlyArray<{ readonly externalId: string; readonly jobTitle: string }>,
  ) => Promise<number>;
  readonly close: () => Promise<void>;
}

const table = "bench_naive_push_contacts";

/** Where the worker sends its requests, and as whom. */
export interface PatchTarget {
  readonly vendorUrl: string;
  readonly accessToken: string;
}

/** The worker's one request: `PATCH /crm/v3/objects/contacts/{id}` with the edited property. */
export const patchJobTitle = (target: PatchTarget, externalId: string, jobTitle: string): Promise<Response> =>
  fetch(`${target.vendorUrl}/crm/v3/objects/contacts/${externalId}`, {
    method: "PATCH",
    headers: { authorization: `Bearer ${target.accessToken}`, "content-type": "application/json" },
    body: JSON.stringify({ properties: { jobtitle: jobTitle } }),
  });

/**
 * Creates the example's contacts table, one row per vendor contact (local id `local-<n>`, sync
 * status `pending`, as the example's local edit leaves it), and answers the worker.
 */
export const startNaivePushWorker = async (
  options: PatchTarget & { readonly databaseUrl: string; readonly externalIds: ReadonlyArray<string> },
): Promise<NaivePushWorker> => {
  const client = new pg.Client({ connectionString: options.databaseUrl });
  await client.connect();
  await client.query(`drop table if exists ${table}`);
  await client.query(`create table ${table} (
      id text primary key,
      external_id text,
      job_title text,
      sync_status text not null default 'pending',
      last_synced_at timestamptz,
      sync_error text
    )`);
  await client.query(
    `insert into ${table} (id, external_id) select 'local-' || n, ids.external_id
       from unnest($1::text[]) with ordinality as ids(external_id, n)`,
    [options.externalIds],
  );
  const localIdOf = new Map(options.externalIds.map((id, i) => [id, `local-${i + 1}`]));

  const push: NaivePushWorker["push"] = async (contacts) => {
    let taken = 0;
    for (const contact of contacts) {
      const localId = localIdOf.get(contact.externalId);
      if (localId === undefined) throw new Error(`naive push: no local contact for ${contact.externalId}`);
      const response = await patchJobTitle(options, contact.externalId, contact.jobTitle);
      const answer = (await response.json()) as { readonly id?: string; readonly message?: string };
      if (response.ok) {
        await client.query(
          `update ${table} set external_id = $1, job_title = $2, sync_status = 'synced', last_synced_at = now(),
             sync_error = null where id = $3`,
          [answer.id ?? contact.externalId, contact.jobTitle, localId],
        );
        taken++;
      } else {
        await client.query(`update ${table} set sync_status = 'failed', sync_error = $1 where id = $2`, [
          answer.message ?? `HTTP ${response.status}`,
          localId,
        ]);
      }
    }
    return taken;
  };

  return { push, close: () => client.end() };
};
