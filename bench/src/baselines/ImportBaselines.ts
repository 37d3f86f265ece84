import { withClient as withConnection } from "../BenchDatabase.ts";
import { timed } from "../measure/Clock.ts";
import { contactPages } from "../source/ContactPages.ts";
import { contactProperties } from "../source/HubSpotWire.ts";
import { contactTableDdl, createContactTable, toContactRow } from "./ContactTable.ts";
import { copyBlocks, encodeCopyBlock } from "./CopyRows.ts";
import { naiveContactsJob, runNaiveSync, type SqlClient } from "./NaiveSyncJob.ts";

/** Where a baseline reads from and writes to. */
export interface BaselineTarget {
  readonly databaseUrl: string;
  readonly sourceUrl: string;
  readonly pageSize: number;
  /** The bearer token the source accepts. */
  readonly accessToken: string;
  /** naive baselines only: sync the first N records (a 1M-record naive run takes the better part of an hour). */
  readonly naiveLimit?: number | undefined;
  readonly table: string;
}

/** Throughput of one write path over the same records. */
export interface ThroughputFigures {
  readonly records: number;
  readonly seconds: number;
  readonly recordsPerSecond: number;
}

const throughput = (records: number, seconds: number): ThroughputFigures => ({
  records,
  seconds,
  recordsPerSecond: records / seconds,
});

/**
 * naive: the SyncJob loop end to end (reading pages from the source included, as `runSync`
 * does). `createTable: false` runs it over the rows already there: a re-sync, which is all the
 * example can do when 1% changed.
 */
export const naiveImport = (input: BaselineTarget & { readonly createTable: boolean }) =>
  withConnection(input.databaseUrl, async (client) => {
    if (input.createTable) await createContactTable(client, input.table);
    const sql: SqlClient = {
      query: async <R>(text: string, values: ReadonlyArray<unknown>) =>
        (await client.query(text, [...values])) as unknown as { rows: ReadonlyArray<R> },
    };
    const job = naiveContactsJob({ ...input, client: sql, properties: contactProperties, limit: input.naiveLimit });
    const { value: result, seconds } = await timed(() => runNaiveSync(job));
    if (result.errors.length > 0)
      throw new Error(`naive sync had ${result.errors.length} errors: ${result.errors[0]!.message}`);
    return {
      ...throughput(result.created + result.updated, seconds),
      created: result.created,
      updated: result.updated,
    };
  });

/** Reads every page once: the source's own ceiling at this page size (no database involved). */
export const sourceRead = async (input: Pick<BaselineTarget, "sourceUrl" | "pageSize" | "accessToken">) => {
  let records = 0;
  let pages = 0;
  let largestPage = 0;
  const { seconds } = await timed(async () => {
    for await (const page of contactPages(input.sourceUrl, { ...input, properties: contactProperties })) {
      records += page.length;
      pages++;
      largestPage = Math.max(largestPage, page.length);
    }
  });
  return { ...throughput(records, seconds), pages, largestPage };
};

/**
 * copy: the same rows, read from the source and encoded before the clock starts, then one
 * `COPY ... FROM STDIN` into an equivalent table: the write path's practical limit.
 */
export const copyImport = (input: BaselineTarget) =>
  withConnection(input.databaseUrl, async (client) => {
    await createContactTable(client, input.table);
    const blocks: Array<string> = [];
    let records = 0;
    const fetched = await timed(async () => {
      for await (const page of contactPages(input.sourceUrl, {
        pageSize: input.pageSize,
        properties: contactProperties,
        accessToken: input.accessToken,
      })) {
        blocks.push(encodeCopyBlock(page.map(toContactRow)));
        records += page.length;
      }
    });
    const { seconds } = await timed(() => copyBlocks(client, input.table, blocks));
    return { ...throughput(records, seconds), fetchAndEncodeSeconds: fetched.seconds };
  });

/**
 * naive on PGlite: the same SyncJob loop into the same table in an embedded database (a data
 * directory on disk, as Tandem's embedded mode uses), the baseline of Tandem's PGlite variant.
 */
export const naivePgliteImport = async (input: Omit<BaselineTarget, "databaseUrl" | "table">) => {
  const { PGlite } = await import("@electric-sql/pglite");
  const { mkdtemp, rm } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const dataDir = await mkdtemp(join(tmpdir(), "tandem-bench-naive-pglite-"));
  const db = await PGlite.create(dataDir);
  try {
    await db.exec(contactTableDdl("bench_naive_contacts"));
    const sql: SqlClient = { query: (text, values) => db.query(text, [...values]) };
    const job = naiveContactsJob({
      ...input,
      table: "bench_naive_contacts",
      client: sql,
      properties: contactProperties,
      limit: input.naiveLimit,
    });
    const { value: result, seconds } = await timed(() => runNaiveSync(job));
    if (result.errors.length > 0)
      throw new Error(`naive sync had ${result.errors.length} errors: ${result.errors[0]!.message}`);
    return throughput(result.created + result.updated, seconds);
  } finally {
    await db.close();
    await rm(dataDir, { recursive: true, force: true });
  }
};
