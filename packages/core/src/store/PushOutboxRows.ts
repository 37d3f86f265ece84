import { randomUUID } from "node:crypto";
import { type Kysely, sql } from "kysely";
import type { DB, PushOperation } from "../db/schema.ts";
import { asDate } from "./columnValues.ts";
import { type PushRecord, pushRecordColumns, type RawPushRecord, toPushRecord } from "./RecordRows.ts";
import type { RecordScope } from "./RecordStore.ts";

/**
 * The owner of the `push_outbox` table: every statement that writes it is here, as a plain
 * function over Kysely. An entry is one record's unpushed local changes, coalesced: a local
 * change writes it in the transaction that changes the record (`store/outbox/localChanges.ts`),
 * a push job claims due entries and settles each once the vendor answered
 * (`store/outbox/pushSettlement.ts`). Times are Dates from the engine's Clock.
 */

/** An outbox entry as its statements answer it. */
export interface OutboxEntry {
  readonly id: string;
  readonly tenantId: string;
  readonly connectionId: string;
  readonly entity: string;
  readonly externalId: string;
  readonly operation: PushOperation;
  readonly critical: boolean;
  readonly status: "pending" | "dead";
  readonly dueAt: Date;
  readonly revision: number;
  readonly attempts: number;
  readonly lastError: string | null;
  readonly lastAttemptAt: Date | null;
  readonly claimedBy: string | null;
  readonly claimedUntil: Date | null;
  readonly firstChangeAt: Date;
  readonly lastChangeAt: Date;
}

interface RawEntry {
  id: string;
  tenant_id: string;
  connection_id: string;
  entity: string;
  external_id: string;
  operation: PushOperation;
  critical: boolean;
  status: "pending" | "dead";
  due_at: unknown;
  revision: number | string;
  attempts: number | string;
  last_error: string | null;
  last_attempt_at: unknown;
  claimed_by: string | null;
  claimed_until: unknown;
  first_change_at: unknown;
  last_change_at: unknown;
}

const toEntry = (row: RawEntry): OutboxEntry => ({
  id: row.id,
  tenantId: row.tenant_id,
  connectionId: row.connection_id,
  entity: row.entity,
  externalId: row.external_id,
  operation: row.operation,
  critical: row.critical,
  status: row.status,
  dueAt: asDate(row.due_at)!,
  revision: Number(row.revision),
  attempts: Number(row.attempts),
  lastError: row.last_error,
  lastAttemptAt: asDate(row.last_attempt_at),
  claimedBy: row.claimed_by,
  claimedUntil: asDate(row.claimed_until),
  firstChangeAt: asDate(row.first_change_at)!,
  lastChangeAt: asDate(row.last_change_at)!,
});

const inScope = (s: RecordScope) =>
  sql`connection_id = ${s.connectionId}::uuid and entity = ${s.entity} and tenant_id = ${s.tenantId}::uuid`;

/** A time as a statement parameter (typed, for both dialects). */
const ts = (d: Date) => sql`${d.toISOString()}::timestamptz`;

/** Frees an entry for the next drain. */
const unclaimed = sql`claimed_by = null, claimed_until = null`;

/** The record's entry, locked until the caller's transaction ends (coalescing reads, then writes it). */
export const entryOfRecordForUpdate = async (
  k: Kysely<DB>,
  scope: RecordScope,
  externalId: string,
): Promise<OutboxEntry | undefined> => {
  const result = await sql<RawEntry>`select * from push_outbox
            where ${inScope(scope)} and external_id = ${externalId} for update`.execute(k);
  const row = result.rows[0];
  return row === undefined ? undefined : toEntry(row);
};

/** What a new entry, or a change coalesced into one, says. */
export interface EntryChange {
  readonly operation: PushOperation;
  readonly critical: boolean;
  readonly dueAt: Date;
  readonly at: Date;
}

/** A record's first unpushed change. */
export const insertEntry = async (
  k: Kysely<DB>,
  scope: RecordScope,
  externalId: string,
  change: EntryChange,
): Promise<void> => {
  await sql`insert into push_outbox (id, tenant_id, connection_id, entity, external_id, operation, critical, due_at,
              first_change_at, last_change_at)
            values (${randomUUID()}::uuid, ${scope.tenantId}::uuid, ${scope.connectionId}::uuid, ${scope.entity},
              ${externalId}, ${change.operation}, ${change.critical}, ${ts(change.dueAt)}, ${ts(change.at)}, ${ts(change.at)})`.execute(
    k,
  );
};

/**
 * A later change coalesced into the record's entry: a new revision (a drain in flight then keeps
 * the entry for the next write). `revive` brings a dead entry back with a fresh set of attempts.
 */
export const coalesceIntoEntry = async (
  k: Kysely<DB>,
  id: string,
  change: EntryChange & { readonly revive: boolean },
): Promise<void> => {
  const revive = change.revive ? sql`, status = 'pending', attempts = 0, last_error = null` : sql``;
  await sql`update push_outbox set operation = ${change.operation}, critical = ${change.critical},
              due_at = ${ts(change.dueAt)}, revision = revision + 1, last_change_at = ${ts(change.at)} ${revive}
            where id = ${id}::uuid`.execute(k);
};

