import { Effect } from "effect";
import { type Kysely, sql } from "kysely";
import type { DatabaseService } from "./Database.ts";
import type { DB } from "./schema.ts";

/**
 * The planner's statistics of the tables that grow in bulk, kept close to their size.
 *
 * PostgreSQL plans every statement from statistics that ANALYZE gathers. Autovacuum refreshes
 * them once a tenth of a table has changed, but at most once per `autovacuum_naptime` (a
 * minute), not at all where it is turned off, and never on PGlite (the embedded database runs
 * single-user, with no autovacuum). Until then a table filled in bulk looks empty to the planner,
 * and it assumes one connection's records are a handful: a record read by its id took any index
 * that starts with (connection_id, entity), the change feed's among them, and scanned the
 * entity's every record (21 ms for one record of 10,000 instead of 0.05 ms); a push's claim,
 * which reads its records by joining them, scanned them once per entry (seconds per claim).
 *
 * So the engine analyzes these tables itself, when one that fills at least `minimumPages` on disk
 * was never analyzed, or holds more than twice the live rows its statistics counted. That is once
 * per doubling, a handful of times over any table's life, each a sample of bounded size; everyday
 * writes never trigger it. A first fill is seen by the size on disk, as it is now: the live row
 * counts are reported by sessions when idle, seconds late, and a check right after an import
 * missed it. Growth later is seen by those counts: the size on disk also grows with dead rows
 * where nothing vacuums them, and would trigger again and again.
 */
const watched = ["records", "push_outbox"] as const;

/** Pages (8 kB) a table must fill before its statistics are worth a refresh here: some 1,000 to 2,000 records. */
const minimumPages = 128;

/**
 * Analyzes each watched table that needs it (see above), unless another session is analyzing it
 * for the same reason. Answers the tables analyzed. Run it in a transaction.
 */
export const refreshGrownTables = async (k: Kysely<DB>): Promise<ReadonlyArray<string>> => {
  const { rows } = await sql<{ table: string }>`
    select c.relname as table
    from pg_class c left join pg_stat_user_tables s on s.relid = c.oid
    where c.oid = any(array[${sql.join(watched.map((t) => sql`to_regclass(${t})`))}]::oid[])
      and pg_relation_size(c.oid) >= ${minimumPages}::bigint * current_setting('block_size')::int
      and (c.reltuples < 0 or coalesce(s.n_live_tup, 0) > 2 * greatest(c.reltuples, 1))`.execute(k);
  const analyzed: Array<string> = [];
  for (const { table } of rows) {
    // Drains of many entities start together after an import: one of them analyzes, the others
    // go on (the lock is the transaction's: see `refreshPlannerStatistics`).
    const { rows: lock } = await sql<{ taken: boolean }>`
      select pg_try_advisory_xact_lock(hashtext(${`tandem:analyze:${table}`})) as taken`.execute(k);
    if (lock[0]?.taken !== true) continue;
    // The name is one of `watched` (looked up by oid above), never input.
    await sql`analyze ${sql.table(table)}`.execute(k);
    analyzed.push(table);
  }
  return analyzed;
};

/**
 * `refreshGrownTables` in a transaction (the current one, if any). A refresh that fails is logged
 * and never the caller's failure: statistics only make statements faster.
 */
export const refreshPlannerStatistics = (db: DatabaseService): Effect.Effect<void> =>
  db.transaction(db.query(refreshGrownTables)).pipe(
    Effect.tap((analyzed) =>
      analyzed.length === 0 ? Effect.void : Effect.logDebug(`planner statistics refreshed: ${analyzed.join(", ")}`),
    ),
    Effect.catchAllCause((cause) => Effect.logWarning("refreshing the planner's statistics failed", cause)),
    Effect.asVoid,
  );
