import { randomUUID } from "node:crypto";
import { Effect, Option } from "effect";
import type { DatabaseService } from "../../db/Database.ts";
import type { PushOperation } from "../../db/schema.ts";
import { AlreadyExists } from "../../errors/Errors.ts";
import { supersedeOpen } from "../ConflictRows.ts";
import * as outbox from "../PushOutboxRows.ts";
import { getRecord } from "../RecordReads.ts";
import * as rows from "../RecordRows.ts";
import type { RecordScope, StoredRecord } from "../RecordStore.ts";
import { coalesceEntry, type EntryWrite, type OutboxChange } from "./coalesceEntry.ts";

/*
 * Local changes from the host application, each written with its outbox entry in ONE transaction:
 * a record never holds a local change that no push will carry, and no entry outlives a change
 * that was rolled back. Each answers when a drain must run for the entry (`wakeAt`), for the
 * caller to arrange in the same transaction (sync/push/ensureDrain.ts).
 */

/** When a local change is due at the vendor. */
export interface ChangeTiming {
  /** It touched a critical field: due at once. */
  readonly critical: boolean;
  /** How long a non-critical change waits for others to batch with (the entity's push interval). */
  readonly delayMs: number;
}

/** A stored local change: the record as it now is, and when a drain must run for it (if one must). */
export interface AppliedChange {
  readonly record: StoredRecord;
  readonly wakeAt: Date | undefined;
}

/** Optimistic writes are retried this often when the record changes under them. */
const ATTEMPTS = 5;

const outboxChange = (operation: PushOperation, timing: ChangeTiming, at: Date): OutboxChange => ({
  operation,
  critical: timing.critical,
  dueAt: new Date(at.getTime() + (timing.critical ? 0 : timing.delayMs)),
  at,
});

const writeEntry = (db: DatabaseService, scope: RecordScope, externalId: string, write: EntryWrite) =>
  db
    .query((k) => {
      switch (write._tag) {
        case "Insert":
          return outbox.insertEntry(k, scope, externalId, write.change);
        case "Coalesce":
          return outbox.coalesceIntoEntry(k, write.id, { ...write.change, revive: write.revive });
        case "Cancel":
          return outbox.deleteEntry(k, write.id);
      }
    })
    .pipe(Effect.orDie);

/** Coalesces `change` into the record's entry, under the entry's row lock. */
const recordInOutbox = (db: DatabaseService, scope: RecordScope, externalId: string, change: OutboxChange) =>
  Effect.gen(function* () {
    const existing = yield* db.query((k) => outbox.entryOfRecordForUpdate(k, scope, externalId)).pipe(Effect.orDie);
    const coalesced = coalesceEntry(existing, change);
    yield* writeEntry(db, scope, externalId, coalesced.write);
    return coalesced;
  });

/**
 * A record the host application creates: stored with a provisional external id, pending, and
 * an outbox entry to create it at the vendor. A `localId` already used in the scope is AlreadyExists.
 */
export const createLocalRecord = (
  db: DatabaseService,
  scope: RecordScope,
  input: { readonly localId: string | null; readonly fields: Record<string, unknown> },
  timing: ChangeTiming,
  at: Date,
): Effect.Effect<AppliedChange, AlreadyExists> =>
  db.transaction(
    Effect.gen(function* () {
      const provisionalId = `local:${randomUUID()}`;
      const record = yield* db
        .query((k) =>
          rows.insertLocalRecord(k, at.toISOString(), scope, {
            provisionalId,
            localId: input.localId,
            data: input.fields,
          }),
        )
        .pipe(
          Effect.catchTag("ConstraintViolation", (e) =>
            e.constraint === "records_local_id"
              ? Effect.fail(
                  new AlreadyExists({ resource: "record", detail: `localId ${input.localId} in ${scope.entity}` }),
                )
              : Effect.die(e),
          ),
        );
      const { wakeAt } = yield* recordInOutbox(db, scope, provisionalId, outboxChange("create", timing, at));
      return { record, wakeAt };
    }),
  );

