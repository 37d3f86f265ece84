import { type Kysely, type RawBuilder, sql } from "kysely";
import type { DB } from "../db/schema.ts";

/**
 * The lock statements, as plain functions over Kysely: the one module that writes `locks`.
 * Writers fenced by a lock compose `fencedBy` into their own statements.
 */

/** A lock row's holder, as a contender sees it. */
export interface LockHolder {
  readonly holder: string;
  readonly job_id: string | null;
  readonly expires_at: Date;
}

/**
 * Takes the lock when it is free, expired, or held for the same job, with a new fencing token
 * from the sequence; answers the token, or undefined when someone else holds it.
 */
export const take = async (
  db: Kysely<DB>,
  o: {
    readonly key: string;
    readonly holder: string;
    readonly jobId: string | null;
    readonly now: Date;
    readonly expiresAt: Date;
  },
): Promise<string | undefined> => {
  const taken = await sql<{ token: string }>`
                insert into locks (key, holder, token, job_id, acquired_at, expires_at)
                values (${o.key}, ${o.holder}, nextval('lock_tokens'), ${o.jobId}, ${o.now}, ${o.expiresAt})
                on conflict (key) do update set holder = excluded.holder, token = excluded.token,
                  job_id = excluded.job_id, acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
                where locks.expires_at <= ${o.now} or locks.job_id = excluded.job_id
                returning token::text as token`.execute(db);
  return taken.rows[0]?.token;
};

/** Who holds the lock now, if anyone. */
export const holderOf = (db: Kysely<DB>, key: string): Promise<LockHolder | undefined> =>
  db.selectFrom("locks").select(["holder", "job_id", "expires_at"]).where("key", "=", key).executeTakeFirst();

/** Extends an unexpired lease to `expiresAt`; false when it was lost. */
export const extend = async (
  db: Kysely<DB>,
  lease: { readonly key: string; readonly token: string },
  now: Date,
  expiresAt: Date,
): Promise<boolean> => {
  const result = await db
    .updateTable("locks")
    .set({ expires_at: expiresAt })
    .where("key", "=", lease.key)
    .where("token", "=", lease.token)
    .where("expires_at", ">", now)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
};

/** Deletes the lock if this lease still holds it; false when it did not. */
export const remove = async (db: Kysely<DB>, lease: { readonly key: string; readonly token: string }) => {
  const result = await db
    .deleteFrom("locks")
    .where("key", "=", lease.key)
    .where("token", "=", lease.token)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
};

/** Whether this lease is the lock's current, unexpired holder. */
export const isCurrent = async (
  db: Kysely<DB>,
  lease: { readonly key: string; readonly token: string },
  now: Date,
): Promise<boolean> => {
  const row = await db
    .selectFrom("locks")
    .select("key")
    .where("key", "=", lease.key)
    .where("token", "=", lease.token)
    .where("expires_at", ">", now)
    .executeTakeFirst();
  return row !== undefined;
};

/** Takes a transaction-scoped advisory lock on `key`, waiting for it. */
export const advisoryTransactionLock = async (db: Kysely<DB>, key: string): Promise<void> => {
  await sql`select pg_advisory_xact_lock(hashtextextended(${key}, 0))`.execute(db);
};

/**
 * A WHERE condition that holds only while `lease` is current: add it to a write so a
 * holder whose lease expired (a paused or partitioned process) cannot write anymore.
 */
export const fencedBy = (lease: { readonly key: string; readonly token: string }): RawBuilder<boolean> =>
  sql<boolean>`exists (select 1 from locks where key = ${lease.key} and token = ${lease.token}::bigint)`;
