import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import type { ContactRow } from "./ContactTable.ts";

/** COPY's text format: backslash, tab, newline and carriage return must be escaped in a field. */
export const escapeCopyText = (value: string): string =>
  /[\\\t\n\r]/.test(value)
    ? value.replaceAll("\\", "\\\\").replaceAll("\t", "\\t").replaceAll("\n", "\\n").replaceAll("\r", "\\r")
    : value;

/** One block of COPY text for a page of rows (encoding happens before the clock starts). */
export const encodeCopyBlock = (rows: ReadonlyArray<ContactRow>): string => {
  let block = "";
  for (const row of rows) {
    block += `${escapeCopyText(row.externalId)}\t${escapeCopyText(row.data)}\t${row.contentHash}\t${row.remoteUpdatedAt}\n`;
  }
  return block;
};

/**
 * Streams encoded blocks into `table` with `COPY ... FROM STDIN` (by default, encodeCopyBlock's
 * columns). Blocks may arrive asynchronously: they are pulled while COPY writes the earlier ones.
 */
export const copyBlocks = async (
  client: pg.ClientBase,
  table: string,
  blocks: Iterable<string> | AsyncIterable<string>,
  columns = "external_id, data, content_hash, remote_updated_at",
): Promise<void> => {
  const stream = client.query(copyFrom(`copy ${table} (${columns}) from stdin`));
  await pipeline(Readable.from(blocks), stream);
};

/** Streams ids (one column) into `table` with COPY. */
export const copyIds = async (client: pg.ClientBase, table: string, ids: ReadonlyArray<string>): Promise<void> => {
  const stream = client.query(copyFrom(`copy ${table} (external_id) from stdin`));
  const chunkSize = 10_000;
  const chunks = function* () {
    for (let i = 0; i < ids.length; i += chunkSize) {
      yield `${ids
        .slice(i, i + chunkSize)
        .map(escapeCopyText)
        .join("\n")}\n`;
    }
  };
  await pipeline(Readable.from(chunks()), stream);
};
