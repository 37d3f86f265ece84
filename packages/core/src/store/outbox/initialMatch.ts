import { Effect } from "effect";
import type { DatabaseService } from "../../db/Database.ts";
import * as outbox from "../PushOutboxRows.ts";
import * as rows from "../RecordRows.ts";
import type { RecordScope, StoredRecord } from "../RecordStore.ts";

/*
 * What initial matching writes (see sync/matching/): each in ONE transaction with the record's
 * outbox entry, so a record linked to the vendor never keeps an entry that would create it, and
 * one held for an operator never keeps one that a drain would push.
 */

/**
 * Links a record created locally to the vendor's record `vendorId`: it takes the vendor's id
 * (see `linkToVendor`) and its pending create becomes an update of the same record. Undefined
 * when the record is no longer local-only (created or deleted in between): nothing is written.
 */
export const linkLocalRecord = (
  db: DatabaseService,
  scope: RecordScope,
  provisionalId: string,
  vendorId: string,
  at: Date,
): Effect.Effect<StoredRecord | undefined> =>
  db
    .transaction(
      Effect.gen(function* () {
        const linked = yield* db.query((k) => rows.linkToVendor(k, at.toISOString(), scope, provisionalId, vendorId));
        if (linked !== undefined) yield* db.query((k) => outbox.retargetCreate(k, scope, provisionalId, vendorId));
        return linked;
      }),
    )
    .pipe(Effect.orDie);

/**
 * A record created locally whose match is ambiguous: not created at the vendor. Its status is
 * `failed` with `error` (naming the candidates) and its entry dead, so it is listed with the
 * dead pushes, where an operator retries it (creates it after all) or discards it.
 */
export const holdLocalRecord = (
  db: DatabaseService,
  scope: RecordScope,
  record: StoredRecord,
  error: string,
  at: Date,
): Effect.Effect<void> =>
  db
    .transaction(
      Effect.gen(function* () {
        const entry = yield* db.query((k) => outbox.entryOfRecordForUpdate(k, scope, record.externalId));
        if (entry === undefined || entry.status !== "pending") return;
        yield* db.query((k) => outbox.markDead(k, entry.id, { at, error }));
        yield* db.query((k) =>
          rows.markPushFailed(k, scope, record.externalId, record.version, { permanent: true, message: error }),
        );
      }),
    )
    .pipe(Effect.orDie);
