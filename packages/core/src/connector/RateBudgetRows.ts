import type { LeaseGrant, LeaseRequest } from "@tandem/connector-sdk/runtime";
import { type Kysely, sql } from "kysely";
import type { DB } from "../db/schema.ts";

/*
 * The statements of `rate_budgets`, the one module that writes it: one shared token bucket per
 * connection, in GCRA form (a single time, `tat`, instead of a token count and a refill time).
 * A lease of k tokens costs k·cost ms of budget; it starts once the bucket holds them, i.e. when
 * `tat + k·cost − depth` has passed, and moves `tat` on by k·cost. Times are milliseconds on the
 * processes' clock, stored as timestamptz.
 */

const epochMs = (column: string) => sql.raw(`(extract(epoch from ${column}) * 1000)::float8`);

/**
 * Leases `request.tokens` tokens in ONE statement (the row locked for its duration): answers when
 * they may be spent from and the shared block, or undefined when the connection has no row yet.
 * A vendor's `remaining` below the bucket's depth first empties the bucket down to it (as of then).
 */
const leaseFromRow = async (db: Kysely<DB>, connectionId: string, r: LeaseRequest): Promise<LeaseGrant | undefined> => {
  const cost = r.tokens * r.terms.costMs;
  // At most `count` tokens left at `at`: the budget was spent up to at + depth − count·cost.
  const spentTo =
    r.remaining === undefined ? null : r.remaining.at + r.terms.depthMs - r.remaining.count * r.terms.costMs;
  const { rows } = await sql<{ starts_at: number; blocked_until: number }>`
    with current as (
      select connection_id, greatest(${epochMs("tat")}, ${spentTo}::float8) as tat,
        ${epochMs("blocked_until")} as blocked_until
      from rate_budgets where connection_id = ${connectionId} for update
    ), lease as (
      select connection_id, tat, blocked_until,
        greatest(${r.now}::float8, ${r.notBefore}::float8, blocked_until, tat + ${cost}::float8 - ${r.terms.depthMs}::float8) as starts_at
      from current
    )
    update rate_budgets b
    set tat = to_timestamp((greatest(lease.tat, lease.starts_at) + ${cost}::float8) / 1000),
      updated_at = to_timestamp(${r.now}::float8 / 1000)
    from lease where b.connection_id = lease.connection_id
    returning lease.starts_at, lease.blocked_until`.execute(db);
  const row = rows[0];
  return row === undefined ? undefined : { startsAt: Number(row.starts_at), blockedUntil: Number(row.blocked_until) };
};

/** A full, unblocked budget for the connection, unless it has one. */
const createRow = (db: Kysely<DB>, connectionId: string, now: number) =>
  sql`insert into rate_budgets (connection_id, tat, blocked_until, updated_at)
      values (${connectionId}, to_timestamp(0), to_timestamp(0), to_timestamp(${now}::float8 / 1000))
      on conflict (connection_id) do nothing`.execute(db);

/** Leases tokens of the connection's shared budget (its row created on first use). */
export const leaseTokens = async (db: Kysely<DB>, connectionId: string, request: LeaseRequest): Promise<LeaseGrant> => {
  const granted = await leaseFromRow(db, connectionId, request);
  if (granted !== undefined) return granted;
  await createRow(db, connectionId, request.now);
  const retried = await leaseFromRow(db, connectionId, request);
  if (retried === undefined) throw new Error(`rate budget of connection ${connectionId} vanished while created`);
  return retried;
};

/** No lease of the connection starts before `untilMs` (a later block wins). */
export const blockBudget = async (db: Kysely<DB>, connectionId: string, untilMs: number, now: number) => {
  await sql`insert into rate_budgets as b (connection_id, tat, blocked_until, updated_at)
      values (${connectionId}, to_timestamp(0), to_timestamp(${untilMs}::float8 / 1000), to_timestamp(${now}::float8 / 1000))
      on conflict (connection_id) do update
      set blocked_until = greatest(b.blocked_until, excluded.blocked_until), updated_at = excluded.updated_at`.execute(
    db,
  );
};

/** The connection's budget goes with it. */
export const deleteRateBudgetOf = (db: Kysely<DB>, connectionId: string) =>
  db.deleteFrom("rate_budgets").where("connection_id", "=", connectionId).execute();
