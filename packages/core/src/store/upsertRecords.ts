import { isDeepStrictEqual } from "node:util";
import { Effect } from "effect";
import { asDate, asObject } from "./columnValues.ts";
import { type RunStatement, upsertBatch } from "./RecordRows.ts";
import type { CheckpointUpdate, IncomingRecord, RecordScope, UpsertResult } from "./RecordStore.ts";
import { saveCheckpoint } from "./SyncCursors.ts";

/**
 * Whether a pulled version must wait for conflict settlement rather than be skipped: it is
 * strictly newer than the version the local edits were made on (one already settled is not held
 * again), and differs from the base, the state both sides last agreed on (as jsonb compares: the
 * JSON round trip drops undefined fields, as storing would).
 */
const meetsLocalChanges = (remote: IncomingRecord, base: Record<string, unknown> | null, storedAt: Date | null) =>
  (storedAt === null || remote.remoteUpdatedAt === null || remote.remoteUpdatedAt > storedAt) &&
  !isDeepStrictEqual(JSON.parse(JSON.stringify(remote.data)), base);

/**
 * The store's batch upsert (see `RecordStoreService.upsert`): one statement (`upsertBatch`), and a
 * second only when the batch met records with local changes of which none is held back, to save the
 * checkpoint the statement withheld. Dies when the connection does not exist (deleted during the
 * sync): nothing was written.
 */
export const upsertRecords = (
  run: RunStatement,
  scope: RecordScope,
  records: ReadonlyArray<IncomingRecord>,
  at: string,
  checkpoint: CheckpointUpdate | undefined,
): Effect.Effect<UpsertResult> =>
  Effect.gen(function* () {
    if (records.length === 0) {
      if (checkpoint !== undefined) yield* run((k) => saveCheckpoint(k, scope, checkpoint, at));
      return { created: [], updated: [], unchanged: 0, heldBack: [] } satisfies UpsertResult;
    }
    const rows = yield* run((k) => upsertBatch(k, scope, records, at, checkpoint));
    const created: Array<string> = [];
    const updated: Array<string> = [];
    const heldBack: Array<string> = [];
    let unpushed = 0;
    const incoming = new Map(records.map((r) => [r.externalId, r]));
    for (const row of rows) {
      if (row.outcome === "orphaned") {
        return yield* Effect.dieMessage(
          `connection ${scope.connectionId} of tenant ${scope.tenantId} does not exist (deleted during the sync?)`,
        );
      }
      if (row.outcome === "created") created.push(row.external_id!);
      else if (row.outcome === "updated") updated.push(row.external_id!);
      else {
        unpushed++;
        const remote = incoming.get(row.external_id!)!;
        if (meetsLocalChanges(remote, asObject(row.base), asDate(row.remote_updated_at))) {
          heldBack.push(row.external_id!);
        }
      }
    }
    // Records with local changes were in the batch but none is held back (the remote sent
    // what they already agree on, or an older version): the statement withheld the
    // checkpoint, which is due after all.
    if (unpushed > 0 && heldBack.length === 0 && checkpoint !== undefined) {
      yield* run((k) => saveCheckpoint(k, scope, checkpoint, at));
    }
    return {
      created,
      updated,
      unchanged: records.length - created.length - updated.length - heldBack.length,
      heldBack,
    } satisfies UpsertResult;
  });