/**
 * A local edit: merged into `data`, accumulated in `pending_changes`, pending, with its outbox
 * entry. None when the record does not exist or is deleted. Optimistic: merged in JS (jsonb `||`
 * would replace `pending_changes`), written only if nobody changed the record in between; retried
 * on a race.
 */
export const editLocalRecord = (
  db: DatabaseService,
  scope: RecordScope,
  externalId: string,
  changes: Record<string, unknown>,
  timing: ChangeTiming,
  at: Date,
  /** Which changed fields the push sends (all unless told): a conflict's resolution also brings the remote's read-only ones. */
  pushes: (field: string) => boolean = () => true,
  /**
   * The vendor's record the change was made against, where it is not the stored base: a
   * conflict's resolution is made against the conflict's remote version, and its push is
   * conditional on that version.
   */
  base?: Record<string, unknown>,
): Effect.Effect<Option.Option<AppliedChange>> =>
  db.transaction(
    Effect.gen(function* () {
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        const current = yield* db.query((k) => getRecord(k, scope, externalId)).pipe(Effect.orDie);
        if (current === undefined || current.deletedAt !== null) return Option.none();
        const change = {
          data: { ...current.data, ...changes },
          pendingChanges: {
            ...current.pendingChanges,
            ...Object.fromEntries(Object.entries(changes).filter(([field]) => pushes(field))),
          },
          base,
        };
        const written = yield* db
          .query((k) => rows.writeLocalChange(k, scope, externalId, current.version, change, at.toISOString()))
          .pipe(Effect.orDie);
        if (written === undefined) continue;
        const { wakeAt } = yield* recordInOutbox(db, scope, externalId, outboxChange("update", timing, at));
        return Option.some({ record: written, wakeAt });
      }
      return yield* Effect.dieMessage(`record ${externalId} kept changing while a local change was applied`);
    }),
  );

/**
 * A local delete: soft-deleted now, pending until the vendor deleted it. A record created locally
 * whose create was never written is deleted here alone (its entry goes, nothing is pushed). None
 * when the record does not exist or is already deleted.
 */
export const deleteLocalRecord = (
  db: DatabaseService,
  scope: RecordScope,
  externalId: string,
  timing: ChangeTiming,
  at: Date,
): Effect.Effect<Option.Option<AppliedChange>> =>
  db.transaction(
    Effect.gen(function* () {
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        const current = yield* db.query((k) => getRecord(k, scope, externalId)).pipe(Effect.orDie);
        if (current === undefined || current.deletedAt !== null) return Option.none();
        // The entry decides first whether the vendor has (or may soon have) a record to delete.
        const existing = yield* db.query((k) => outbox.entryOfRecordForUpdate(k, scope, externalId)).pipe(Effect.orDie);
        const coalesced = coalesceEntry(existing, outboxChange("delete", timing, at));
        const pushed = coalesced.write._tag !== "Cancel";
        const written = yield* db
          .query((k) => rows.writeLocalDelete(k, at.toISOString(), scope, externalId, current.version, { pushed }))
          .pipe(Effect.orDie);
        if (written === undefined) continue;
        yield* writeEntry(db, scope, externalId, coalesced.write);
        // The host deleted a record that waited on a person: the delete settles the conflict, which
        // would otherwise stay open for a record that is gone.
        if (current.syncStatus === "conflict") {
          const superseded = yield* db
            .query((k) => supersedeOpen(k, { ...scope, externalId }, "local-delete", at))
            .pipe(Effect.orDie);
          // The host deleted it seeing the vendor's version in conflict: the delete is pushed against
          // that version, not the older base a conditional write would have refused again and again.
          const remote = superseded.at(-1);
          if (remote !== undefined) {
            yield* db
              .query((k) =>
                rows.rebaseLocalDelete(k, scope, {
                  externalId,
                  data: remote.remote as Record<string, unknown>,
                  remoteUpdatedAt: new Date(remote.remote_updated_at as unknown as string),
                }),
              )
              .pipe(Effect.orDie);
          }
        }
        return Option.some({ record: written, wakeAt: coalesced.wakeAt });
      }
      return yield* Effect.dieMessage(`record ${externalId} kept changing while it was deleted`);
    }),
  );