/** Removes an entry: pushed, discarded, or nothing left to push (a local create deleted before it was pushed). */
export const deleteEntry = async (k: Kysely<DB>, id: string): Promise<void> => {
  await sql`delete from push_outbox where id = ${id}::uuid`.execute(k);
};

/** Which entries a drain claims. */
export interface ClaimOptions {
  /** The drain job's id: an attempt of the same job takes back what an earlier attempt left claimed. */
  readonly claimer: string;
  readonly now: Date;
  /** The claim lapses then (a drain that died): another drain may take the entries. */
  readonly until: Date;
  readonly limit: number;
  /** Entries due by then; `"all"`: every pending entry, due or not (a push asked for now). */
  readonly dueBy: Date | "all";
  /** Entries attempted since then are left for a later drain: one drain writes each entry at most once. */
  readonly notAttemptedSince: Date;
  /**
   * The claimer's own claims that lapse before then are taken back: an earlier attempt of the
   * same job made them, before this drain started (its lease is `until - now`). The claiming
   * drain's own claims, in flight, lapse later: never taken twice.
   */
  readonly reclaimBefore: Date;
  /** Whether entries that create records are taken (false: they wait for a drain that may create). */
  readonly creates: boolean;
}

/** A claimed entry: what a drain writes and settles it by. */
export type ClaimedOutboxEntry = Pick<OutboxEntry, "id" | "externalId" | "operation" | "revision" | "attempts">;

/** A claimed entry with its record as it is now (undefined: the record is gone). */
export interface ClaimedEntry {
  readonly entry: ClaimedOutboxEntry;
  readonly record: PushRecord | undefined;
}

/**
 * Claims up to `limit` pending entries of the scope, critical ones first, then by due time; skips
 * entries another drain holds (`FOR UPDATE SKIP LOCKED`, and unexpired claims). Answers each with
 * its record, read by the same statement (a claim is one round trip, and its rows only what a
 * push uses: see `PushRecord`).
 */
export const claimDue = async (
  k: Kysely<DB>,
  scope: RecordScope,
  o: ClaimOptions,
): Promise<ReadonlyArray<ClaimedEntry>> => {
  const due = o.dueBy === "all" ? sql`` : sql`and due_at <= ${ts(o.dueBy)}`;
  const creates = o.creates ? sql`` : sql`and operation <> 'create'`;
  const result = await sql<RawClaimed>`
            with chosen as (
              select id from push_outbox
              where ${inScope(scope)} and status = 'pending' ${due}
                and (claimed_until is null or claimed_until < ${ts(o.now)}
                  or (claimed_by = ${o.claimer} and claimed_until < ${ts(o.reclaimBefore)}))
                and (last_attempt_at is null or last_attempt_at < ${ts(o.notAttemptedSince)}) ${creates}
              order by critical desc, due_at, id
              limit ${o.limit}
              for update skip locked
            ), claimed as (
              update push_outbox p set claimed_by = ${o.claimer}, claimed_until = ${ts(o.until)}
              where p.id = any(array(select id from chosen))
              returning p.id, p.external_id, p.operation, p.revision, p.attempts
            )
            select c.id, c.external_id, c.operation, c.revision, c.attempts, ${pushRecordColumns}
            from claimed c left join records r
              on r.connection_id = ${scope.connectionId}::uuid and r.entity = ${scope.entity}
                and r.tenant_id = ${scope.tenantId}::uuid and r.external_id = c.external_id`.execute(k);
  return result.rows.map((row) => ({
    entry: {
      id: row.id,
      externalId: row.external_id,
      operation: row.operation,
      revision: Number(row.revision),
      attempts: Number(row.attempts),
    },
    record: toPushRecord(row),
  }));
};

interface RawClaimed extends RawPushRecord {
  id: string;
  external_id: string;
  operation: PushOperation;
  revision: number | string;
  attempts: number | string;
}

/**
 * The entry was pushed at `revision`: removed, unless a change came in meanwhile (a newer
 * revision), which keeps it, unclaimed, for the next write. `createdAs`: the push created the
 * record at the vendor under this id, which the kept entry takes (its create became an update).
 */
export const settlePushed = async (
  k: Kysely<DB>,
  id: string,
  revision: number,
  options: { readonly createdAs?: string } = {},
): Promise<void> => {
  const created =
    options.createdAs === undefined
      ? sql``
      : sql`, external_id = ${options.createdAs},
              operation = case when operation = 'create' then 'update' else operation end`;
  await sql`
            with gone as (delete from push_outbox where id = ${id}::uuid and revision = ${revision} returning 1)
            update push_outbox set ${unclaimed} ${created}
            where id = ${id}::uuid and revision <> ${revision}`.execute(k);
};

/**
 * `settlePushed` (without `createdAs`) for many entries, as the CTEs `gone` and `kept` of a
 * statement whose CTE `v` holds one row per entry (`entry_id`, `pushed_revision`).
 */
