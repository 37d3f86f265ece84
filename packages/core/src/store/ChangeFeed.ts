import { type Kysely, sql } from "kysely";
import type { DB } from "../db/schema.ts";
import { columns, inScope, type RawRow, toStored } from "./RecordRows.ts";
import type { ChangePage, ChangesOptions, RecordScope } from "./RecordStore.ts";

/**
 * The change feed: the records of a scope in the order the store changed them (`change_seq`, which
 * every write of `records` advances), deletions included, so a reader that keeps its cursor sees
 * every change once.
 */
export const changesAfter = async (
  k: Kysely<DB>,
  scope: RecordScope,
  options: ChangesOptions = {},
): Promise<ChangePage> => {
  const limit = Math.max(1, Math.min(options.limit ?? 100, 1000));
  const after = options.after ?? "0";
  const modified =
    options.modifiedAfter === undefined
      ? sql``
      : sql`and changed_at > ${options.modifiedAfter.toISOString()}::timestamptz`;
  const deleted = options.includeDeleted === false ? sql`and deleted_at is null` : sql``;
  const result = await sql<RawRow>`select ${columns} from records
            where ${inScope(scope)} and change_seq > ${after}::bigint ${modified} ${deleted}
            order by records.change_seq limit ${limit + 1}`.execute(k);
  const rows = result.rows.slice(0, limit).map(toStored);
  return {
    records: rows,
    cursor: rows.at(-1)?.changeSeq ?? after,
    hasMore: result.rows.length > limit,
  };
};
