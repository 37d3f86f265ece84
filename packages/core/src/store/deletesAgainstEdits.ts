import { randomUUID } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import { Clock, Effect } from "effect";
import type { DatabaseService } from "../db/Database.ts";
import { insertConflict, type NewConflict } from "./ConflictRows.ts";
import { deleteEntry, entryOfRecordForUpdate } from "./PushOutboxRows.ts";
import {
  dropLocalEdit,
  liveEditsAmong,
  markForRecreate,
  pendingDeletesAmong,
  rebaseLocalDelete,
  restoreFromRemote,
} from "./RecordRows.ts";
import type { IncomingRecord, RecordScope, StoredRecord } from "./RecordStore.ts";

/*
 * A delete on one side meeting an unpushed change on the other, settled by the entity's rule
 * (`deleteAgainstEdit` in the connection's settings):
 *
 * - `edit-wins` (the default): a remote delete meeting a local edit leaves the record, which the
 *   next push creates again at the vendor (under a new id); a local delete meeting a remote edit
 *   is cancelled, and the record restored as the vendor has it.
 * - `delete-wins`: the remote delete applies and the local edit is dropped; the local delete is
 *   pushed over the remote edit (conditional on the remote version it was weighed against).
 *
 * A local delete meets a remote edit either in a pull (the vendor's newer version arrives while
 * the delete waits in the outbox) or in its own push: the delete is written conditional on the
 * version the record was deleted against, and a vendor that refuses it (version conflict) has its
 * record read and settled here, as a pull would.
 *
 * Nothing is silently discarded: each case is a resolved row in the conflicts table (the audit
 * trail), with both versions (`local`, `remote`; a deleted side reads `{"deleted": true}`), the
 * rule as its policy and what became of the record as its resolution.
 */

export type DeleteAgainstEditRule = "edit-wins" | "delete-wins";

const DELETED = { deleted: true } as const;

const auditRow = (
  scope: RecordScope,
  record: StoredRecord,
  rule: DeleteAgainstEditRule,
  sides: { readonly local: unknown; readonly remote: unknown; readonly remoteUpdatedAt: Date },
  action: string,
  at: Date,
): NewConflict => ({
  id: randomUUID(),
  tenantId: scope.tenantId,
  connectionId: scope.connectionId,
  entity: scope.entity,
  externalId: record.externalId,
  base: record.base,
  local: sides.local,
  remote: sides.remote,
  merged: {},
  fields: [],
  localUpdatedAt: record.localUpdatedAt ?? record.changedAt,
  remoteUpdatedAt: sides.remoteUpdatedAt,
  policy: `delete-against-edit:${rule}`,
  outcome: { resolved: true, values: { action }, resolvedBy: `rule:delete-against-edit:${rule}`, at },
});

/** Drops the record's outbox entry, if any (its change is settled here, not pushed). */
const dropEntry = (db: DatabaseService, scope: RecordScope, externalId: string) =>
  Effect.gen(function* () {
    const entry = yield* db.query((k) => entryOfRecordForUpdate(k, scope, externalId));
    if (entry !== undefined) yield* db.query((k) => deleteEntry(k, entry.id));
  });

/**
 * Before deletions the vendor reported are applied: the records among them with an unpushed local
 * edit are settled by the rule (edit-wins: kept, to be created again by the next push; delete-wins:
 * the edit dropped), each with an audit row. Answers the ids still to delete (records waiting
 * for their (re)create are never deleted by a report about their old id).
 */
export const remoteDeletesMeetEdits = (
  db: DatabaseService,
  scope: RecordScope,
  rule: DeleteAgainstEditRule,
  externalIds: ReadonlyArray<string>,
): Effect.Effect<ReadonlyArray<string>> =>
  externalIds.length === 0
    ? Effect.succeed(externalIds)
    : db
        .transaction(
          Effect.gen(function* () {
            const now = new Date(yield* Clock.currentTimeMillis);
            const at = now.toISOString();
            const { edited, provisional } = yield* db.query((k) => liveEditsAmong(k, scope, externalIds));
            for (const record of edited) {
              const sides = { local: record.data, remote: DELETED, remoteUpdatedAt: now };
              if (rule === "edit-wins") {
                yield* db.query((k) => markForRecreate(k, at, scope, record.externalId));
                yield* db.query((k) =>
                  insertConflict(k, auditRow(scope, record, rule, sides, "recreated at the vendor", now)),
                );
              } else {
                yield* db.query((k) => dropLocalEdit(k, at, scope, record.externalId));
                yield* dropEntry(db, scope, record.externalId);
                yield* db.query((k) =>
                  insertConflict(k, auditRow(scope, record, rule, sides, "deleted; the local edit dropped", now)),
                );
              }
            }
            const kept = new Set([...provisional, ...(rule === "edit-wins" ? edited.map((r) => r.externalId) : [])]);
            return externalIds.filter((id) => !kept.has(id));
          }),
        )
        .pipe(Effect.orDie);

/**
 * Before pulled records are upserted: those deleted locally, with the delete not pushed yet, that
 * the vendor edited since (the pulled version differs from ours) are settled by the rule
 * (edit-wins: the local delete cancelled and the record restored from the vendor; delete-wins:
 * the delete stays pending, to be pushed conditional on the remote version), each with an audit
 * row (one per remote version).
 */
export const remoteEditsMeetDeletes = (
  db: DatabaseService,
  scope: RecordScope,
  rule: DeleteAgainstEditRule,
  incoming: ReadonlyArray<IncomingRecord>,
): Effect.Effect<ReadonlySet<string>> =>
  incoming.length === 0
    ? Effect.succeed(new Set<string>())
    : db
        .transaction(
          Effect.gen(function* () {
            const deleted = yield* db.query((k) =>
              pendingDeletesAmong(
                k,
                scope,
                incoming.map((r) => r.externalId),
              ),
            );
            if (deleted.length === 0) return new Set<string>();
            const byId = new Map(incoming.map((r) => [r.externalId, r]));
            const now = new Date(yield* Clock.currentTimeMillis);
            for (const record of deleted) {
              const remote = byId.get(record.externalId)!;
              // The same version read again (a delta's overlap, our own echo): no remote edit.
              if (isDeepStrictEqual(remote.data, record.data)) continue;
              const stamp = remote.remoteUpdatedAt;
              if (stamp !== undefined && stamp !== null && record.remoteUpdatedAt !== null) {
                if (stamp.getTime() <= record.remoteUpdatedAt.getTime()) continue;
              }
              const sides = { local: DELETED, remote: remote.data, remoteUpdatedAt: stamp ?? now };
              if (rule === "edit-wins") {
                yield* db.query((k) => restoreFromRemote(k, now.toISOString(), scope, remote));
                yield* dropEntry(db, scope, record.externalId);
                yield* db.query((k) =>
                  insertConflict(
                    k,
                    auditRow(scope, record, rule, sides, "restored from the vendor; the local delete cancelled", now),
                  ),
                );
              } else {
                yield* db.query((k) => rebaseLocalDelete(k, scope, remote));
                yield* db.query((k) =>
                  insertConflict(
                    k,
                    auditRow(scope, record, rule, sides, "the local delete pushed over the remote edit", now),
                  ),
                );
              }
            }
            return new Set(deleted.map((r) => r.externalId));
          }),
        )
        .pipe(Effect.orDie);
