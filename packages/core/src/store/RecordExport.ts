import { Chunk, Effect, Option, Stream } from "effect";
import type { ExportFormat, StoredRecord } from "./RecordStore.ts";

/** Reads one page of a scope's records after `after` in external id order (see `recordsById`). */
export type ReadPage = (page: {
  readonly after: string | undefined;
  readonly limit: number;
  readonly includeDeleted: boolean;
}) => Effect.Effect<ReadonlyArray<StoredRecord>>;

/** Every record `readPage` gives, page by page (bounded memory); 500 a page unless told. */
export const streamRecords = (
  readPage: ReadPage,
  options: { readonly includeDeleted?: boolean; readonly pageSize?: number } = {},
): Stream.Stream<StoredRecord> =>
  Stream.paginateChunkEffect(undefined as string | undefined, (after) =>
    readPage({ after, limit: options.pageSize ?? 500, includeDeleted: options.includeDeleted ?? false }).pipe(
      Effect.map((page) => {
        const last = page.at(-1)?.externalId;
        return [
          Chunk.fromIterable(page),
          page.length < (options.pageSize ?? 500) || last === undefined ? Option.none() : Option.some(last),
        ] as const;
      }),
    ),
  );

const csvCell = (value: unknown): string => {
  if (value === null || value === undefined) return "";
  const text = typeof value === "object" ? JSON.stringify(value) : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
};

/** The records as NDJSON lines or CSV rows (header first), each ending in a newline. */
export const exportRecords = (
  readPage: ReadPage,
  format: ExportFormat,
  options: { readonly columns?: ReadonlyArray<string>; readonly includeDeleted?: boolean } = {},
): Stream.Stream<string> => {
  const records = streamRecords(readPage, { includeDeleted: options.includeDeleted ?? false });
  if (format === "ndjson") {
    return Stream.map(
      records,
      (r) =>
        `${JSON.stringify({
          id: r.externalId,
          data: r.data,
          remoteUpdatedAt: r.remoteUpdatedAt?.toISOString() ?? null,
          deletedAt: r.deletedAt?.toISOString() ?? null,
          syncStatus: r.syncStatus,
        })}\n`,
    );
  }
  // CSV needs its columns before the first row: given, or the first record's top-level keys
  // (a streaming export cannot look ahead at every record).
  return Stream.unwrap(
    Effect.gen(function* () {
      let fields = options.columns;
      if (fields === undefined) {
        const first = yield* Stream.runHead(streamRecords(readPage, { ...options, pageSize: 1 }));
        // Sorted: jsonb does not keep the vendor's key order.
        fields = Option.match(first, { onNone: () => [], onSome: (r) => Object.keys(r.data).sort() });
      }
      const header = ["externalId", ...fields].map(csvCell).join(",");
      const cols = fields;
      return Stream.concat(
        Stream.make(`${header}\r\n`),
        Stream.map(records, (r) => `${[r.externalId, ...cols.map((c) => r.data[c])].map(csvCell).join(",")}\r\n`),
      );
    }),
  );
};
