import { callConnector, decodeRecord } from "@tandem/connector-sdk/runtime";
import { Effect, Either } from "effect";
import { remoteDeletesMeetEdits } from "../store/deletesAgainstEdits.ts";
import { itemError } from "./itemErrors.ts";
import { type PullSettlementDeps, toIncoming, upsertPulled } from "./PullSettlement.ts";
import { type ResolvedEntity, unsupported } from "./ResolvedEntity.ts";
import type { RecordEvent, SyncRecordResult } from "./SyncRun.ts";

/** A webhook's deletion of one record, through the mass-deletion guard (a burst is queued for review). */
const deleteOne = (deps: PullSettlementDeps, r: ResolvedEntity, id: string, notNewerThan?: Date) =>
  Effect.map(
    Effect.flatMap(remoteDeletesMeetEdits(deps.db, r.scope, r.settings.deleteAgainstEdit, [id]), (ids) =>
      deps.quarantine.guardDeletes(r.scope, ids, { source: "webhook", notNewerThan }),
    ),
    (outcome): SyncRecordResult => ({
      action: outcome.deleted.length > 0 ? "deleted" : outcome.quarantined > 0 ? "quarantined" : "unchanged",
      externalId: id,
    }),
  );

/**
 * Webhook-triggered sync of one record: `get(id)`, then upsert or soft-delete. Without `get`,
 * only a deletion event can be applied.
 */
export const syncRecord = (deps: PullSettlementDeps, r: ResolvedEntity, event: RecordEvent) =>
  Effect.gen(function* () {
    const id = event.externalId;
    const get = r.entity.get;
    if (get === undefined) {
      if (event.kind !== "deleted") return yield* unsupported(r, "the entity has no get(id)");
      return yield* deleteOne(deps, r, id, event.occurredAt);
    }
    const raw = yield* callConnector(() => get(r.ctx, id)).pipe(
      Effect.catchTag("NotFound", () => Effect.succeed(null)),
    );
    // `get` answers with the current state, so "gone now" wins over the event's age.
    if (raw === null || raw === undefined) return yield* deleteOne(deps, r, id);
    const decoded = decodeRecord(r.entity, raw);
    if (Either.isLeft(decoded)) {
      return {
        action: "failed",
        externalId: id,
        error: itemError(decoded.left, id),
      } satisfies SyncRecordResult;
    }
    // The upsert refuses data older than the stored remote_updated_at (a stale read or a late event).
    const result = yield* upsertPulled(
      deps,
      r.scope,
      r.entity.conflictPolicy,
      [toIncoming(decoded.right)],
      undefined,
      r.settings.deleteAgainstEdit,
    );
    // Live remotely: a deletion of it waiting for review leaves the queue.
    yield* deps.quarantine.releaseSeen(r.scope, [decoded.right.externalId]);
    const action = result.created.length > 0 ? "created" : result.updated.length > 0 ? "updated" : "unchanged";
    return { action, externalId: decoded.right.externalId } satisfies SyncRecordResult;
  });
