import { randomBytes } from "node:crypto";
import { Database, type DatabaseConfig } from "@tandem/core";
import { Effect, Layer } from "effect";
import pg from "pg";

/** The dialects every database suite runs over (one suite, both dialects, as Kysely tests itself). */
export const dialects = ["pglite", "postgres"] as const;
export type Dialect = (typeof dialects)[number];

/**
 * Where test databases are created: a PostgreSQL role allowed to CREATE DATABASE.
 * Override with TANDEM_TEST_PG_URL.
 */
export const testPostgresAdminUrl = () =>
  process.env.TANDEM_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

const withAdmin = async <A>(f: (client: pg.Client) => Promise<A>): Promise<A> => {
  const client = new pg.Client({ connectionString: testPostgresAdminUrl() });
  await client.connect();
  try {
    return await f(client);
  } finally {
    await client.end();
  }
};

/**
 * The rows of each query, in order, read on a connection of its own to the database at `url`
 * (a test's look at what a server it started wrote, e.g. to check that a dry run wrote nothing).
 */
export const queryRows = async (
  url: string,
  queries: ReadonlyArray<string>,
): Promise<ReadonlyArray<ReadonlyArray<Record<string, unknown>>>> => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const results: Array<ReadonlyArray<Record<string, unknown>>> = [];
    for (const query of queries) results.push((await client.query(query)).rows);
    return results;
  } finally {
    await client.end();
  }
};

/**
 * A fresh, empty database for one suite: a new PostgreSQL database (dropped
 * afterwards), or an in-memory PGlite. Runs never collide.
 */
export const freshDatabaseConfig = (dialect: Dialect) =>
  Effect.acquireRelease(
    Effect.promise(async (): Promise<DatabaseConfig> => {
      if (dialect === "pglite") return { kind: "pglite", dataDir: undefined };
      const name = `tandem_test_${randomBytes(6).toString("hex")}`;
      await withAdmin((c) => c.query(`create database ${name}`));
      const url = new URL(testPostgresAdminUrl());
      url.pathname = `/${name}`;
      return { kind: "postgres", url: url.toString(), poolSize: 5 };
    }),
    (config) =>
      config.kind === "postgres"
        ? Effect.promise(() =>
            withAdmin((c) => c.query(`drop database if exists ${new URL(config.url).pathname.slice(1)} with (force)`)),
          ).pipe(Effect.ignore)
        : Effect.void,
  );

/** Database service on a fresh, migrated database of the given dialect. */
export const testDatabaseLayer = (dialect: Dialect) =>
  Layer.unwrapScoped(Effect.map(freshDatabaseConfig(dialect), (config) => Database.layer(config)));

/** Ends backends of one test database, as `pg_terminate_backend` does in a failover or an admin's cleanup. */
export interface BackendTerminator {
  /** Ends every backend of the database now (none of any other database); answers how many. */
  readonly terminate: () => Promise<number>;
  readonly close: () => Promise<void>;
}

/**
 * A terminator for the database of `config` (a database of `freshDatabaseConfig`), on a connection
 * of its own to the admin database, so that it never ends itself. Only that database's backends
 * are ended: other suites run on the same server at the same time.
 */
export const backendTerminator = async (config: DatabaseConfig): Promise<BackendTerminator> => {
  if (config.kind !== "postgres") throw new Error("backendTerminator needs a PostgreSQL database");
  const database = new URL(config.url).pathname.slice(1);
  const client = new pg.Client({ connectionString: testPostgresAdminUrl() });
  client.on("error", () => {});
  await client.connect();
  return {
    terminate: async () => {
      const { rows } = await client.query<{ n: number }>(
        `select count(*) filter (where pg_terminate_backend(pid))::int as n
         from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()`,
        [database],
      );
      return rows[0]?.n ?? 0;
    },
    close: () => client.end().catch(() => undefined),
  };
};
