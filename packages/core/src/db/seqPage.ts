/**
 * Keyset pagination on a table's insertion sequence (`seq`, an identity column):
 * stable while new rows arrive, and exact where timestamps are not (PostgreSQL
 * keeps microseconds that a JS Date rounds away). Fetch `limit + 1` rows ordered
 * by `seq` after the cursor; `seqPage` cuts them into a page and the next cursor.
 */
export const pageLimit = (limit: number | undefined) => Math.min(Math.max(limit ?? 50, 1), 500);

export const seqPage = <Row extends { readonly seq: string | number | bigint }, View>(
  rows: ReadonlyArray<Row>,
  limit: number,
  view: (row: Row) => View,
): { readonly items: ReadonlyArray<View>; readonly nextCursor: string | null } => {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return { items: page.map(view), nextCursor: rows.length > limit && last !== undefined ? String(last.seq) : null };
};
