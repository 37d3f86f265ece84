import { Effect } from "effect";
import { sql } from "kysely";
import type { DatabaseService } from "../../db/Database.ts";
import type { ClaimedOutboxEntry } from "../PushOutboxRows.ts";
import * as outbox from "../PushOutboxRows.ts";
import type { PushRecord } from "../RecordRows.ts";
import * as rows from "../RecordRows.ts";
import type { IncomingRecord, RecordScope } from "../RecordStore.ts";

/** How one claimed outbox entry's push ended, as the drain settles it. */
export type PushSettlement =
  /** The vendor took the write; `remote` is its answer (the record as it now is), none for a delete. */
  | {
      readonly _tag: "Written";
      readonly entry: ClaimedOutboxEntry;
      readonly record: PushRecord;
      readonly operation: "create" | "update" | "delete";
      readonly remote: IncomingRecord | undefined;
    }
  /** The write failed: retried at `retryAt`, or given up (dead) when there is none. */
  | {
      readonly _tag: "Failed";
      readonly entry: ClaimedOutboxEntry;
      readonly record: PushRecord;
      readonly error: string;
      readonly retryAt: Date | undefined;
    }
  /**
   * Nothing to write: the record is gone, waits in an open conflict (its resolution writes a new
   * entry), or has nothing unpushed left (a pull merged it all). `settleRecord`: also mark the
   * record settled (a local create whose delete came while it was being written, and failed).
   */
  | {
      readonly _tag: "Nothing";
      readonly entry: ClaimedOutboxEntry;
      readonly settleRecord?: PushRecord | undefined;
    };

/**
 * Settles many entries: the updates the vendor took (the bulk of a batch push) in one statement,
 * the rest one by one (`settlePush`). Same outcome as settling each alone.
 */
export const settlePushes = (
  db: DatabaseService,
  scope: RecordScope,
  settlements: ReadonlyArray<PushSettlement>,
  at: Date,
  concurrency: number,
): Effect.Effect<void> =>
  Effect.gen(function* () {
    type Updated = Extract<PushSettlement, { _tag: "Written" }> & { readonly remote: IncomingRecord };
    const updated = settlements.filter(
      (s): s is Updated => s._tag === "Written" && s.operation === "update" && s.remote !== undefined,
    );
    const rest = settlements.filter((s) => !updated.includes(s as Updated));
    if (updated.length > 0) {
      // One statement, so one implicit transaction: the records and their entries settle together.
      const input = JSON.stringify(
        updated.map((s) => ({
          ...rows.pushedRecordsRow({ externalId: s.record.externalId, version: s.record.version, remote: s.remote }),
          entry_id: s.entry.id,
          pushed_revision: s.entry.revision,
        })),
      );
      yield* db
        .query((k) =>
          sql`with v as (
                select * from jsonb_to_recordset(${input}::jsonb)
                  as v(${rows.pushedRecordsColumns}, entry_id uuid, pushed_revision integer)
              ), ${rows.markPushedManyCtes(at.toISOString(), scope)}, ${outbox.settlePushedManyCtes}
              select 1`.execute(k),
        )
        .pipe(Effect.orDie);
    }
    yield* Effect.forEach(rest, (s) => settlePush(db, scope, s, at), { concurrency, discard: true });
  });

/**
 * Settles one pushed entry and its record in one transaction. Record statements check the version
 * the push was read at: a local change made meanwhile keeps its data and stays pending, and its
 * newer revision keeps the entry (unclaimed) for the next write.
 */
export const settlePush = (
  db: DatabaseService,
  scope: RecordScope,
  settlement: PushSettlement,
  at: Date,
): Effect.Effect<void> =>
  db
    .transaction(
      Effect.gen(function* () {
        const { entry } = settlement;
        const iso = at.toISOString();
        switch (settlement._tag) {
          case "Written": {
            const { record, remote } = settlement;
            if (settlement.operation === "create" && remote !== undefined) {
              yield* db.query((k) => rows.markCreated(k, iso, scope, record.externalId, record.version, remote));
              yield* db.query((k) =>
                outbox.settlePushed(k, entry.id, entry.revision, { createdAs: remote.externalId }),
              );
              return;
            }
            if (settlement.operation === "delete" || remote === undefined) {
              yield* db.query((k) => rows.markDeletePushed(k, iso, scope, record.externalId, record.version));
            } else {
              yield* db.query((k) => rows.markPushed(k, iso, scope, record.externalId, record.version, remote));
            }
            yield* db.query((k) => outbox.settlePushed(k, entry.id, entry.revision));
            return;
          }
          case "Failed": {
            const { record, error, retryAt } = settlement;
            yield* db.query((k) =>
              rows.markPushFailed(k, scope, record.externalId, record.version, {
                permanent: retryAt === undefined,
                message: error,
              }),
            );
            yield* db.query((k) =>
              retryAt === undefined
                ? outbox.markDead(k, entry.id, { at, error })
                : outbox.scheduleRetry(k, entry.id, { at, retryAt, error }),
            );
            return;
          }
          case "Nothing": {
            const settle = settlement.settleRecord;
            if (settle !== undefined) {
              yield* db.query((k) => rows.markDeletePushed(k, iso, scope, settle.externalId, settle.version));
            }
            yield* db.query((k) => outbox.settlePushed(k, entry.id, entry.revision));
            return;
          }
        }
      }),
    )
    .pipe(Effect.orDie);
