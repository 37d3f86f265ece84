import { randomUUID } from "node:crypto";
import { Database } from "@tandem/core";
import { Effect, Layer } from "effect";
import { withClient } from "../BenchDatabase.ts";
import { timed } from "../measure/Clock.ts";
import { contactPages } from "../source/ContactPages.ts";
import { contactProperties } from "../source/HubSpotWire.ts";
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
  await Effect.runPromise(Effect.scoped(Layer.build(Database.layer({ kind: "postgres", url: input.databaseUrl }))));
  const tenantId = randomUUID();
  const connectionId = randomUUID();
  const now = new Date().toISOString();
  const blocks: Array<string> = [];
  let records = 0;
  for await (const page of contactPages(input.sourceUrl, { ...input, properties: contactProperties })) {
    let block = "";
    for (const row of page.map(toContactRow)) {
      block += `${tenantId}\t${connectionId}\tcontacts\t${escapeCopyText(row.externalId)}\t${escapeCopyText(row.data)}\t${row.remoteUpdatedAt}\t${now}\t${now}\n`;
    }
    blocks.push(block);
    records += page.length;
  }
  return withClient(input.databaseUrl, async (client) => {
    const { seconds } = await timed(() =>
      copyBlocks(
        client,
        "records",
        blocks,
        "tenant_id, connection_id, entity, external_id, data, remote_updated_at, last_synced_at, changed_at",
      ),
    );
    return { records, seconds, recordsPerSecond: records / seconds };
  });
};
