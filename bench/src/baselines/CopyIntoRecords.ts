import { randomUUID } from "node:crypto";
import { Database } from "@tandem/core";
import { Effect, Layer } from "effect";
import { withClient } from "../BenchDatabase.ts";
import { timed } from "../measure/Clock.ts";
import { contactPages } from "../source/ContactPages.ts";
import { contactProperties, type HubSpotContactWire } from "../source/HubSpotWire.ts";
import { toContactRow } from "./ContactTable.ts";
import { copyBlocks, escapeCopyText } from "./CopyRows.ts";
import type { BaselineTarget, ThroughputFigures } from "./ImportBaselines.ts";

/**
 * A reference, not a baseline: the same rows, read and encoded before the clock as for `copy`,
 * COPYed into Tandem's own `records` table (created by Tandem's migrations in a database of its
 * own). It is the floor of any write into that table: its key (connection, entity, external id),
 * its change-feed index and sequence, its defaults and wider rows, which the baseline table
 * (one text key) does not have. Tandem's import does more than this COPY (a read over HTTP,
 * decoding, conflict checks), so it cannot beat it.
 */
export const copyIntoRecordsTable = async (
  input: Pick<BaselineTarget, "databaseUrl" | "sourceUrl" | "pageSize" | "accessToken">,
): Promise<ThroughputFigures> => {
  const table = await recordsTable(input.databaseUrl);
  const blocks: Array<string> = [];
  let records = 0;
  for await (const page of contactPages(input.sourceUrl, { ...input, properties: contactProperties })) {
    blocks.push(table.encode(page));
    records += page.length;
  }
  return withClient(input.databaseUrl, async (client) => {
    const { seconds } = await timed(() => copyBlocks(client, "records", blocks, recordsColumns));
    return { records, seconds, recordsPerSecond: records / seconds };
  });
};

/**
 * A reference: the least any import of this source into Tandem's `records` table can take.
 * Every page is read over HTTP, encoded and streamed into one COPY as it arrives (the next page
 * is fetched while COPY writes), with the clock running from the first request to the end of
 * the COPY. No decoding, no upsert, no conflict check: Tandem's import does all of this and more.
 */
export const readAndCopyIntoRecordsTable = async (
  input: Pick<BaselineTarget, "databaseUrl" | "sourceUrl" | "pageSize" | "accessToken">,
): Promise<ThroughputFigures> => {
  const table = await recordsTable(input.databaseUrl);
  let records = 0;
  const blocks = async function* () {
    for await (const page of contactPages(input.sourceUrl, { ...input, properties: contactProperties })) {
      records += page.length;
      yield table.encode(page);
    }
  };
  return withClient(input.databaseUrl, async (client) => {
    const { seconds } = await timed(() => copyBlocks(client, "records", blocks(), recordsColumns));
    return { records, seconds, recordsPerSecond: records / seconds };
  });
};

const recordsColumns =
  "tenant_id, connection_id, entity, external_id, data, remote_updated_at, last_synced_at, changed_at";

/** Tandem's schema migrated into the database, and the COPY text of a page for its records table. */
const recordsTable = async (databaseUrl: string) => {
  await Effect.runPromise(Effect.scoped(Layer.build(Database.layer({ kind: "postgres", url: databaseUrl }))));
  const tenantId = randomUUID();
  const connectionId = randomUUID();
  const now = new Date().toISOString();
  return {
    encode: (page: ReadonlyArray<HubSpotContactWire>) => {
      let block = "";
      for (const row of page.map(toContactRow)) {
        block += `${tenantId}\t${connectionId}\tcontacts\t${escapeCopyText(row.externalId)}\t${escapeCopyText(row.data)}\t${row.remoteUpdatedAt}\t${now}\t${now}\n`;
      }
      return block;
    },
  };
};
