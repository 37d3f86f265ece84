import { createHash } from "node:crypto";
import type pg from "pg";
import type { HubSpotContactWire } from "../source/HubSpotWire.ts";

/**
 * The baselines' table: what Tandem's record store keeps per record (external id, the data as
 * jsonb, a content hash, the remote modification time, a soft-delete mark) keyed the same way,
 * so that naive, COPY and Tandem write equivalent rows with an equivalent unique index.
 */
export const contactTableDdl = (table: string) => `
    drop table if exists ${table};
    create table ${table} (
      external_id text primary key,
      data jsonb not null,
      content_hash text not null,
      remote_updated_at timestamptz not null,
      synced_at timestamptz not null default now(),
      deleted_at timestamptz
    )`;

export const createContactTable = (client: pg.ClientBase, table: string) => client.query(contactTableDdl(table));

/** A contact as the baselines store it. */
export interface ContactRow {
  readonly externalId: string;
  readonly data: string;
  readonly contentHash: string;
  readonly remoteUpdatedAt: string;
}

export const toContactRow = (contact: HubSpotContactWire): ContactRow => {
  const data = JSON.stringify(contact.properties);
  return {
    externalId: contact.id,
    data,
    contentHash: createHash("sha256").update(data).digest("base64url"),
    remoteUpdatedAt: contact.updatedAt,
  };
};

/** Live (not soft-deleted) rows of a baseline table. */
export const countLiveRows = async (client: pg.ClientBase, table: string): Promise<number> => {
  const result = await client.query<{ n: string }>(`select count(*) as n from ${table} where deleted_at is null`);
  return Number(result.rows[0]!.n);
};

/** The ids soft-deleted in a baseline table, to check a reconciliation deleted exactly the right ones. */
export const softDeletedIds = async (client: pg.ClientBase, table: string): Promise<Array<string>> => {
  const result = await client.query<{ external_id: string }>(
    `select external_id from ${table} where deleted_at is not null`,
  );
  return result.rows.map((r) => r.external_id);
};
