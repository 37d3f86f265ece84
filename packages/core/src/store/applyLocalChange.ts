import { Effect, Option } from "effect";
import { getRecord } from "./RecordReads.ts";
import { type RunStatement, writeLocalChange } from "./RecordRows.ts";
import type { RecordScope, StoredRecord } from "./RecordStore.ts";

const ATTEMPTS = 5;

/**
 * A local change from the host application (see `RecordStoreService.applyLocalChange`).
 * Optimistic: merged in JS (pending_changes accumulates, jsonb || would replace), then written
 * only if nobody changed the record in between; retried on a race.
 */
export const applyLocalChange = (
  run: RunStatement,
  scope: RecordScope,
  externalId: string,
  changes: Record<string, unknown>,
  at: string,
): Effect.Effect<Option.Option<StoredRecord>> =>
  Effect.gen(function* () {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const current = yield* run((k) => getRecord(k, scope, externalId));
      if (current === undefined || current.deletedAt !== null) return Option.none<StoredRecord>();
      const change = {
        data: { ...current.data, ...changes },
        pendingChanges: { ...current.pendingChanges, ...changes },
      };
      const written = yield* run((k) => writeLocalChange(k, scope, externalId, current.version, change, at));
      if (written !== undefined) return Option.some(written);
    }
    return yield* Effect.dieMessage(`record ${externalId} kept changing while a local change was applied`);
  });
