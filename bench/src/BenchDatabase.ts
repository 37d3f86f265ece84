import { randomBytes } from "node:crypto";
import pg from "pg";

/**
 * Where a scenario's data goes. With `DATABASE_URL` the bench uses that database as it is (its
 * tables are prefixed `bench_`, and the queue libraries install their own schemas). Without it,
 * every scenario gets a fresh database on the local server (as the testkit does for tests),
 * dropped afterwards, so no scenario sees another's tables, indexes or bloat.
 */
export interface BenchDatabase {
  readonly url: string;
  readonly drop: () => Promise<void>;
}

const defaultAdminUrl = "postgres://postgres@127.0.0.1:5432/postgres";

const withClient = async <A>(url: string, f: (client: pg.Client) => Promise<A>): Promise<A> => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await f(client);
  } finally {
    await client.end();
  }
};

/** Opens the database for one scenario (see BenchDatabase). */
export const openBenchDatabase = async (scenario: string): Promise<BenchDatabase> => {
  const given = process.env.DATABASE_URL;
  if (given !== undefined && given !== "") {
    await withClient(given, (c) => c.query("select 1"));
    return { url: given, drop: async () => {} };
  }
  const adminUrl = process.env.TANDEM_TEST_PG_URL ?? defaultAdminUrl;
  const name = `tandem_bench_${scenario}_${randomBytes(4).toString("hex")}`;
  await withClient(adminUrl, (c) => c.query(`create database ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => withClient(adminUrl, (c) => c.query(`drop database if exists ${name} with (force)`)).then(() => {}),
  };
};

/** A one-line description of a database URL without its credentials. */
export const describeDatabase = (url: string): string => {
  const u = new URL(url);
  return `postgres ${u.hostname}:${u.port || 5432}${u.pathname}`;
};

/** The server's version and the settings that move write-path figures most, for the results file. */
export const describeServer = (url: string) =>
  withClient(url, async (c) => {
    const settings = await c.query<{ name: string; setting: string }>(
      "select name, setting from pg_settings where name in ('server_version', 'synchronous_commit', 'fsync', 'shared_buffers', 'max_wal_size')",
    );
    return Object.fromEntries(settings.rows.map((r) => [r.name, r.setting]));
  });

export { withClient };