export const settlePushedManyCtes = sql`gone as (
              delete from push_outbox using v where id = v.entry_id and revision = v.pushed_revision returning 1
            ), kept as (
              update push_outbox set ${unclaimed}
              from v where id = v.entry_id and revision <> v.pushed_revision
              returning 1
            )`;

/** A failed attempt the retry policy retries: due again at `retryAt`, the error kept. */
export const scheduleRetry = async (
  k: Kysely<DB>,
  id: string,
  retry: { readonly at: Date; readonly retryAt: Date; readonly error: string },
): Promise<void> => {
  await sql`update push_outbox set ${unclaimed}, due_at = ${ts(retry.retryAt)}, attempts = attempts + 1,
              last_error = ${retry.error}, last_attempt_at = ${ts(retry.at)}
            where id = ${id}::uuid`.execute(k);
};

/**
 * The record of a pending create was linked to an existing vendor record (initial matching): its
 * entry follows it to the vendor's id and becomes an update (of what the merge leaves to push).
 */
export const retargetCreate = async (
  k: Kysely<DB>,
  scope: RecordScope,
  provisionalId: string,
  vendorId: string,
): Promise<void> => {
  await sql`update push_outbox set external_id = ${vendorId}, operation = 'update', ${unclaimed}
            where ${inScope(scope)} and external_id = ${provisionalId}`.execute(k);
};

/** Whether the scope has a pending create (the outbox holds only unpushed changes: a small read). */
export const hasPendingCreate = async (k: Kysely<DB>, scope: RecordScope): Promise<boolean> => {
  const result = await sql<{ one: number }>`select 1 as one from push_outbox
            where ${inScope(scope)} and status = 'pending' and operation = 'create' limit 1`.execute(k);
  return result.rows.length > 0;
};

/** A failed attempt the retry policy gives up on: dead, listed until retried or discarded. */
export const markDead = async (
  k: Kysely<DB>,
  id: string,
  failure: { readonly at: Date; readonly error: string },
): Promise<void> => {
  await sql`update push_outbox set ${unclaimed}, status = 'dead', attempts = attempts + 1,
              last_error = ${failure.error}, last_attempt_at = ${ts(failure.at)}
            where id = ${id}::uuid`.execute(k);
};

/** Hands a drain's claimed entries back untouched (the drain failed as a whole: no attempt is counted). */
export const releaseClaims = async (k: Kysely<DB>, ids: ReadonlyArray<string>, claimer: string): Promise<void> => {
  if (ids.length === 0) return;
  await sql`update push_outbox set ${unclaimed}
            where id = any(${[...ids]}::uuid[]) and claimed_by = ${claimer}`.execute(k);
};

/** When the scope's next pending entry comes due (a claim that lapsed counts as due now); null when none. */
export const nextDue = async (k: Kysely<DB>, scope: RecordScope, now: Date): Promise<Date | null> => {
  const result = await sql<{ due: unknown }>`
            select min(case when claimed_until < ${ts(now)} then ${ts(now)} else due_at end) as due from push_outbox
            where ${inScope(scope)} and status = 'pending'
              and (claimed_until is null or claimed_until < ${ts(now)})`.execute(k);
  return asDate(result.rows[0]?.due);
};

/** Makes every pending entry of the scope due by `at` (a push asked for now); answers how many there are. */
export const makeDueBy = async (k: Kysely<DB>, scope: RecordScope, at: Date): Promise<number> => {
  const result = await sql`update push_outbox set due_at = least(due_at, ${ts(at)})
            where ${inScope(scope)} and status = 'pending'`.execute(k);
  return Number(result.numAffectedRows ?? 0);
};

/** Dead entries of a tenant, most recently failed first. */
export const listDead = async (
  k: Kysely<DB>,
  tenantId: string,
  filter: { readonly connectionId?: string | undefined; readonly entity?: string | undefined; readonly limit: number },
): Promise<ReadonlyArray<OutboxEntry>> => {
  const connection = filter.connectionId === undefined ? sql`` : sql`and connection_id = ${filter.connectionId}::uuid`;
  const entity = filter.entity === undefined ? sql`` : sql`and entity = ${filter.entity}`;
  const result = await sql<RawEntry>`select * from push_outbox
            where tenant_id = ${tenantId}::uuid and status = 'dead' ${connection} ${entity}
            order by last_attempt_at desc, id limit ${filter.limit}`.execute(k);
  return result.rows.map(toEntry);
};

/** One entry of a tenant, locked until the caller's transaction ends. */
export const entryForUpdate = async (k: Kysely<DB>, tenantId: string, id: string): Promise<OutboxEntry | undefined> => {
  const result = await sql<RawEntry>`select * from push_outbox
            where id = ${id}::uuid and tenant_id = ${tenantId}::uuid for update`.execute(k);
  const row = result.rows[0];
  return row === undefined ? undefined : toEntry(row);
};

/** A dead entry sent back to the drains: pending, due at `at`, with a fresh set of attempts (its last error kept). */
export const reviveDead = async (k: Kysely<DB>, id: string, at: Date): Promise<void> => {
  await sql`update push_outbox set status = 'pending', attempts = 0, due_at = ${ts(at)}, ${unclaimed}
            where id = ${id}::uuid and status = 'dead'`.execute(k);
};
